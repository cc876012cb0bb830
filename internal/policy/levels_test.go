package policy

import (
	"strconv"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func personalGrant(r *Request) {
	g := approved("g-care", elderlyID, "elderly-care-planning", rows)
	g.AllowPersonal = true
	r.Grants = []*yrdv1.Grant{approved("g-aa", elderlyID, "elderly-care-planning", rows), g}
}

func TestGeneralRules(t *testing.T) { run(t, generalCases()) }

// generalCases is the table of cases for general-level data, one entry
// per rule and edge; long because it is the table.
func generalCases() []ruleCase {
	allPersonal := []string{"general.rows", "general.personal.pseudonymise", "general.quasi.generalise", "general.personal.mask",
		"general.sensitive.withhold", "general.quasi.withhold"}
	noisy := []string{"general.aggregates", "aggregate.noise"}
	return []ruleCase{
		{
			name:   "rows of every column, no grant",
			req:    elderlyRows,
			effect: allowRows, ids: allPersonal,
			shown: []string{"person_id", "district", "age", "gender", "living_alone", "care_level"},
			columns: map[string]yrdv1.ColumnTreatment{
				"person_id": pseudo, "district": raw, "age": generalised, "gender": withheld, "living_alone": masked, "care_level": withheld,
			},
			reason: []string{
				"general data: rows, at most 100000",
				`direct identifiers pseudonymised, keyed per dataset and grant: "person_id"`,
				`quasi-identifiers generalised: "age"`,
				`quasi-identifiers without a generalisation withheld: "gender"`,
				`personal columns masked: "living_alone"`,
				`sensitive columns withheld: "care_level"`,
			},
			level: yrdv1.ClassificationLevel_LEVEL_GENERAL,
		},
		{
			name:   "projection order is kept",
			req:    with(elderlyRows, func(r *Request) { r.Access.Columns = []string{"living_alone", "district"} }),
			effect: allowRows, ids: []string{"general.rows", "general.personal.mask"},
			shown: []string{"living_alone", "district"},
		},
		{
			name:   "non-personal dataset",
			req:    func(t testing.TB) *Request { return request(t, creditID, "credit-assessment", rows, nil) },
			effect: allowRows, ids: []string{"general.rows"},
			columns: map[string]yrdv1.ColumnTreatment{"credit_code": raw, "rating": raw},
		},
		{
			name:   "grant with allow_personal: personal raw, sensitive still withheld",
			req:    with(elderlyRows, func(r *Request) { personalGrant(r) }),
			effect: allowRows, ids: []string{"general.rows", "general.personal.grant", "general.sensitive.withhold"},
			columns: map[string]yrdv1.ColumnTreatment{
				"person_id": raw, "age": raw, "living_alone": raw, "care_level": withheld,
			},
			reason:  []string{`personal columns raw under grant "g-care": "person_id", "age", "gender", "living_alone"`},
			grantID: "g-care",
		},
		{
			name:   "applicable grant without allow_personal scopes pseudonyms",
			req:    with(elderlyRows, func(r *Request) { r.Grants = []*yrdv1.Grant{approved("g-1", elderlyID, "elderly-care-planning", rows)} }),
			effect: allowRows, ids: allPersonal, grantID: "g-1",
			columns: map[string]yrdv1.ColumnTreatment{"person_id": pseudo, "age": generalised},
		},
		{
			name: "aggregates-only grant does not unmask rows",
			req: with(elderlyRows, func(r *Request) {
				g := approved("g-agg", elderlyID, "elderly-care-planning", aggs)
				g.AllowPersonal = true
				r.Grants = []*yrdv1.Grant{g}
			}),
			effect: allowRows, ids: allPersonal,
		},
		{
			name: "expired personal grant does not unmask",
			req: with(elderlyRows, func(r *Request) {
				personalGrant(r)
				r.Grants = r.Grants[1:]
				r.Grants[0].ExpiresAt = ts(now)
			}),
			effect: allowRows, ids: allPersonal,
		},
		{
			name:   "filter on a generalised column",
			req:    with(elderlyRows, func(r *Request) { r.Access.FilterColumns = []string{"district", "age"} }),
			effect: deny, ids: []string{"general.hidden-predicate"},
			reason: []string{`does not show raw: "age" (generalised)`},
		},
		{
			name:   "filter on a withheld quasi-identifier",
			req:    with(elderlyRows, func(r *Request) { r.Access.FilterColumns = []string{"gender"} }),
			effect: deny, ids: []string{"general.hidden-predicate"},
			reason: []string{`does not show raw: "gender" (withheld)`},
		},
		{
			name:   "order by a sensitive column",
			req:    with(elderlyRows, func(r *Request) { r.Access.OrderBy = []string{"care_level"} }),
			effect: deny, ids: []string{"general.hidden-predicate"}, reason: []string{`"care_level" (withheld)`},
		},
		{
			name:   "filter on a masked column",
			req:    with(elderlyRows, func(r *Request) { r.Access.FilterColumns = []string{"living_alone"} }),
			effect: deny, ids: []string{"general.hidden-predicate"}, reason: []string{`"living_alone" (masked)`},
		},
		{
			name: "filter on a personal column under a personal grant",
			req: with(elderlyRows, func(r *Request) {
				personalGrant(r)
				r.Access.Columns = []string{"district", "age"}
				r.Access.FilterColumns = []string{"age", "living_alone"}
			}),
			effect: allowRows, ids: []string{"general.rows", "general.personal.grant"}, grantID: "g-care",
		},
		{
			name: "aggregates: group keys and statistics are raw, with noise",
			req: with(elderlyAggs, func(r *Request) {
				personalGrant(r)
				r.Access.GroupBy = []string{"district", "age"}
				r.Access.Aggregates = append(r.Access.Aggregates, agg("avg", "care_level"))
			}),
			effect: allowAggs, ids: noisy, grantID: "g-care",
			shown:   []string{"district", "age", "care_level"},
			columns: map[string]yrdv1.ColumnTreatment{"age": raw, "care_level": raw},
			reason:  []string{"aggregates over groups of at least 10 individuals", `epsilon 0.5 from the requester's budget for "yrd.elderly-population.v1"`},
		},
		{
			name:   "aggregate of a sensitive column without a grant",
			req:    with(elderlyAggs, func(r *Request) { r.Access.Aggregates = append(r.Access.Aggregates, agg("sum", "care_level")) }),
			effect: deny, ids: []string{"aggregate.sensitive-grant"},
			reason: []string{"need a grant that allows personal data"},
		},
		{
			name:   "aggregate filtered on a sensitive column without a grant",
			req:    with(elderlyAggs, func(r *Request) { r.Access.FilterColumns = []string{"care_level"} }),
			effect: deny, ids: []string{"aggregate.sensitive-grant"},
		},
		{
			name: "aggregate grouped by a sensitive column under a grant without personal data",
			req: with(elderlyAggs, func(r *Request) {
				r.Grants = []*yrdv1.Grant{approved("g-1", elderlyID, "elderly-care-planning", aggs)}
				r.Access.GroupBy = []string{"care_level"}
			}),
			effect: deny, ids: []string{"aggregate.sensitive-grant"}, reason: []string{`grant "g-1" does not`},
		},
		{
			name:   "aggregate filtered on a sensitive column under a personal grant",
			req:    with(elderlyAggs, func(r *Request) { personalGrant(r); r.Access.FilterColumns = []string{"care_level"} }),
			effect: allowAggs, ids: noisy, grantID: "g-care",
		},
		{
			name:   "exact aggregates chosen by the owner: counts exact",
			req:    with(elderlyAggs, func(r *Request) { r.Dataset.ExactAggregates = true }),
			effect: allowAggs, ids: []string{"general.aggregates", "aggregate.exact"},
			reason: []string{"exact aggregates"},
		},
		{
			name: "exact aggregates chosen by the owner: a personal column aggregated is still noised",
			req: with(elderlyAggs, func(r *Request) {
				r.Dataset.ExactAggregates = true
				r.Access.Aggregates = append(r.Access.Aggregates, agg("avg", "age"))
			}),
			effect: allowAggs, ids: noisy,
		},
		{
			name:   "noise: a dataset epsilon above the policy's bound is capped",
			req:    with(elderlyAggs, func(r *Request) { r.Dataset.NoiseEpsilon = 4 }),
			effect: allowAggs, ids: noisy, reason: []string{"epsilon 1 from"},
		},
		{
			name:   "noise: min and max cannot carry it",
			req:    with(elderlyAggs, func(r *Request) { r.Access.Aggregates = append(r.Access.Aggregates, agg("max", "district")) }),
			effect: deny, ids: []string{"aggregate.noise-unsupported"}, reason: []string{"max(district)"},
		},
		{
			name: "noise: a sum needs a declared bound",
			req: with(elderlyAggs, func(r *Request) {
				r.Dataset.Schema.Columns[2].SumBound = 0
				r.Access.Aggregates = append(r.Access.Aggregates, agg("sum", "age"))
			}),
			effect: deny, ids: []string{"aggregate.sum-bound"}, reason: []string{`"age"`},
		},
		{
			name:   "dataset raises k for its aggregates",
			req:    with(elderlyAggs, func(r *Request) { r.Dataset.MinGroupSize = 25 }),
			effect: allowAggs, ids: noisy, minGroup: 25,
			reason: []string{"aggregates over groups of at least 25 individuals"},
		},
		{
			name:   "dataset k below the default has no effect",
			req:    with(elderlyAggs, func(r *Request) { r.Dataset.MinGroupSize = 3 }),
			effect: allowAggs, ids: noisy, minGroup: 10,
			reason: []string{"aggregates over groups of at least 10 individuals"},
		},
		{
			name:   "dataset k equal to the default",
			req:    with(elderlyAggs, func(r *Request) { r.Dataset.MinGroupSize = 10 }),
			effect: allowAggs, ids: noisy, minGroup: 10,
		},
		{
			name:   "dataset k does not touch rows",
			req:    with(elderlyRows, func(r *Request) { r.Dataset.MinGroupSize = 25 }),
			effect: allowRows, ids: allPersonal,
		},
	}
}

func TestGeneralParams(t *testing.T) {
	r := elderlyAggs(t)
	r.Params.Version, r.Params.DefaultMinGroupSize, r.Params.RowCap = 7, 25, 500
	d := decide(t, r)
	if d.GetMinGroupSize() != 25 || d.GetPolicyVersion() != 7 {
		t.Errorf("min_group_size %d, policy_version %d; want 25, 7", d.GetMinGroupSize(), d.GetPolicyVersion())
	}
	r.Access.ResultForm, r.Access.GroupBy, r.Access.Aggregates = rows, nil, nil
	if d := decide(t, r); d.GetRowCap() != 500 {
		t.Errorf("row_cap %d, want 500", d.GetRowCap())
	}
}

func TestImportantRules(t *testing.T) { run(t, importantCases()) }

// importantCases is the table of cases for important-level data, one
// entry per rule and edge; long because it is the table.
func importantCases() []ruleCase {
	grantIs := func(edit func(g *yrdv1.Grant)) func(testing.TB) *Request {
		return with(hospitalAggs, func(r *Request) { edit(r.Grants[0]) })
	}
	return []ruleCase{
		{
			name:   "aggregates under a grant among twenty",
			req:    with(hospitalAggs, func(r *Request) { r.Grants = manyGrants(hospitalID, "public-health-research", 20) }),
			effect: allowAggs, ids: []string{"important.grant", "important.k-anonymity", "aggregate.noise"},
			shown:   []string{"department", "diagnosis", "cost"},
			columns: map[string]yrdv1.ColumnTreatment{"diagnosis": raw, "cost": raw},
			grantID: "g-13", reason: []string{`relies on grant "g-13"`, "at least 10 individuals"},
			level: yrdv1.ClassificationLevel_LEVEL_IMPORTANT,
		},
		{
			name:   "dataset raises k",
			req:    with(hospitalAggs, func(r *Request) { r.Dataset.MinGroupSize = 50 }),
			effect: allowAggs, ids: []string{"important.grant", "important.k-anonymity", "aggregate.noise"}, grantID: "g-health", minGroup: 50,
			reason: []string{"important data: aggregates over groups of at least 50 individuals"},
		},
		{
			name:   "dataset k below the default has no effect",
			req:    with(hospitalAggs, func(r *Request) { r.Dataset.MinGroupSize = 2 }),
			effect: allowAggs, ids: []string{"important.grant", "important.k-anonymity", "aggregate.noise"}, grantID: "g-health", minGroup: 10,
			reason: []string{"important data: aggregates over groups of at least 10 individuals"},
		},
		{
			name: "dataset k below a raised policy k has no effect",
			req: with(hospitalAggs, func(r *Request) {
				r.Params.DefaultMinGroupSize = 30
				r.Dataset.MinGroupSize = 20
			}),
			effect: allowAggs, ids: []string{"important.grant", "important.k-anonymity", "aggregate.noise"}, grantID: "g-health", minGroup: 30,
			reason: []string{"at least 30 individuals"},
		},
		{
			name:   "rows grant covers aggregates",
			req:    grantIs(func(g *yrdv1.Grant) { g.ResultForm = rows }),
			effect: allowAggs, ids: []string{"important.grant", "important.k-anonymity", "aggregate.noise"}, grantID: "g-health",
		},
		{
			name:   "no grant",
			req:    with(hospitalAggs, func(r *Request) { r.Grants = nil }),
			effect: deny, ids: []string{"important.grant"},
			reason: []string{`important data needs an approved grant: no grant on dataset "nanjing.health.hospital-visits" for hangzhou/hz-lab`},
		},
		{
			name:   "grant of another organisation counts as none",
			req:    grantIs(func(g *yrdv1.Grant) { g.RequesterOrg = "hz-other" }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{"no grant on dataset"},
		},
		{
			name:   "grant of another city counts as none",
			req:    grantIs(func(g *yrdv1.Grant) { g.RequesterCity = "suzhou-js" }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{"no grant on dataset"},
		},
		{
			name:   "grant for another dataset counts as none",
			req:    grantIs(func(g *yrdv1.Grant) { g.DatasetId = elderlyID }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{"no grant on dataset"},
		},
		{
			name:   "only requested",
			req:    grantIs(func(g *yrdv1.Grant) { g.State, g.ExpiresAt = yrdv1.GrantState_GRANT_STATE_REQUESTED, nil }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-health" is only requested, not approved`},
		},
		{
			name:   "rejected",
			req:    grantIs(func(g *yrdv1.Grant) { g.State = yrdv1.GrantState_GRANT_STATE_REJECTED }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-health" was rejected`},
		},
		{
			name:   "revoked",
			req:    grantIs(func(g *yrdv1.Grant) { g.State = yrdv1.GrantState_GRANT_STATE_REVOKED }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-health" was revoked`},
		},
		{
			name:   "revoked_at set on an approved grant",
			req:    grantIs(func(g *yrdv1.Grant) { g.RevokedAt = ts(now.AddDate(0, 0, -3)) }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-health" was revoked at 2025-05-29T08:00:00Z`},
		},
		{
			name:   "expired",
			req:    grantIs(func(g *yrdv1.Grant) { g.ExpiresAt = ts(now.AddDate(0, -1, 0)) }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-health" expired at 2025-05-01T08:00:00Z`},
		},
		{
			name:   "expires exactly now",
			req:    grantIs(func(g *yrdv1.Grant) { g.ExpiresAt = ts(now) }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{"expired at 2025-06-01T08:00:00Z"},
		},
		{
			name:   "expires one nanosecond after now",
			req:    grantIs(func(g *yrdv1.Grant) { g.ExpiresAt = ts(now.Add(1)) }),
			effect: allowAggs, ids: []string{"important.grant", "important.k-anonymity", "aggregate.noise"}, grantID: "g-health",
		},
		{
			name:   "no expiry",
			req:    grantIs(func(g *yrdv1.Grant) { g.ExpiresAt = nil }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-health" has no expiry date`},
		},
		{
			name:   "other purpose",
			req:    grantIs(func(g *yrdv1.Grant) { g.Purpose = "health-service-planning" }),
			effect: deny, ids: []string{"important.grant"},
			reason: []string{`grant "g-health" is for purpose "health-service-planning", not "public-health-research"`},
		},
		{
			name:   "grant without a result form",
			req:    grantIs(func(g *yrdv1.Grant) { g.ResultForm = yrdv1.ResultForm_RESULT_FORM_UNSPECIFIED }),
			effect: deny, ids: []string{"important.grant"}, reason: []string{"names no result form"},
		},
		{
			name: "closest grant explains the denial",
			req: with(hospitalAggs, func(r *Request) {
				other := approved("g-0", hospitalID, "health-service-planning", aggs)
				asked := approved("g-9", hospitalID, "public-health-research", aggs)
				asked.State, asked.ExpiresAt = yrdv1.GrantState_GRANT_STATE_REQUESTED, nil
				r.Grants = []*yrdv1.Grant{other, asked}
			}),
			effect: deny, ids: []string{"important.grant"}, reason: []string{`grant "g-9" is only requested`},
		},
		{
			name: "rows under a valid grant",
			req: with(hospitalAggs, func(r *Request) {
				r.Access.ResultForm, r.Access.GroupBy, r.Access.Aggregates = rows, nil, nil
				r.Access.Columns = []string{"department", "diagnosis"}
			}),
			effect: deny, ids: []string{"important.aggregates-only"},
			reason: []string{"important data leaves only as aggregates, not rows"},
			shown:  []string{"department", "diagnosis"},
		},
		{
			name: "rows without a grant",
			req: with(hospitalAggs, func(r *Request) {
				r.Access.ResultForm, r.Access.GroupBy, r.Access.Aggregates = rows, nil, nil
				r.Grants = nil
			}),
			effect: deny, ids: []string{"important.grant", "important.aggregates-only"},
		},
	}
}

// manyGrants returns n grants on datasetID of which only "g-13" applies.
func manyGrants(datasetID, purpose string, n int) []*yrdv1.Grant {
	var gs []*yrdv1.Grant
	for i := range n {
		g := approved("g-"+strconv.Itoa(i), datasetID, purpose, aggs)
		g.AllowPersonal = true
		switch i % 5 {
		case 0:
			g.RequesterOrg = "hz-other"
		case 1:
			g.ExpiresAt = ts(now.AddDate(0, 0, -i))
		case 2:
			g.Purpose = "other"
		case 3:
			if i != 13 {
				g.State = yrdv1.GrantState_GRANT_STATE_REVOKED
			}
		case 4:
			g.State = yrdv1.GrantState_GRANT_STATE_REQUESTED
		}
		gs = append(gs, g)
	}
	return gs
}
