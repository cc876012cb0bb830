package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// ruleCase is one hand-written decision: a request on a sample dataset and
// what the decision must say.
type ruleCase struct {
	name    string
	req     func(t testing.TB) *Request
	effect  yrdv1.Effect
	ids     []string
	columns map[string]yrdv1.ColumnTreatment // key columns only
	shown   []string                         // if set, exactly these columns in order
	reason  []string                         // substrings of the reason
	grantID string
	level   yrdv1.ClassificationLevel // if set
	// k of an allowed aggregate; 0 means the default params' k.
	minGroup uint32
}

func (c ruleCase) check(t *testing.T) {
	t.Helper()
	d := decide(t, c.req(t))
	if d.GetEffect() != c.effect || !slices.Equal(d.GetRuleIds(), c.ids) {
		t.Errorf("got %v %q, want %v %q\nreason: %s", d.GetEffect(), d.GetRuleIds(), c.effect, c.ids, d.GetReason())
	}
	got := treatments(d)
	for col, want := range c.columns {
		if got[col] != want {
			t.Errorf("column %s: %v, want %v (all: %v)", col, got[col], want, got)
		}
	}
	if c.shown != nil && !slices.Equal(columnNames(d), c.shown) {
		t.Errorf("columns %q, want %q", columnNames(d), c.shown)
	}
	for _, s := range c.reason {
		if !strings.Contains(d.GetReason(), s) {
			t.Errorf("reason %q does not contain %q", d.GetReason(), s)
		}
	}
	if d.GetGrantId() != c.grantID {
		t.Errorf("grant_id %q, want %q", d.GetGrantId(), c.grantID)
	}
	if c.level != 0 && d.GetDerivedLevel() != c.level {
		t.Errorf("derived_level %v, want %v", d.GetDerivedLevel(), c.level)
	}
	switch d.GetEffect() {
	case allowRows:
		if d.GetRowCap() != DefaultParams().GetRowCap() || d.GetMinGroupSize() != 0 {
			t.Errorf("rows: row_cap %d, min_group_size %d", d.GetRowCap(), d.GetMinGroupSize())
		}
	case allowAggs:
		k := c.minGroup
		if k == 0 {
			k = DefaultParams().GetDefaultMinGroupSize()
		}
		if d.GetMinGroupSize() != k || d.GetRowCap() != 0 {
			t.Errorf("aggregates: row_cap %d, min_group_size %d", d.GetRowCap(), d.GetMinGroupSize())
		}
	}
}

func run(t *testing.T, cases []ruleCase) {
	for _, c := range cases {
		t.Run(c.name, c.check)
	}
}

// with edits a request built by base.
func with(base func(testing.TB) *Request, edit func(*Request)) func(testing.TB) *Request {
	return func(t testing.TB) *Request {
		r := base(t)
		edit(r)
		return r
	}
}

func elderlyRows(t testing.TB) *Request {
	return request(t, elderlyID, "elderly-care-planning", rows, nil)
}

func elderlyAggs(t testing.TB) *Request {
	return request(t, elderlyID, "elderly-care-planning", aggs, func(a *yrdv1.AccessRequest) {
		a.GroupBy = []string{"district"}
		a.Aggregates = []*yrdv1.Aggregate{count()}
	})
}

func TestGateRules(t *testing.T) { run(t, gateCases()) }

