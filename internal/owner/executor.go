package owner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// DefaultBatchRows is the rows per batch of a result when the requester
// names no batch size.
const DefaultBatchRows = 4096

// Rule ids of the pipeline's refusals that no policy decision names.
// Auditors filter on them (`audit list --rule`), so they never change;
// README's Audit section lists them.
const (
	RuleBudgetExhausted = "budget.exhausted"
	RuleResultSize      = "limit.result-size"
)

// ErrResultSize is the kind of a result refused at the size cap: a
// ResourceExhausted that the decision's record cannot say, since the
// decision is already recorded when the result grows past the cap.
var ErrResultSize = fmt.Errorf("%w: over the result size cap", errkind.Exhausted)

// chinaTime is the zone of the calendar years that budgets and export
// thresholds count in.
var chinaTime = time.FixedZone("CST", 8*3600)

// Year is the calendar year that budgets and export thresholds count t in.
func Year(t time.Time) int { return t.In(chinaTime).Year() }

// Request is a query on one dataset this node owns.
type Request struct {
	Query   *yrdv1.Query
	Purpose string
	// Principal is the requester, authenticated by its home node.
	Principal *yrdv1.Principal
	// Outside: the requester's home node is outside the mainland.
	Outside bool
	// Explain asks for the decision and the plan, and no data.
	Explain bool
	// BatchRows is the rows per batch; 0 means DefaultBatchRows.
	BatchRows int
	// Columnar asks for ColumnBatch messages rather than RowBatch.
	Columnar bool
}

// Send sends one message of the response stream.
type Send func(*yrdv1.QueryResponse) error

// Executor runs the owner's side of queries. It is safe for concurrent
// use: each Execute keeps its state to itself.
type Executor struct {
	cfg   Config
	ports Ports
}

// New returns an Executor for the node cfg describes, reaching the rest of
// the node through ports.
func New(cfg Config, ports Ports) *Executor {
	return &Executor{cfg: cfg, ports: ports}
}

// Execute is the owner's side of every query: decide, plan, run, check
// and stream the permitted result, then a trailer with a signed receipt.
// Nothing is sent before the decision is on the audit record. Errors are
// of the kinds of internal/errkind, or the context's.
func (e *Executor) Execute(ctx context.Context, r Request, send Send) error {
	err := e.execute(ctx, r, send)
	if errors.Is(err, ErrResultSize) {
		// The decision's record says ALLOW and the release record is never
		// written: this record says the requester was refused after all.
		e.refuse(ctx, RuleResultSize, &yrdv1.AuditRecord{Requester: r.Principal, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY,
			DatasetId: r.Query.GetDatasetId(), QueryFingerprint: receipt.Fingerprint(r.Query), Detail: err.Error()})
	}
	return err
}

// execute runs the stages in order; each one's doc comment says what it
// guarantees to those after it.
func (e *Executor) execute(ctx context.Context, r Request, send Send) error {
	q, err := e.validate(r)
	if err != nil {
		return err
	}
	defer e.countDecision(q)
	if err := e.decide(ctx, q); err != nil {
		return err
	}
	if err := e.plan(ctx, q); err != nil {
		return err
	}
	// Fail closed: no data is read until the decision is on record.
	if err := e.record(ctx, q); err != nil {
		return err
	}
	if r.Explain {
		return sendExplain(q.dec, q.plan, send)
	}
	if err := e.meter(ctx, q); err != nil {
		return err
	}
	out, err := e.run(ctx, q, send)
	if err != nil {
		return err
	}
	return e.finish(ctx, q, out, send)
}

// countDecision counts q by its final effect, once it was decided: a
// later stage's denial has set the record's decision to DENY by then.
func (e *Executor) countDecision(q *query) {
	if e.ports.Metrics == nil || q.rec == nil {
		return
	}
	e.ports.Metrics.Decided(q.rec.GetDecision(), q.ds.GetLevel(), q.req.Principal.GetCity())
}

// query is one Execute's state, filled in stage by stage.
type query struct {
	req    Request
	ds     *yrdv1.Dataset       // validate
	access *yrdv1.AccessRequest // validate: what the policy decides on
	fp     string               // validate: the query's fingerprint
	params *yrdv1.PolicyParams  // decide
	year   int                  // decide: the year budgets count in
	dec    *yrdv1.Decision      // decide
	rec    *yrdv1.AuditRecord   // decide: the decision's record
	eng    connector.Engine     // plan
	pdec   *yrdv1.Decision      // plan: dec as the engine's planner needs it
	agg    *aggregatePlan       // plan: nil for a row result
	opts   connector.Options    // plan
	stmt   connector.Statement  // plan
	plan   *yrdv1.CityPlan      // plan: what explain shows
	seq    uint64               // record: the decision record's sequence number
	noise  *yrdv1.NoiseApplied  // meter: nil when the result is exact
}

// deny puts the refusal of q on record (best effort: it is refused
// either way) and returns it as an error of kind.
func (e *Executor) deny(ctx context.Context, q *query, why string, kind error) error {
	q.rec.Decision, q.rec.Detail = yrdv1.Effect_EFFECT_DENY, why
	_, _ = e.ports.Audit.Append(ctx, q.rec)
	return errkind.Errorf(kind, "%s", why)
}

// refuse records a refusal under rule that no decision record says.
// Failures are not reported: the request is refused either way.
func (e *Executor) refuse(ctx context.Context, rule string, rec *yrdv1.AuditRecord) {
	rec.Decision = yrdv1.Effect_EFFECT_DENY
	rec.RuleIds = append(rec.RuleIds, rule)
	_, _ = e.ports.Audit.Append(ctx, rec)
}

// queryError reports an engine failure, as the deadline or cancellation
// when that is what stopped it.
func queryError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return errkind.Errorf(errkind.Unavailable, "the local query failed: %v", err)
}

// errKind is the kind of a domain error, or errkind.Unavailable.
func errKind(err error) error {
	for _, k := range []error{errkind.Exhausted, errkind.Invalid, errkind.NotFound, errkind.PermissionDenied, errkind.Unavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return errkind.Unavailable
}
