package owner

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// plan compiles the permitted query for the local engine under the
// decision, with the pseudonym key of its grant, and for an aggregate the
// decomposition, the sum bounds, the sketches and the noise it will
// carry. It reads no data. A dataset this node does not serve, or a query
// that cannot be planned, is a refusal and recorded as one.
func (e *Executor) plan(ctx context.Context, q *query) error {
	id, dec := q.ds.GetId(), q.dec
	q.eng = e.ports.Engines.Engine(id)
	if q.eng == nil || !q.eng.Serving(id) {
		why := fmt.Sprintf("dataset %q is not served by %s: no local data is configured for it", id, e.cfg.City)
		if q.eng != nil {
			why = fmt.Sprintf("dataset %q is not served by %s: %s", id, e.cfg.City, connector.JoinMismatches(q.eng.Problems(id)))
		}
		return e.deny(ctx, q, why, errkind.FailedPrecondition)
	}
	key, err := e.pseudonymKey(id, dec.GetGrantId(), q.req.Principal)
	if err != nil {
		return err
	}
	aggregate := q.access.GetResultForm() == yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	q.opts = connector.Options{PseudonymKey: key, Individuals: aggregate}
	q.pdec = planDecision(dec, q.access)
	planned := q.req.Query
	if aggregate {
		if q.agg, err = planAggregates(q.ds, q.req.Query, dec); err != nil {
			return e.deny(ctx, q, fmt.Sprintf("query on %s cannot be planned: %v", id, strings.TrimPrefix(err.Error(), "merge: ")), errkind.Invalid)
		}
		planned, q.opts.SumBounds = q.agg.partial, q.agg.sumBounds(q.ds)
		if q.opts.Sketch, err = e.sketchOptions(q.ds, dec); err != nil {
			return err
		}
	}
	if q.stmt, err = q.eng.Plan(id, planned, q.pdec, q.opts); err != nil {
		return e.deny(ctx, q, fmt.Sprintf("query on %s cannot be planned: %v", id, strings.TrimPrefix(err.Error(), "connector: ")), errkind.Invalid)
	}
	q.plan = &yrdv1.CityPlan{City: e.cfg.City, DatasetId: id, Node: e.cfg.Node, Decision: dec, Plan: q.stmt.SQL}
	if q.agg != nil && q.agg.noise != nil {
		if q.plan.Noise, err = e.noisePlan(q); err != nil {
			return err
		}
	}
	return nil
}

// planDecision is dec as the planner needs it. The policy judged every
// column the query filters on (accessFor lists them as filter columns: a
// direct identifier, a personal column across the border or a column a row
// result does not show raw is denied), but the decision lists only the
// columns the result shows, and the planner withholds every column the
// decision does not mention. A filter column the decision does not mention
// is therefore added as RAW: the plan compares its raw values inside the
// owner's query and never selects it into the result. Columns the decision
// mentions keep their treatment, so an explicitly withheld column stays
// unusable in a filter too.
func planDecision(dec *yrdv1.Decision, access *yrdv1.AccessRequest) *yrdv1.Decision {
	listed := map[string]bool{}
	for _, c := range dec.GetColumns() {
		listed[c.GetColumn()] = true
	}
	var extra []*yrdv1.ColumnDecision
	for _, c := range access.GetFilterColumns() {
		if !listed[c] {
			listed[c] = true
			extra = append(extra, &yrdv1.ColumnDecision{Column: c, Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW})
		}
	}
	if len(extra) == 0 {
		return dec
	}
	out := proto.Clone(dec).(*yrdv1.Decision)
	out.Columns = append(out.Columns, extra...)
	return out
}

// pseudonymKey keys the pseudonyms of one dataset for one grant (or, with
// no grant, one requesting organisation): values join within it, not
// across.
func (e *Executor) pseudonymKey(datasetID, grantID string, p *yrdv1.Principal) ([]byte, error) {
	scope := "grant:" + grantID
	if grantID == "" {
		scope = fmt.Sprintf("org:%s/%s", p.GetCity(), p.GetOrg())
	}
	return e.ports.Secrets.Derive("yrd.pseudonym", datasetID, scope)
}

// sketchOptions asks the engine for sketches of the groups of an aggregate
// over ds, for the difference check, or returns nil where there are no
// individuals to protect.
func (e *Executor) sketchOptions(ds *yrdv1.Dataset, dec *yrdv1.Decision) (*connector.SketchOptions, error) {
	if !connector.HasPersonalInfo(ds) {
		return nil, nil
	}
	seed, err := e.ports.Secrets.Derive("yrd.sketch", ds.GetId())
	if err != nil {
		return nil, err
	}
	return &connector.SketchOptions{Cells: diffcheck.CellsFor(dec.GetMinGroupSize()), Seed: seed}, nil
}

// noisePlan says, before anything is spent, how noisy the answer will be
// and what is left of the budget it draws on.
func (e *Executor) noisePlan(q *query) (*yrdv1.NoisePlan, error) {
	p, dec := q.req.Principal, q.dec
	spent, err := e.ports.Catalog.PrivacySpent(p.GetCity(), p.GetOrg(), q.year, dec.GetBudgetFamily())
	if err != nil {
		return nil, err
	}
	budget := q.params.GetPrivacyBudget()
	return &yrdv1.NoisePlan{Mechanism: noise.Mechanism, Epsilon: dec.GetNoiseEpsilon(), BudgetFamily: dec.GetBudgetFamily(),
		Budget: budget, BudgetRemaining: max(budget-spent, 0), Measurements: q.agg.measured}, nil
}

// sendExplain answers an explain request: the decision and the plan, with
// the noise and budget it would spend, and no data.
func sendExplain(dec *yrdv1.Decision, plan *yrdv1.CityPlan, send Send) error {
	if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
		DerivedLevel: dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{plan}}}}); err != nil {
		return err
	}
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: &yrdv1.ResultTrailer{
		Cities: []*yrdv1.CityResult{{City: plan.GetCity(), DatasetId: plan.GetDatasetId(), Status: yrdv1.CityStatus_CITY_STATUS_OK, Reason: "explain: no data read"}}}}})
}
