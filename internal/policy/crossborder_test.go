package policy

import (
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// abroad moves a request's requester outside the mainland.
func abroad(base func(testing.TB) *Request, edit func(*Request)) func(testing.TB) *Request {
	return with(base, func(r *Request) {
		r.RequesterOutsideMainland = true
		if edit != nil {
			edit(r)
		}
	})
}

func tripsRows(t testing.TB) *Request {
	return request(t, tripsID, "autonomous-driving-research", rows, func(a *yrdv1.AccessRequest) {
		a.Columns = []string{"trip_id", "distance_km", "autonomous_share"}
	})
}

func TestCrossBorderRules(t *testing.T) { run(t, crossBorderCases()) }

// crossBorderCases is the table of cases for a requester outside the
// mainland, one entry per rule and edge; long because it is the table.
func crossBorderCases() []ruleCase {
	threshold := "cross-border exports of lingang-ica reached 100000 individuals this year, the limit for non-sensitive personal information"
	return []ruleCase{
		{
			name:   "non-personal rows of an eligible trial dataset",
			req:    abroad(tripsRows, nil),
			effect: allowRows, ids: []string{"general.rows"},
			columns: map[string]yrdv1.ColumnTreatment{"trip_id": raw, "distance_km": raw},
		},
		{
			name: "grants do not matter abroad",
			req: abroad(tripsRows, func(r *Request) {
				r.Grants = []*yrdv1.Grant{approved("g-1", tripsID, "autonomous-driving-research", rows)}
			}),
			effect: allowRows, ids: []string{"general.rows"},
		},
		{
			name:   "empty projection withholds personal columns",
			req:    abroad(tripsRows, func(r *Request) { r.Access.Columns = nil }),
			effect: allowRows, ids: []string{"crossborder.no-personal", "general.rows"},
			shown: []string{"trip_id", "vehicle_id", "start_hour", "start_grid", "end_grid", "distance_km", "duration_s", "autonomous_share"},
			columns: map[string]yrdv1.ColumnTreatment{
				"trip_id": raw, "vehicle_id": withheld, "start_hour": withheld, "start_grid": withheld, "end_grid": withheld, "duration_s": raw,
			},
			reason: []string{`personal information stays in the mainland, withheld: "vehicle_id", "start_hour", "start_grid", "end_grid"`},
		},
		{
			name:   "projected personal column",
			req:    abroad(tripsRows, func(r *Request) { r.Access.Columns = append(r.Access.Columns, "vehicle_id") }),
			effect: deny, ids: []string{"crossborder.no-personal"},
			reason: []string{`personal information may not leave the mainland, and the request uses "vehicle_id"`},
		},
		{
			name:   "filter on a personal column",
			req:    abroad(tripsRows, func(r *Request) { r.Access.FilterColumns = []string{"start_grid"} }),
			effect: deny, ids: []string{"crossborder.no-personal"}, reason: []string{`"start_grid"`},
		},
		{
			name:   "order by a personal column",
			req:    abroad(tripsRows, func(r *Request) { r.Access.OrderBy = []string{"start_hour"} }),
			effect: deny, ids: []string{"crossborder.no-personal"},
		},
		{
			name: "aggregates without personal columns",
			req: abroad(tripsRows, func(r *Request) {
				r.Access.ResultForm, r.Access.Columns = aggs, nil
				r.Access.Aggregates = []*yrdv1.Aggregate{count(), agg("avg", "distance_km")}
			}),
			effect: allowAggs, ids: []string{"general.aggregates", "aggregate.noise"}, shown: []string{"distance_km"},
		},
		{
			name: "aggregates abroad keep the dataset's raised k",
			req: abroad(tripsRows, func(r *Request) {
				r.Access.ResultForm, r.Access.Columns = aggs, nil
				r.Access.Aggregates = []*yrdv1.Aggregate{count()}
				r.Dataset.MinGroupSize = 40
			}),
			effect: allowAggs, ids: []string{"general.aggregates", "aggregate.noise"}, minGroup: 40,
			reason: []string{"at least 40 individuals"},
		},
		{
			name: "aggregate over a personal column",
			req: abroad(tripsRows, func(r *Request) {
				r.Access.ResultForm, r.Access.Columns = aggs, nil
				r.Access.Aggregates = []*yrdv1.Aggregate{agg("count_distinct", "vehicle_id")}
			}),
			effect: deny, ids: []string{"crossborder.no-personal"},
		},
		{
			name: "grouped by a personal column",
			req: abroad(tripsRows, func(r *Request) {
				r.Access.ResultForm, r.Access.Columns = aggs, nil
				r.Access.GroupBy, r.Access.Aggregates = []string{"start_grid"}, []*yrdv1.Aggregate{count()}
			}),
			effect: deny, ids: []string{"crossborder.no-personal"},
		},
		{
			name: "general data that is neither eligible nor in a trial sector",
			req: abroad(func(t testing.TB) *Request {
				return request(t, elderlyID, "elderly-care-planning", rows, func(a *yrdv1.AccessRequest) { a.Columns = []string{"district"} })
			}, nil),
			effect: deny, ids: []string{"crossborder.eligible", "crossborder.trial-sector"},
			reason: []string{
				`dataset "shanghai.civil-affairs.elderly-population" is not eligible for cross-border transfer`,
				`sector "civil-affairs" is not in the Lingang cross-border trial (connected-vehicles, fintech, industrial-internet)`,
			},
			columns: map[string]yrdv1.ColumnTreatment{"district": withheld},
		},
		{
			name: "trial sector but not marked eligible",
			req: abroad(func(t testing.TB) *Request {
				return request(t, creditID, "credit-assessment", rows, nil)
			}, nil),
			effect: deny, ids: []string{"crossborder.eligible"},
		},
		{
			name:   "sector dropped from the trial",
			req:    abroad(tripsRows, func(r *Request) { r.Params.TrialSectors = []string{"fintech"} }),
			effect: deny, ids: []string{"crossborder.trial-sector"}, reason: []string{"(fintech)"},
		},
		{
			name:   "important data",
			req:    abroad(hospitalAggs, nil),
			effect: deny, ids: []string{"crossborder.general-only", "crossborder.eligible", "crossborder.trial-sector", "crossborder.no-personal"},
			reason: []string{`only general data may leave the mainland, and dataset "nanjing.health.hospital-visits" is important data`},
			level:  yrdv1.ClassificationLevel_LEVEL_IMPORTANT,
		},
		{
			name: "core data stops at level.core",
			req: abroad(func(t testing.TB) *Request {
				return request(t, registryID, "population-statistics", aggs, groupDistrict)
			}, nil),
			effect: deny, ids: []string{"level.core"},
		},
		{
			name:   "individuals limit reached",
			req:    abroad(tripsRows, func(r *Request) { r.CrossBorderUsage.Individuals = 100000 }),
			effect: deny, ids: []string{"crossborder.threshold"}, reason: []string{threshold},
		},
		{
			name:   "individuals limit passed",
			req:    abroad(tripsRows, func(r *Request) { r.CrossBorderUsage.Individuals = 123456 }),
			effect: deny, ids: []string{"crossborder.threshold"},
			reason: []string{"reached 123456 individuals this year, over the limit of 100000 for non-sensitive personal information"},
		},
		{
			name:   "just under the limit",
			req:    abroad(tripsRows, func(r *Request) { r.CrossBorderUsage = Usage{Individuals: 99999, SensitiveIndividuals: 50000} }),
			effect: allowRows, ids: []string{"general.rows"},
		},
		{
			name: "sensitive limit on a dataset with a sensitive column",
			req: abroad(tripsRows, func(r *Request) {
				r.Dataset.Schema.Columns = append(r.Dataset.Schema.Columns, &yrdv1.Column{
					Name: "driver_health", Type: "VARCHAR", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE,
				})
				r.CrossBorderUsage = Usage{Individuals: 20000, SensitiveIndividuals: 10000}
			}),
			effect: deny, ids: []string{"crossborder.threshold"},
			reason: []string{"cross-border exports of lingang-ica reached 10000 individuals with sensitive personal information this year, the limit for sensitive personal information"},
		},
		{
			name: "both limits, one rule",
			req: abroad(tripsRows, func(r *Request) {
				r.Dataset.Schema.Columns[1].PersonalInfo = yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE
				r.CrossBorderUsage = Usage{Individuals: 100000, SensitiveIndividuals: 10001}
			}),
			effect: deny, ids: []string{"crossborder.threshold"},
			reason: []string{threshold + ", and 10001 individuals with sensitive personal information this year, over the limit of 10000"},
		},
		{
			name:   "unset limits deny",
			req:    abroad(tripsRows, func(r *Request) { r.Params.CrossBorderIndividualsLimit = 0 }),
			effect: deny, ids: []string{"crossborder.threshold"},
		},
		{
			name:   "threshold does not apply in the mainland",
			req:    with(tripsRows, func(r *Request) { r.CrossBorderUsage.Individuals = 1 << 40 }),
			effect: allowRows, ids: []string{"general.rows"},
		},
		{
			name: "every failing rule of the cross-border group",
			req: abroad(func(t testing.TB) *Request { return request(t, elderlyID, "elderly-care-planning", rows, nil) }, func(r *Request) {
				r.Access.Columns = []string{"age"}
				r.CrossBorderUsage.Individuals = 100000
			}),
			effect: deny, ids: []string{"crossborder.eligible", "crossborder.trial-sector", "crossborder.no-personal", "crossborder.threshold"},
		},
	}
}