// gateCases is the table of cases for the gate rules (parameters, a
// complete request, role, retired dataset, rights, purpose, core level),
// one entry per rule and edge; long because it is the table.
func gateCases() []ruleCase {
	return []ruleCase{
		{
			name:   "publisher may not query",
			req:    with(elderlyRows, func(r *Request) { r.Requester.Role = yrdv1.Role_ROLE_PUBLISHER }),
			effect: deny, ids: []string{"role.analyst"},
			reason:  []string{"only analysts may query data", "ROLE_PUBLISHER"},
			columns: map[string]yrdv1.ColumnTreatment{"district": withheld, "person_id": withheld},
		},
		{
			name:   "no principal",
			req:    with(elderlyRows, func(r *Request) { r.Requester = nil }),
			effect: deny, ids: []string{"role.analyst"}, reason: []string{"ROLE_UNSPECIFIED"},
		},
		{
			name:   "params missing",
			req:    with(elderlyRows, func(r *Request) { r.Params = nil }),
			effect: deny, ids: []string{"params.valid"}, reason: []string{"policy parameters are missing"},
		},
		{
			name:   "k below 2",
			req:    with(elderlyRows, func(r *Request) { r.Params.DefaultMinGroupSize = 1 }),
			effect: deny, ids: []string{"params.valid"},
		},
		{
			name:   "no decision time",
			req:    with(elderlyRows, func(r *Request) { r.Now = time.Time{} }),
			effect: deny, ids: []string{"request.complete"}, reason: []string{"no decision time"},
		},
		{
			name: "unknown column is denied, not trusted",
			req: with(elderlyRows, func(r *Request) {
				r.Access.GroupBy = []string{"district", "distrct"}
				r.Access.ResultForm = aggs
				r.Access.Aggregates = []*yrdv1.Aggregate{count()}
			}),
			effect: deny, ids: []string{"request.complete"},
			reason: []string{`group_by[1]: unknown column "distrct"`},
			shown:  []string{"district"},
		},
		{
			name:   "dataset mismatch",
			req:    with(elderlyRows, func(r *Request) { r.Access.DatasetId = hospitalID }),
			effect: deny, ids: []string{"request.complete"}, reason: []string{"dataset_id: names dataset"},
		},
		{
			name:   "retired dataset",
			req:    with(elderlyRows, func(r *Request) { r.Dataset.Retired = true }),
			effect: deny, ids: []string{"dataset.retired"}, reason: []string{"is retired"},
		},
		{
			name:   "data rights not confirmed",
			req:    with(elderlyRows, func(r *Request) { r.Dataset.DataRights.ProcessingUseRight = false }),
			effect: deny, ids: []string{"rights.processing-use"}, reason: []string{"data rights not confirmed"},
		},
		{
			name:   "no data rights record",
			req:    with(elderlyRows, func(r *Request) { r.Dataset.DataRights = nil }),
			effect: deny, ids: []string{"rights.processing-use"},
		},
		{
			name:   "purpose not permitted",
			req:    with(elderlyRows, func(r *Request) { r.Access.Purpose = "marketing" }),
			effect: deny, ids: []string{"purpose.permitted"},
			reason: []string{`purpose "marketing" is not permitted`, "elderly-care-planning, public-service-research"},
		},
		{
			name: "purpose required even without a list",
			req: with(elderlyRows, func(r *Request) {
				r.Access.Purpose = ""
				r.Dataset.PermittedPurposes = nil
			}),
			// ValidateAccess rejects it too, so request.complete fires first.
			effect: deny, ids: []string{"request.complete"}, reason: []string{"purpose: required"},
		},
		{
			name:   "any purpose when none are listed",
			req:    with(elderlyRows, func(r *Request) { r.Dataset.PermittedPurposes = nil; r.Access.Purpose = "anything" }),
			effect: allowRows, ids: []string{"general.rows", "general.personal.pseudonymise", "general.quasi.generalise", "general.personal.mask",
				"general.sensitive.withhold", "general.quasi.withhold"},
		},
		{
			name: "core data, whatever the grant",
			req: with(func(t testing.TB) *Request {
				return request(t, registryID, "population-statistics", aggs, groupDistrict)
			}, func(r *Request) {
				g := approved("g-core", registryID, "population-statistics", rows)
				g.AllowPersonal = true
				r.Grants = []*yrdv1.Grant{g}
			}),
			effect: deny, ids: []string{"level.core"}, reason: []string{"is core data: metadata only"},
			level: yrdv1.ClassificationLevel_LEVEL_CORE,
		},
		{
			name:   "unknown level counts as core",
			req:    with(elderlyAggs, func(r *Request) { r.Dataset.Level = yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED }),
			effect: deny, ids: []string{"level.core"}, reason: []string{"no known classification level"},
			level: yrdv1.ClassificationLevel_LEVEL_CORE,
		},
		{
			name: "every failing rule of the dataset group",
			req: with(func(t testing.TB) *Request { return request(t, registryID, "marketing", aggs, groupDistrict) }, func(r *Request) {
				r.Dataset.Retired = true
				r.Dataset.DataRights.ProcessingUseRight = false
			}),
			effect: deny, ids: []string{"dataset.retired", "rights.processing-use", "purpose.permitted", "level.core"},
		},
		{
			name:   "role is checked before the dataset",
			req:    with(elderlyRows, func(r *Request) { r.Requester.Role = yrdv1.Role_ROLE_CDO; r.Dataset.Retired = true }),
			effect: deny, ids: []string{"role.analyst"},
		},
	}
}

