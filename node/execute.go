package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// chinaTime is the zone of the calendar years that budgets and export
// thresholds count in.
var chinaTime = time.FixedZone("CST", 8*3600)

const defaultBatchRows = 4096

// execRequest is a query on one dataset this node owns.
type execRequest struct {
	q       *yrdv1.Query
	purpose string
	// p is the requester, authenticated by its home node.
	p *yrdv1.Principal
	// outside: the requester's home node is outside the mainland.
	outside bool
	explain bool
	batch   int
	// columnar: the requester asked for ColumnBatch messages.
	columnar bool
}

// execute is the owner's side of every query: decide, plan, run, check
// and stream the permitted result, then a trailer with a signed receipt.
// Nothing is sent before the decision is on the audit record.
func (n *Node) execute(ctx context.Context, r execRequest, send func(*yrdv1.QueryResponse) error) error {
	id := r.q.GetDatasetId()
	ds, ok := n.catalog.GetDataset(id)
	if !ok {
		return errorf(ErrNotFound, "dataset %q not found", id)
	}
	if ds.GetOwnerCity() != n.cfg.City {
		return errorf(ErrInvalid, "dataset %q is owned by %s; this node serves %s", id, ds.GetOwnerCity(), n.cfg.City)
	}
	access := accessFor(r.q, r.purpose)
	if err := policy.ValidateAccess(ds, access); err != nil {
		return errorf(ErrInvalid, "query on %s: %v", id, err)
	}
	params, err := n.currentPolicy()
	if err != nil {
		return err
	}
	grants, err := n.catalog.ListGrants(store.GrantFilter{DatasetID: id, RequesterOrg: r.p.GetOrg()})
	if err != nil {
		return err
	}
	now := time.Now()
	year := now.In(chinaTime).Year()
	sensitive := hasSensitive(ds)
	var usage policy.Usage
	if r.outside {
		if usage.Individuals, err = n.data.exports.Count(ds.GetOwnerOrg(), year, ledger.Personal); err != nil {
			return err
		}
		if usage.SensitiveIndividuals, err = n.data.exports.Count(ds.GetOwnerOrg(), year, ledger.Sensitive); err != nil {
			return err
		}
	}
	dec := policy.Decide(&policy.Request{Requester: r.p, RequesterOutsideMainland: r.outside, Dataset: ds,
		Access: access, Grants: grants, Now: now, Params: params, CrossBorderUsage: usage})
	qfp := receipt.Fingerprint(r.q)
	rec := &yrdv1.AuditRecord{Requester: r.p, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, DatasetId: id,
		GrantId: dec.GetGrantId(), Decision: dec.GetEffect(), RuleIds: dec.GetRuleIds(), PolicyVersion: dec.GetPolicyVersion(),
		QueryFingerprint: qfp, CrossBorder: dec.GetCrossBorder(), Detail: dec.GetReason()}
	if r.explain {
		rec.Detail = "explain: " + rec.Detail
	}
	deny := func(why string, kind error) error {
		rec.Decision, rec.Detail = yrdv1.Effect_EFFECT_DENY, why
		_, _ = n.audit(ctx, rec)
		return errorf(kind, "%s", why)
	}
	if dec.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_ROWS && dec.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES {
		return deny(fmt.Sprintf("%s (rules %s; policy version %d)", dec.GetReason(), strings.Join(dec.GetRuleIds(), ", "), dec.GetPolicyVersion()), ErrPermissionDenied)
	}
	eng := n.engineFor(id)
	if eng == nil || !eng.Serving(id) {
		why := fmt.Sprintf("dataset %q is not served by %s: no local data is configured for it", id, n.cfg.City)
		if eng != nil {
			why = fmt.Sprintf("dataset %q is not served by %s: %s", id, n.cfg.City, connector.JoinMismatches(eng.Problems(id)))
		}
		return deny(why, ErrFailedPrecondition)
	}
	key, err := n.pseudonymKey(id, dec.GetGrantId(), r.p)
	if err != nil {
		return err
	}
	aggregate := access.GetResultForm() == yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	opts := connector.Options{PseudonymKey: key, Individuals: aggregate}
	pdec := planDecision(dec, access)
	var ap *aggregatePlan
	planned := r.q
	if aggregate {
		if ap, err = planAggregates(ds, r.q, dec); err != nil {
			return deny(fmt.Sprintf("query on %s cannot be planned: %v", id, strings.TrimPrefix(err.Error(), "merge: ")), ErrInvalid)
		}
		planned, opts.SumBounds = ap.partial, ap.sumBounds(ds)
		if opts.Sketch, err = n.sketchOptions(ds, dec); err != nil {
			return err
		}
	}
	stmt, err := eng.Plan(id, planned, pdec, opts)
	if err != nil {
		return deny(fmt.Sprintf("query on %s cannot be planned: %v", id, strings.TrimPrefix(err.Error(), "connector: ")), ErrInvalid)
	}
	plan := &yrdv1.CityPlan{City: n.cfg.City, DatasetId: id, Node: n.id.String(), Decision: dec, Plan: stmt.SQL}
	if ap != nil && ap.noise != nil {
		if plan.Noise, err = n.noisePlan(r.p, dec, ap, params, year); err != nil {
			return err
		}
	}
	// Fail closed: no data is read until the decision is on record.
	auditRec, err := n.audit(ctx, rec)
	if err != nil {
		return err
	}
	if r.explain {
		return sendExplain(dec, plan, send)
	}

	rc := &yrdv1.ResultReceipt{Node: n.id.String(), City: n.cfg.City, DatasetId: id, DatasetVersion: ds.GetVersion(),
		Requester: r.p, Purpose: r.purpose, QueryFingerprint: qfp, Effect: dec.GetEffect(), GrantId: dec.GetGrantId(),
		PolicyVersion: dec.GetPolicyVersion(), RuleIds: dec.GetRuleIds(), MinGroupSize: dec.GetMinGroupSize(),
		RowCap: dec.GetRowCap(), DerivedLevel: dec.GetDerivedLevel(), CrossBorder: dec.GetCrossBorder(), AuditSeq: auditRec.GetSeq()}

	if dec.GetCrossBorder() {
		if err := n.recordExport(ctx, eng, ds, r.q, pdec, params, year, sensitive, rec); err != nil {
			return err
		}
	}
	if eps := dec.GetNoiseEpsilon(); eps > 0 {
		remaining, err := n.spendBudget(ctx, r.p, ds, dec, year)
		if err != nil {
			if errors.Is(err, ErrExhausted) {
				rec.RuleIds = append(rec.RuleIds, RuleBudgetExhausted)
			}
			return deny(err.Error(), errKind(err))
		}
		rc.Noise = &yrdv1.NoiseApplied{Mechanism: noise.Mechanism, Epsilon: eps, BudgetRemaining: remaining, BudgetFamily: dec.GetBudgetFamily()}
	}
	out := released{rc: rc, dec: dec, plan: plan, auditSeq: auditRec.GetSeq()}
	if aggregate {
		res, err := n.runAggregates(ctx, r, eng, ds, ap, dec, opts.Sketch, stmt)
		if err != nil {
			return err
		}
		out.suppressed = res.suppressed
		if out.rows, err = n.sendRows(r, dec, plan, res.cols, res.rows, send); err != nil {
			return err
		}
		out.individuals = res.individuals
	} else if out.rows, err = n.streamRows(ctx, r, ds, dec, plan, eng, stmt, send); err != nil {
		return err
	}
	return n.finishQuery(ctx, r, out, send)
}

