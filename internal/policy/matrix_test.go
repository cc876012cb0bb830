package policy

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The matrix crosses every level, personal-information tag, identifier role,
// grant situation, region, query shape and role on a two-column dataset:
// "district" (not personal) and "subject" (the tag under test). The oracle
// below restates the rules case by case, without the engine's code.

type grantCase int

const (
	grantNone grantCase = iota
	grantRequested
	grantApproved
	grantApprovedPersonal
	grantExpired
	grantRejected
	grantRevoked
	grantOtherPurpose
	grantOtherOrg
	nGrantCases
)

func (g grantCase) String() string {
	return [...]string{"none", "requested", "approved", "approved+personal", "expired", "rejected", "revoked", "other-purpose", "other-org"}[g]
}

type shape int

const (
	rowsShow   shape = iota // ROWS, columns [district, subject]
	rowsAll                 // ROWS, no projection
	rowsFilter              // ROWS, columns [district], filter on subject
	aggGroup                // group by subject, count(*)
	aggStat                 // group by district, avg(subject)
	aggMax                  // group by district, max(subject)
	nShapes
)

func (s shape) String() string {
	return [...]string{"rows-show", "rows-all", "rows-filter", "agg-group", "agg-stat", "agg-max"}[s]
}

func (s shape) agg() bool { return s >= aggGroup }

type combo struct {
	level   yrdv1.ClassificationLevel
	pi      yrdv1.PersonalInfo
	id      yrdv1.IdentifierRole
	grant   grantCase
	outside bool
	shape   shape
	role    yrdv1.Role
}

func (c combo) String() string {
	region := "mainland"
	if c.outside {
		region = "outside"
	}
	return fmt.Sprintf("%v/%v/%v/grant=%v/%s/%v/%v", c.level, c.pi, c.id, c.grant, region, c.shape, c.role)
}

func (c combo) request() *Request {
	d := &yrdv1.Dataset{
		Id: "shanghai.test.matrix", OwnerCity: "shanghai", OwnerOrg: "sh-test",
		Sector: "connected-vehicles", Level: c.level,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			{Name: "district", Type: "VARCHAR", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_NONE, IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_NONE},
			{Name: "subject", Type: "INTEGER", PersonalInfo: c.pi, IdentifierRole: c.id, SumBound: 100},
		}},
		DataRights:          &yrdv1.DataRights{Holder: "test", ProcessingUseRight: true},
		PermittedPurposes:   []string{"research", "marketing"},
		CrossBorderEligible: c.level == yrdv1.ClassificationLevel_LEVEL_GENERAL,
	}
	if c.id == yrdv1.IdentifierRole_IDENTIFIER_QUASI {
		d.Schema.Columns[1].Generalise = &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_BandWidth{BandWidth: 5}}
	}
	a := &yrdv1.AccessRequest{DatasetId: d.Id, Purpose: "research", ResultForm: rows}
	switch c.shape {
	case rowsShow:
		a.Columns = []string{"district", "subject"}
	case rowsFilter:
		a.Columns, a.FilterColumns = []string{"district"}, []string{"subject"}
	case aggGroup:
		a.ResultForm, a.GroupBy, a.Aggregates = aggs, []string{"subject"}, []*yrdv1.Aggregate{count()}
	case aggStat:
		a.ResultForm, a.GroupBy, a.Aggregates = aggs, []string{"district"}, []*yrdv1.Aggregate{agg("avg", "subject")}
	case aggMax:
		a.ResultForm, a.GroupBy, a.Aggregates = aggs, []string{"district"}, []*yrdv1.Aggregate{agg("max", "subject")}
	}
	p := analyst()
	p.Role = c.role
	r := &Request{Requester: p, RequesterOutsideMainland: c.outside, Dataset: d, Access: a, Now: now, Params: DefaultParams()}
	if c.grant != grantNone {
		g := approved("g-1", d.Id, "research", rows)
		switch c.grant {
		case grantRequested:
			g.State, g.DecidedAt, g.ExpiresAt = yrdv1.GrantState_GRANT_STATE_REQUESTED, nil, nil
		case grantApprovedPersonal:
			g.AllowPersonal = true
		case grantExpired:
			g.ExpiresAt = ts(now.AddDate(0, 0, -1))
		case grantRejected:
			g.State, g.ExpiresAt = yrdv1.GrantState_GRANT_STATE_REJECTED, nil
		case grantRevoked:
			g.State, g.RevokedAt = yrdv1.GrantState_GRANT_STATE_REVOKED, ts(now.AddDate(0, 0, -2))
		case grantOtherPurpose:
			g.Purpose = "marketing"
		case grantOtherOrg:
			g.RequesterOrg = "hz-other-lab"
		}
		r.Grants = []*yrdv1.Grant{g}
	}
	return r
}

