package owner

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// finish signs the receipt of what was sent, queues the release record
// and sends the trailer with the receipt. Only a result sent in full gets
// here: a check that stopped it returned an error instead.
func (e *Executor) finish(ctx context.Context, q *query, out released, send Send) error {
	dec := q.dec
	aggregate := dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES
	individuals := out.individuals
	if !aggregate {
		individuals = out.rows.n // an upper bound: one row is at most one individual's
	}
	rc := e.receipt(q)
	rc.Rows, rc.Individuals, rc.ResultDigest, rc.IssuedAt = out.rows.n, individuals, out.rows.digest, timestamppb.New(time.Now())
	var suppressed []*yrdv1.Suppression
	if out.suppressed != nil {
		// The receipt and the release record say the rule fired; the
		// trailer says how many groups it held back, never which.
		rc.RuleIds = append(slices.Clone(rc.GetRuleIds()), out.suppressed.GetRuleId())
		suppressed = []*yrdv1.Suppression{out.suppressed}
	}
	sk, err := e.ports.Secrets.SigningKey()
	if err != nil {
		return err
	}
	if err := receipt.Sign(sk, rc); err != nil {
		return err
	}
	_ = e.ports.Audit.Enqueue(context.WithoutCancel(ctx), &yrdv1.AuditRecord{Requester: q.req.Principal, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY,
		DatasetId: rc.GetDatasetId(), GrantId: dec.GetGrantId(), Decision: dec.GetEffect(), RuleIds: rc.GetRuleIds(), PolicyVersion: dec.GetPolicyVersion(),
		Rows: out.rows.n, Individuals: individuals, QueryFingerprint: rc.GetQueryFingerprint(), CrossBorder: dec.GetCrossBorder(),
		Detail: releaseDetail(q.seq, out)})
	// Reaching the cap without a smaller LIMIT of the requester's own means
	// rows may have been cut: say so rather than stay silent.
	limit := q.req.Query.GetLimit()
	truncated := !aggregate && out.rows.n == dec.GetRowCap() && (limit == 0 || limit > dec.GetRowCap())
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: &yrdv1.ResultTrailer{Rows: out.rows.n, Truncated: truncated,
		Cities: []*yrdv1.CityResult{{City: e.cfg.City, DatasetId: rc.GetDatasetId(), Status: yrdv1.CityStatus_CITY_STATUS_OK,
			Rows: out.rows.n, Receipt: rc, Truncated: truncated, Suppressed: suppressed}}}}})
}

// receipt is q's receipt before the result: who asked what, the decision
// and its record, and the noise spent.
func (e *Executor) receipt(q *query) *yrdv1.ResultReceipt {
	dec := q.dec
	return &yrdv1.ResultReceipt{Node: e.cfg.Node, City: e.cfg.City, DatasetId: q.ds.GetId(), DatasetVersion: q.ds.GetVersion(),
		Requester: q.req.Principal, Purpose: q.req.Purpose, QueryFingerprint: q.fp, Effect: dec.GetEffect(), GrantId: dec.GetGrantId(),
		PolicyVersion: dec.GetPolicyVersion(), RuleIds: dec.GetRuleIds(), MinGroupSize: dec.GetMinGroupSize(),
		RowCap: dec.GetRowCap(), DerivedLevel: dec.GetDerivedLevel(), CrossBorder: dec.GetCrossBorder(), AuditSeq: q.seq, Noise: q.noise}
}

// releaseDetail describes a release for its audit record.
func releaseDetail(seq uint64, out released) string {
	d := fmt.Sprintf("released %d rows (decision record %d)", out.rows.n, seq)
	if s := out.suppressed; s != nil {
		d += fmt.Sprintf("; held back %d groups (%s): %s", s.GetGroups(), s.GetRuleId(), s.GetReason())
	}
	return d
}