// releaseDetail describes a release for its audit record.
func releaseDetail(out released) string {
	d := fmt.Sprintf("released %d rows (decision record %d)", out.rows.n, out.auditSeq)
	if s := out.suppressed; s != nil {
		d += fmt.Sprintf("; held back %d groups (%s): %s", s.GetGroups(), s.GetRuleId(), s.GetReason())
	}
	return d
}

// released is what a query sent, for its receipt and trailer.
type released struct {
	rc          *yrdv1.ResultReceipt
	dec         *yrdv1.Decision
	plan        *yrdv1.CityPlan
	auditSeq    uint64
	rows        sentRows
	individuals uint64
	suppressed  *yrdv1.Suppression
}

// sentRows counts the rows sent and digests them for the receipt.
type sentRows struct {
	n      uint64
	digest []byte
}

// sendExplain answers an explain request: each decision and plan, with
// the noise and budget it would spend, and no data.
func sendExplain(dec *yrdv1.Decision, plan *yrdv1.CityPlan, send func(*yrdv1.QueryResponse) error) error {
	if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
		DerivedLevel: dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{plan}}}}); err != nil {
		return err
	}
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: &yrdv1.ResultTrailer{
		Cities: []*yrdv1.CityResult{{City: plan.GetCity(), DatasetId: plan.GetDatasetId(), Status: yrdv1.CityStatus_CITY_STATUS_OK, Reason: "explain: no data read"}}}}})
}

// noisePlan says, before anything is spent, how noisy the answer will be
// and what is left of the budget it draws on.
func (n *Node) noisePlan(p *yrdv1.Principal, dec *yrdv1.Decision, ap *aggregatePlan, params *yrdv1.PolicyParams, year int) (*yrdv1.NoisePlan, error) {
	spent, err := n.catalog.PrivacySpent(p.GetCity(), p.GetOrg(), year, dec.GetBudgetFamily())
	if err != nil {
		return nil, err
	}
	budget := params.GetPrivacyBudget()
	return &yrdv1.NoisePlan{Mechanism: noise.Mechanism, Epsilon: dec.GetNoiseEpsilon(), BudgetFamily: dec.GetBudgetFamily(),
		Budget: budget, BudgetRemaining: max(budget-spent, 0), Measurements: ap.measured}, nil
}