// oracle is what the rules say for c, written out plainly. Long because
// it is the rules in the order the policy applies them, sharing one
// decision; split, that order would be harder to check against the rules.
func oracle(c combo) *yrdv1.Decision {
	want := &yrdv1.Decision{PolicyVersion: 1, DerivedLevel: c.level, CrossBorder: c.outside}
	shown := []string{"district", "subject"}
	switch c.shape {
	case rowsFilter:
		shown = []string{"district"}
	case aggGroup:
		shown = []string{"subject"}
	}
	denied := func(ids ...string) *yrdv1.Decision {
		want.Effect, want.RuleIds = deny, ids
		for _, n := range shown {
			want.Columns = append(want.Columns, &yrdv1.ColumnDecision{Column: n, Treatment: withheld})
		}
		return want
	}
	if c.role != yrdv1.Role_ROLE_ANALYST {
		return denied("role.analyst")
	}
	if c.level == yrdv1.ClassificationLevel_LEVEL_CORE {
		return denied("level.core")
	}
	pi := c.pi
	if pi == yrdv1.PersonalInfo_PERSONAL_INFO_NONE && c.id != yrdv1.IdentifierRole_IDENTIFIER_NONE {
		pi = yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL // an identifier of a person is personal
	}
	personal := pi != yrdv1.PersonalInfo_PERSONAL_INFO_NONE

	var q []string
	if c.id == yrdv1.IdentifierRole_IDENTIFIER_DIRECT && (c.shape == rowsFilter || c.shape == aggGroup) {
		q = append(q, "identifier.direct")
	}
	if c.shape == aggMax && personal {
		q = append(q, "aggregate.no-minmax-personal")
	}
	if len(q) > 0 {
		return denied(q...)
	}

	var ids []string
	subject := raw
	if c.outside {
		var x []string
		if c.level != yrdv1.ClassificationLevel_LEVEL_GENERAL {
			x = append(x, "crossborder.general-only", "crossborder.eligible")
		}
		if personal && c.shape != rowsAll {
			x = append(x, "crossborder.no-personal")
		}
		if len(x) > 0 {
			return denied(x...)
		}
		if personal {
			ids = append(ids, "crossborder.no-personal")
			subject = withheld
		}
	}
	grant := !c.outside && (c.grant == grantApproved || c.grant == grantApprovedPersonal)
	finish := func(effect yrdv1.Effect, more ...string) *yrdv1.Decision {
		want.Effect, want.RuleIds = effect, append(ids, more...)
		for _, n := range shown {
			t := raw
			if n == "subject" {
				t = subject
			}
			want.Columns = append(want.Columns, &yrdv1.ColumnDecision{Column: n, Treatment: t})
		}
		if effect == allowRows {
			want.RowCap = 100000
		} else {
			want.MinGroupSize = 10
		}
		if grant {
			want.GrantId = "g-1"
		}
		return want
	}
	// Aggregates: a sensitive subject needs a grant allowing personal data;
	// noise on important data, on sensitive columns and on data with
	// personal information (the matrix never chooses exact aggregates);
	// max cannot carry noise.
	sensitiveUsed := pi == yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE && (c.shape == aggGroup || c.shape == aggStat)
	noisy := c.level == yrdv1.ClassificationLevel_LEVEL_IMPORTANT || personal
	aggregates := func(rules ...string) *yrdv1.Decision {
		if sensitiveUsed && (c.outside || c.grant != grantApprovedPersonal) {
			return denied("aggregate.sensitive-grant")
		}
		if noisy && c.shape == aggMax {
			return denied("aggregate.noise-unsupported")
		}
		subject = raw // aggregates over at least k people are anonymised
		if noisy {
			rules = append(rules, "aggregate.noise")
			want.NoiseEpsilon, want.BudgetFamily = 0.5, "shanghai.test.matrix"
		}
		return finish(allowAggs, rules...)
	}

	if c.level == yrdv1.ClassificationLevel_LEVEL_IMPORTANT {
		var x []string
		if !grant {
			x = append(x, "important.grant")
		}
		if !c.shape.agg() {
			x = append(x, "important.aggregates-only")
		}
		if len(x) > 0 {
			return denied(x...)
		}
		return aggregates("important.grant", "important.k-anonymity")
	}
	if c.shape.agg() {
		return aggregates("general.aggregates")
	}
	var rule string
	switch {
	case !personal || c.outside:
	case pi == yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE:
		subject, rule = withheld, "general.sensitive.withhold"
	case c.grant == grantApprovedPersonal:
		subject, rule = raw, "general.personal.grant"
	case c.id == yrdv1.IdentifierRole_IDENTIFIER_DIRECT:
		subject, rule = pseudo, "general.personal.pseudonymise"
	case c.id == yrdv1.IdentifierRole_IDENTIFIER_QUASI:
		subject, rule = generalised, "general.quasi.generalise"
	default:
		subject, rule = masked, "general.personal.mask"
	}
	if c.shape == rowsFilter {
		if subject != raw {
			return denied("general.hidden-predicate")
		}
		return finish(allowRows, "general.rows")
	}
	if rule != "" {
		return finish(allowRows, "general.rows", rule)
	}
	return finish(allowRows, "general.rows")
}