func groupDistrict(a *yrdv1.AccessRequest) {
	a.GroupBy = []string{"district"}
	a.Aggregates = []*yrdv1.Aggregate{count()}
}

func TestQueryRules(t *testing.T) { run(t, queryCases()) }

func queryCases() []ruleCase {
	return []ruleCase{
		{
			name:   "filter on a direct identifier",
			req:    with(elderlyRows, func(r *Request) { r.Access.FilterColumns = []string{"person_id"} }),
			effect: deny, ids: []string{"identifier.direct"},
			reason: []string{`no filter, group or order on a direct identifier: "person_id"`},
		},
		{
			name: "order by a direct identifier, even with a personal grant",
			req: with(elderlyRows, func(r *Request) {
				r.Access.OrderBy = []string{"person_id"}
				g := approved("g-1", elderlyID, "elderly-care-planning", rows)
				g.AllowPersonal = true
				r.Grants = []*yrdv1.Grant{g}
			}),
			effect: deny, ids: []string{"identifier.direct"},
		},
		{
			name:   "group by a direct identifier on important data",
			req:    with(hospitalAggs, func(r *Request) { r.Access.GroupBy = []string{"patient_id"} }),
			effect: deny, ids: []string{"identifier.direct"}, reason: []string{`"patient_id"`},
		},
		{
			name:   "count distinct over a direct identifier is fine",
			req:    with(elderlyAggs, func(r *Request) { r.Access.Aggregates = []*yrdv1.Aggregate{agg("count_distinct", "person_id")} }),
			effect: allowAggs, ids: []string{"general.aggregates", "aggregate.noise"},
			shown:   []string{"district", "person_id"},
			columns: map[string]yrdv1.ColumnTreatment{"district": raw, "person_id": raw},
		},
		{
			name:   "max over a personal column",
			req:    with(elderlyAggs, func(r *Request) { r.Access.Aggregates = []*yrdv1.Aggregate{count(), agg("max", "age")} }),
			effect: deny, ids: []string{"aggregate.no-minmax-personal"},
			reason: []string{"reveals one person's value: max(age)"},
		},
		{
			name:   "min over a sensitive column",
			req:    with(elderlyAggs, func(r *Request) { r.Access.Aggregates = []*yrdv1.Aggregate{agg("min", "care_level")} }),
			effect: deny, ids: []string{"aggregate.no-minmax-personal"}, reason: []string{"min(care_level)"},
		},
		{
			name: "min over a non-personal column of exact aggregates",
			req: with(elderlyAggs, func(r *Request) {
				r.Dataset.ExactAggregates = true
				r.Access.Aggregates = []*yrdv1.Aggregate{agg("min", "district")}
			}),
			effect: allowAggs, ids: []string{"general.aggregates", "aggregate.exact"},
		},
		{
			name:   "shown column neither grouped nor aggregated",
			req:    with(elderlyAggs, func(r *Request) { r.Access.Columns = []string{"district", "age"} }),
			effect: deny, ids: []string{"aggregate.group-columns"},
			reason: []string{`these are neither: "age"`},
			shown:  []string{"district", "age"},
		},
		{
			name: "every failing rule of the query group",
			req: with(elderlyAggs, func(r *Request) {
				r.Access.GroupBy = []string{"person_id"}
				r.Access.Aggregates = []*yrdv1.Aggregate{agg("max", "age")}
				r.Access.Columns = []string{"gender"}
			}),
			effect: deny, ids: []string{"identifier.direct", "aggregate.no-minmax-personal", "aggregate.group-columns"},
		},
	}
}

func hospitalAggs(t testing.TB) *Request {
	r := request(t, hospitalID, "public-health-research", aggs, func(a *yrdv1.AccessRequest) {
		a.GroupBy = []string{"department", "diagnosis"}
		a.FilterColumns = []string{"visit_date"}
		a.Aggregates = []*yrdv1.Aggregate{count(), agg("avg", "cost")}
	})
	g := approved("g-health", hospitalID, "public-health-research", aggs)
	g.AllowPersonal = true // diagnosis and cost are sensitive
	r.Grants = []*yrdv1.Grant{g}
	return r
}