// sendRows sends a computed result: its header, then its rows in batches
// (column batches when asked for and possible), checking the size cap.
func (n *Node) sendRows(r execRequest, dec *yrdv1.Decision, plan *yrdv1.CityPlan, cols []*yrdv1.ResultColumn, rows []*yrdv1.Row,
	send func(*yrdv1.QueryResponse) error) (sentRows, error) {
	if size := rowsSize(rows); size > n.cfg.MaxResultBytes {
		return sentRows{}, errorf(errResultSize, "the result is %d bytes, over the %d-byte size cap; narrow the query", size, n.cfg.MaxResultBytes)
	}
	if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
		Columns: cols, DerivedLevel: dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{plan}}}}); err != nil {
		return sentRows{}, err
	}
	batch := r.batch
	if batch <= 0 {
		batch = defaultBatchRows
	}
	digest := receipt.NewDigest()
	for i := 0; i < len(rows); i += batch {
		part := rows[i:min(i+batch, len(rows))]
		for _, row := range part {
			digest.Add(row)
		}
		msg := &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: part}}}
		if r.columnar {
			if cb, err := resultcodec.RowsToColumns(cols, part); err == nil {
				msg = &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Columns{Columns: cb}}
			}
		}
		if err := send(msg); err != nil {
			return sentRows{}, err
		}
	}
	return sentRows{n: uint64(len(rows)), digest: digest.Sum()}, nil
}

// streamRows streams a row result from the engine as it is read, checking
// the row cap and the size cap as it goes.
func (n *Node) streamRows(ctx context.Context, r execRequest, ds *yrdv1.Dataset, dec *yrdv1.Decision, plan *yrdv1.CityPlan,
	eng connector.Engine, stmt connector.Statement, send func(*yrdv1.QueryResponse) error) (sentRows, error) {
	rows, err := eng.Exec(ctx, stmt)
	if err != nil {
		return sentRows{}, queryError(ctx, err)
	}
	defer rows.Close()
	names := rows.Columns()
	cols := resultColumns(ds, r.q, dec, names, 0)
	if len(cols) != len(names) {
		return sentRows{}, errorf(ErrInternal, "result has %d columns, the plan %d", len(names), len(cols))
	}
	if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
		Columns: cols, DerivedLevel: dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{plan}}}}); err != nil {
		return sentRows{}, err
	}
	s := newRowStreamer(n, r, cols, send)
	defer s.close()
	for rows.Next() {
		if err := s.add(rows.Values()); err != nil {
			return sentRows{}, err
		}
		if dec.GetRowCap() > 0 && s.sent > dec.GetRowCap() {
			return sentRows{}, errorf(ErrInternal, "the result passed the row cap of %d; nothing more is sent", dec.GetRowCap())
		}
	}
	if err := rows.Err(); err != nil {
		return sentRows{}, queryError(ctx, err)
	}
	return s.finish()
}

// finishQuery signs the receipt, queues the release record and sends the
// trailer.
func (n *Node) finishQuery(ctx context.Context, r execRequest, out released, send func(*yrdv1.QueryResponse) error) error {
	dec, rc := out.dec, out.rc
	aggregate := dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES
	individuals := out.individuals
	if !aggregate {
		individuals = out.rows.n // an upper bound: one row is at most one individual's
	}
	rc.Rows, rc.Individuals, rc.ResultDigest, rc.IssuedAt = out.rows.n, individuals, out.rows.digest, timestamppb.New(time.Now())
	var suppressed []*yrdv1.Suppression
	if out.suppressed != nil {
		// The receipt and the release record say the rule fired; the
		// trailer says how many groups it held back, never which.
		rc.RuleIds = append(slices.Clone(rc.GetRuleIds()), out.suppressed.GetRuleId())
		suppressed = []*yrdv1.Suppression{out.suppressed}
	}
	sk, err := n.signingKey()
	if err != nil {
		return err
	}
	if err := receipt.Sign(sk, rc); err != nil {
		return err
	}
	_ = n.auditLog.Enqueue(context.WithoutCancel(ctx), &yrdv1.AuditRecord{Requester: r.p, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY,
		DatasetId: rc.GetDatasetId(), GrantId: dec.GetGrantId(), Decision: dec.GetEffect(), RuleIds: rc.GetRuleIds(), PolicyVersion: dec.GetPolicyVersion(),
		Rows: out.rows.n, Individuals: individuals, QueryFingerprint: rc.GetQueryFingerprint(), CrossBorder: dec.GetCrossBorder(),
		Detail: releaseDetail(out)})
	// Reaching the cap without a smaller LIMIT of the requester's own means
	// rows may have been cut: say so rather than stay silent.
	truncated := !aggregate && out.rows.n == dec.GetRowCap() && (r.q.GetLimit() == 0 || r.q.GetLimit() > dec.GetRowCap())
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: &yrdv1.ResultTrailer{Rows: out.rows.n, Truncated: truncated,
		Cities: []*yrdv1.CityResult{{City: n.cfg.City, DatasetId: rc.GetDatasetId(), Status: yrdv1.CityStatus_CITY_STATUS_OK,
			Rows: out.rows.n, Receipt: rc, Truncated: truncated, Suppressed: suppressed}}}}})
}