func TestDecisionMatrix(t *testing.T) {
	levels := []yrdv1.ClassificationLevel{
		yrdv1.ClassificationLevel_LEVEL_GENERAL, yrdv1.ClassificationLevel_LEVEL_IMPORTANT, yrdv1.ClassificationLevel_LEVEL_CORE,
	}
	pis := []yrdv1.PersonalInfo{
		yrdv1.PersonalInfo_PERSONAL_INFO_NONE, yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL, yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE,
	}
	idRoles := []yrdv1.IdentifierRole{
		yrdv1.IdentifierRole_IDENTIFIER_NONE, yrdv1.IdentifierRole_IDENTIFIER_DIRECT, yrdv1.IdentifierRole_IDENTIFIER_QUASI,
	}
	roles := []yrdv1.Role{
		yrdv1.Role_ROLE_ANALYST, yrdv1.Role_ROLE_PUBLISHER, yrdv1.Role_ROLE_CDO, yrdv1.Role_ROLE_AUDITOR, yrdv1.Role_ROLE_OPERATOR,
	}
	n := 0
	effects := map[yrdv1.Effect]int{}
	for _, level := range levels {
		for _, pi := range pis {
			for _, id := range idRoles {
				for g := grantNone; g < nGrantCases; g++ {
					for _, outside := range []bool{false, true} {
						for s := rowsShow; s < nShapes; s++ {
							for _, role := range roles {
								c := combo{level, pi, id, g, outside, s, role}
								got := decide(t, c.request())
								want := oracle(c)
								want.Reason = got.GetReason()
								if !proto.Equal(got, want) {
									t.Errorf("%v:\n got  %v %v %v grant=%q\n want %v %v %v grant=%q\n reason: %s", c,
										got.GetEffect(), got.GetRuleIds(), treatments(got), got.GetGrantId(),
										want.GetEffect(), want.GetRuleIds(), treatments(want), want.GetGrantId(), got.GetReason())
								}
								n++
								effects[got.GetEffect()]++
							}
						}
					}
				}
			}
		}
	}
	// The matrix must exercise every effect, or it proves little.
	if effects[deny] == 0 || effects[allowRows] == 0 || effects[allowAggs] == 0 {
		t.Errorf("matrix of %d cases misses an effect: %v", n, effects)
	}
	t.Logf("%d cases: %v", n, effects)
}

// The grant the matrix's decisions rely on is the one ApplicableGrant
// names, and only approved, unexpired grants for the right purpose and
// organisation apply.
func TestApplicableGrantMatrix(t *testing.T) {
	for g := grantNone; g < nGrantCases; g++ {
		for _, level := range []yrdv1.ClassificationLevel{yrdv1.ClassificationLevel_LEVEL_GENERAL, yrdv1.ClassificationLevel_LEVEL_IMPORTANT} {
			c := combo{level: level, pi: yrdv1.PersonalInfo_PERSONAL_INFO_NONE, id: yrdv1.IdentifierRole_IDENTIFIER_NONE, grant: g, shape: aggStat, role: yrdv1.Role_ROLE_ANALYST}
			got, why := ApplicableGrant(c.request())
			wantApplies := slices.Contains([]grantCase{grantApproved, grantApprovedPersonal}, g)
			if (got != nil) != wantApplies || (got == nil) == (why == "") {
				t.Errorf("%v: ApplicableGrant = %v, %q; want applies=%v", c, got.GetId(), why, wantApplies)
			}
		}
	}
}
