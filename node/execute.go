package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
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
	noisy := aggregate && ds.GetNoiseEpsilon() > 0
	opts := connector.Options{PseudonymKey: key, Individuals: dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES}
	var noiseCols []noiseCol
	if noisy {
		if noiseCols, err = planNoise(ds, r.q); err != nil {
			return deny(err.Error(), ErrInvalid)
		}
		opts.SumBound = ds.GetNoiseSumBound()
	}
	pdec := planDecision(dec, access)
	sqlText, args, err := eng.Plan(id, r.q, pdec, opts)
	if err != nil {
		return deny(fmt.Sprintf("query on %s cannot be planned: %v", id, strings.TrimPrefix(err.Error(), "connector: ")), ErrInvalid)
	}
	plan := &yrdv1.CityPlan{City: n.cfg.City, DatasetId: id, Node: n.id.String(), Decision: dec, Plan: sqlText}
	// Fail closed: no data is read until the decision is on record.
	auditRec, err := n.audit(ctx, rec)
	if err != nil {
		return err
	}
	if r.explain {
		if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
			DerivedLevel: dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{plan}}}}); err != nil {
			return err
		}
		return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: &yrdv1.ResultTrailer{
			Cities: []*yrdv1.CityResult{{City: n.cfg.City, DatasetId: id, Status: yrdv1.CityStatus_CITY_STATUS_OK, Reason: "explain: no data read"}}}}})
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
	var sampler noise.Sampler
	if noisy {
		eps := ds.GetNoiseEpsilon()
		remaining, err := n.spendBudget(ctx, r.p, ds, year, eps)
		if err != nil {
			return deny(err.Error(), errKind(err))
		}
		rc.Noise = &yrdv1.NoiseApplied{Mechanism: "discrete-laplace", Epsilon: eps, SumBound: ds.GetNoiseSumBound(), BudgetRemaining: remaining}
	}

	rows, err := eng.Exec(ctx, sqlText, args)
	if err != nil {
		return queryError(ctx, err)
	}
	defer rows.Close()
	names := rows.Columns()
	hidden := -1
	if opts.Individuals {
		hidden = len(names) - 1
		if hidden < 0 || names[hidden] != connector.IndividualsColumn {
			return errorf(ErrInternal, "planned result lacks the individuals column")
		}
		names = names[:hidden]
	}
	cols := resultColumns(ds, r.q, dec, names, opts.SumBound)
	if len(cols) != len(names) {
		return errorf(ErrInternal, "result has %d columns, the plan %d", len(names), len(cols))
	}
	if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
		Columns: cols, DerivedLevel: dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{plan}}}}); err != nil {
		return err
	}
	batch := r.batch
	if batch <= 0 {
		batch = defaultBatchRows
	}
	digest := receipt.NewDigest()
	// A columnar request gets ColumnBatch messages unless a column's type
	// has none (then rows from the start) or a value does not fit its
	// column's kind (then rows from that row on): either way the same rows
	// and the same digest.
	var cb *columnBuilder
	var b *batchBuilder
	var ad *asyncDigest
	if r.columnar {
		cb = newColumnBuilder(cols, batch)
	}
	if cb == nil {
		b = newBatchBuilder(cols, batch)
	} else {
		ad = startAsyncDigest(digest)
		defer ad.wait() // on every return, so the goroutine ends
	}
	// digestDone waits for the column batches' digest, before rows are
	// added to it or it is summed.
	digestDone := func() error {
		if ad == nil {
			return nil
		}
		if err := ad.wait(); err != nil {
			return errorf(ErrInternal, "%v", err)
		}
		return nil
	}
	var sentRows, individuals uint64
	var size int64
	// The size is added up as rows are built (protowire), so the cap is
	// checked without encoding a batch an extra time.
	capSize := func(add int) error {
		if size += int64(add); size > n.cfg.MaxResultBytes {
			return errorf(ErrExhausted, "the result passed the %d-byte size cap after %d rows; narrow the query", n.cfg.MaxResultBytes, sentRows)
		}
		return nil
	}
	flush := func() error {
		if cb != nil {
			if cb.rows == 0 {
				return nil
			}
			cbatch, sz := cb.take()
			if err := capSize(sz); err != nil {
				return err
			}
			ad.add(cbatch)
			return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Columns{Columns: cbatch}})
		}
		if len(b.rows) == 0 {
			return nil
		}
		if err := capSize(b.size); err != nil {
			return err
		}
		err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: b.rows}}})
		b = newBatchBuilder(cols, batch)
		return err
	}
	for rows.Next() {
		vals := rows.Values()
		if hidden >= 0 {
			// Checked on the result, not only planned: a group under k
			// never leaves, whatever the engine did.
			k, ok := int64Of(vals[hidden])
			if !ok || k < int64(dec.GetMinGroupSize()) {
				return errorf(ErrInternal, "a result group has %v individuals, under k = %d; nothing more is sent", vals[hidden], dec.GetMinGroupSize())
			}
			individuals += uint64(k)
			vals = vals[:hidden]
		}
		if noisy {
			for i, v := range vals {
				if vals[i], err = noiseCols[i].apply(sampler, v); err != nil {
					return err
				}
			}
		}
		if cb != nil && !cb.add(vals) {
			if err := flush(); err != nil {
				return err
			}
			if err := digestDone(); err != nil {
				return err
			}
			cb, b = nil, newBatchBuilder(cols, batch)
		}
		if cb == nil {
			row, err := b.add(vals)
			if err != nil {
				return err
			}
			digest.Add(row)
		}
		sentRows++
		if !aggregate && dec.GetRowCap() > 0 && sentRows > dec.GetRowCap() {
			return errorf(ErrInternal, "the result passed the row cap of %d; nothing more is sent", dec.GetRowCap())
		}
		if (cb != nil && cb.rows >= batch) || (cb == nil && len(b.rows) >= batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return queryError(ctx, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if err := digestDone(); err != nil {
		return err
	}
	if !aggregate {
		individuals = sentRows // an upper bound: one row is at most one individual's
	}
	rc.Rows, rc.Individuals, rc.ResultDigest, rc.IssuedAt = sentRows, individuals, digest.Sum(), timestamppb.New(time.Now())
	sk, err := n.signingKey()
	if err != nil {
		return err
	}
	if err := receipt.Sign(sk, rc); err != nil {
		return err
	}
	_ = n.auditLog.Enqueue(context.WithoutCancel(ctx), &yrdv1.AuditRecord{Requester: r.p, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY,
		DatasetId: id, GrantId: dec.GetGrantId(), Decision: dec.GetEffect(), RuleIds: dec.GetRuleIds(), PolicyVersion: dec.GetPolicyVersion(),
		Rows: sentRows, Individuals: individuals, QueryFingerprint: qfp, CrossBorder: dec.GetCrossBorder(),
		Detail: fmt.Sprintf("released %d rows (decision record %d)", sentRows, auditRec.GetSeq())})
	// Reaching the cap without a smaller LIMIT of the requester's own means
	// rows (or groups) may have been cut: say so rather than stay silent.
	truncated := dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_ROWS && sentRows == dec.GetRowCap() &&
		(r.q.GetLimit() == 0 || r.q.GetLimit() > dec.GetRowCap())
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: &yrdv1.ResultTrailer{Rows: sentRows, Truncated: truncated,
		Cities: []*yrdv1.CityResult{{City: n.cfg.City, DatasetId: id, Status: yrdv1.CityStatus_CITY_STATUS_OK, Rows: sentRows, Receipt: rc, Truncated: truncated}}}}})
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
	sqlText, args, err := eng.Plan(ds.GetId(), q, dec, connector.Options{PersonKeys: true})
	if err != nil {
		return errorf(ErrInvalid, "cross-border flow of %s: individuals cannot be counted: %v", ds.GetId(), err)
	}
	rows, err := eng.Exec(ctx, sqlText, args)
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

// spendBudget charges eps to the requesting organisation's privacy budget
// in the replicated catalog, so every node sees the same balance.
func (n *Node) spendBudget(ctx context.Context, p *yrdv1.Principal, ds *yrdv1.Dataset, year int, eps float64) (float64, error) {
	res, err := n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_SpendPrivacyBudget{SpendPrivacyBudget: &yrdv1.SpendPrivacyBudgetCommand{
		RequesterCity: p.GetCity(), RequesterOrg: p.GetOrg(), Year: int32(year), Epsilon: eps, DatasetId: ds.GetId()}}})
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