// recordExport counts the individuals a cross-border result would carry
// into the exporting organisation's yearly ledger, refusing the flow (and
// recording nothing) if that would pass the threshold.
func (n *Node) recordExport(ctx context.Context, eng connector.Engine, ds *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision,
	params *yrdv1.PolicyParams, year int, sensitive bool, rec *yrdv1.AuditRecord) error {
	if !connector.HasPersonalInfo(ds) {
		// No individual's data is in the flow (e.g. enterprises only):
		// nothing to count against the thresholds.
		return nil
	}
	stmt, err := eng.Plan(ds.GetId(), q, dec, connector.Options{PersonKeys: true})
	if err != nil {
		return errorf(ErrInvalid, "cross-border flow of %s: individuals cannot be counted: %v", ds.GetId(), err)
	}
	rows, err := eng.Exec(ctx, stmt)
	if err != nil {
		return queryError(ctx, err)
	}
	var persons []string
	for rows.Next() {
		if s, ok := rows.Values()[0].(string); ok {
			persons = append(persons, s)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return queryError(ctx, err)
	}
	kinds := []ledger.Kind{ledger.Personal}
	limits := []uint64{params.GetCrossBorderIndividualsLimit()}
	names := []string{"non-sensitive"}
	if sensitive {
		kinds, limits, names = append(kinds, ledger.Sensitive), append(limits, params.GetCrossBorderSensitiveIndividualsLimit()), append(names, "sensitive")
	}
	refuse := func(i int, total, added uint64) error {
		why := fmt.Sprintf("cross-border flow refused (rule %s): %s has sent %d individuals out of the mainland in %d and this result would add %d, past the %s limit of %d",
			policy.RuleCrossBorderThreshold, ds.GetOwnerOrg(), total, year, added, names[i], limits[i])
		rec.Decision, rec.Detail = yrdv1.Effect_EFFECT_DENY, why
		rec.RuleIds = append(rec.RuleIds, policy.RuleCrossBorderThreshold)
		_, _ = n.audit(ctx, rec)
		return errorf(ErrPermissionDenied, "%s", why)
	}
	// Every limit is checked before any count is recorded, so a refusal
	// records nothing.
	for i, k := range kinds {
		total, added, err := n.data.exports.Preview(ds.GetOwnerOrg(), year, k, persons)
		if err != nil {
			return err
		}
		if total+added > limits[i] {
			return refuse(i, total, added)
		}
	}
	for i, k := range kinds {
		if total, added, err := n.data.exports.Record(ds.GetOwnerOrg(), year, k, persons, limits[i]); errors.Is(err, ledger.ErrLimit) {
			return refuse(i, total, added) // a concurrent flow got there first
		} else if err != nil {
			return err
		}
	}
	return nil
}

// spendBudget charges the decision's epsilon to the requesting
// organisation's budget for the dataset's family in the replicated
// catalog, so every node sees the same balance.
func (n *Node) spendBudget(ctx context.Context, p *yrdv1.Principal, ds *yrdv1.Dataset, dec *yrdv1.Decision, year int) (float64, error) {
	res, err := n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_SpendPrivacyBudget{SpendPrivacyBudget: &yrdv1.SpendPrivacyBudgetCommand{
		RequesterCity: p.GetCity(), RequesterOrg: p.GetOrg(), Year: int32(year), Epsilon: dec.GetNoiseEpsilon(), DatasetId: ds.GetId(),
		Family: dec.GetBudgetFamily()}}})
	if err != nil {
		return 0, err
	}
	return res.GetBudgetRemaining(), nil
}

func hasSensitive(ds *yrdv1.Dataset) bool {
	for _, c := range ds.GetSchema().GetColumns() {
		if c.GetPersonalInfo() == yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE {
			return true
		}
	}
	return false
}

// queryError reports an engine failure, as the deadline or cancellation
// when that is what stopped it.
func queryError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return errorf(ErrUnavailable, "the local query failed: %v", err)
}

// errKind is the sentinel kind of a domain error, or ErrUnavailable.
func errKind(err error) error {
	for _, k := range []error{ErrExhausted, ErrInvalid, ErrNotFound, ErrPermissionDenied, ErrUnavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return ErrUnavailable
}
