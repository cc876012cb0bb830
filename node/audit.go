package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

func (c Config) auditPath() string { return filepath.Join(c.DataDir, "audit.db") }

// signingKey is the node's ed25519 identity as a standard library key: the
// audit log is signed with the key that the peer id names, so any member
// can check it offline.
func (n *Node) signingKey() (ed25519.PrivateKey, error) {
	raw, err := n.key.Raw()
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("node key is not ed25519")
	}
	return ed25519.PrivateKey(raw), nil
}

// audit appends rec, filling in the requester from ctx. An error means the
// action must be refused (fail closed) or, if it already happened, reported.
func (n *Node) audit(ctx context.Context, rec *yrdv1.AuditRecord) (*yrdv1.AuditRecord, error) {
	if rec.Requester == nil {
		rec.Requester = principal(ctx)
	}
	stampRequestID(ctx, rec)
	if rec.GetDecision() == yrdv1.Effect_EFFECT_DENY {
		n.metrics.countDenial(rec.GetRuleIds(), 1)
	}
	out, err := n.auditLog.Append(context.WithoutCancel(ctx), rec)
	if err != nil {
		n.log.ErrorContext(ctx, "audit append failed", "err", err)
		return nil, errorf(ErrUnavailable, "the audit record could not be written, so the request is refused: %v", err)
	}
	return out, nil
}

// auditedMethods are the client calls whose success is put on record by
// the interceptor; query decisions are recorded by their handler.
var auditedMethods = map[string]yrdv1.AuditAction{
	"/yrd.v1.CatalogService/PublishDataset":     yrdv1.AuditAction_AUDIT_ACTION_PUBLISH,
	"/yrd.v1.CatalogService/UpdateDataset":      yrdv1.AuditAction_AUDIT_ACTION_UPDATE,
	"/yrd.v1.CatalogService/RetireDataset":      yrdv1.AuditAction_AUDIT_ACTION_RETIRE,
	"/yrd.v1.GrantService/RequestGrant":         yrdv1.AuditAction_AUDIT_ACTION_GRANT_REQUEST,
	"/yrd.v1.GrantService/ApproveGrant":         yrdv1.AuditAction_AUDIT_ACTION_GRANT_APPROVE,
	"/yrd.v1.GrantService/RejectGrant":          yrdv1.AuditAction_AUDIT_ACTION_GRANT_REJECT,
	"/yrd.v1.GrantService/RevokeGrant":          yrdv1.AuditAction_AUDIT_ACTION_GRANT_REVOKE,
	"/yrd.v1.PolicyService/UpdatePolicy":        yrdv1.AuditAction_AUDIT_ACTION_POLICY_CHANGE,
	"/yrd.v1.ClusterService/IssueJoinToken":     yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.ClusterService/Remove":             yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.ClusterService/TransferLeadership": yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.ClusterService/Backup":             yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.AuthService/CreateAPIKey":          yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.AuthService/RevokeAPIKey":          yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.AuthService/IssueCertificate":      yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
	"/yrd.v1.AuthService/RevokeCertificate":     yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
}

// auditCall records a successful audited call. It runs after the change
// is committed and queues the record without waiting for its fsync; if the
// log has failed the caller is told so.
func (n *Node) auditCall(ctx context.Context, method string, resp any) error {
	action, ok := auditedMethods[method]
	if !ok {
		return nil
	}
	rec := &yrdv1.AuditRecord{Action: action, Decision: yrdv1.Effect_EFFECT_UNSPECIFIED, Detail: method}
	switch r := resp.(type) {
	case *yrdv1.PublishDatasetResponse:
		rec.DatasetId, rec.Detail = r.GetDataset().GetId(), fmt.Sprintf("published version %d, level %s", r.GetDataset().GetVersion(), r.GetDataset().GetLevel())
	case *yrdv1.UpdateDatasetResponse:
		rec.DatasetId, rec.Detail = r.GetDataset().GetId(), fmt.Sprintf("version %d, level %s", r.GetDataset().GetVersion(), r.GetDataset().GetLevel())
		if prev := n.previousLevel(ctx); prev != 0 && prev != r.GetDataset().GetLevel() {
			rec.Action = yrdv1.AuditAction_AUDIT_ACTION_REGRADE
			rec.Detail = fmt.Sprintf("re-graded from %s to %s (version %d)", n.previousLevel(ctx), r.GetDataset().GetLevel(), r.GetDataset().GetVersion())
		}
	case *yrdv1.RetireDatasetResponse:
		rec.DatasetId, rec.Detail = r.GetDataset().GetId(), fmt.Sprintf("retired at version %d", r.GetDataset().GetVersion())
	case *yrdv1.RequestGrantResponse:
		rec.DatasetId, rec.GrantId, rec.Detail = r.GetGrant().GetDatasetId(), r.GetGrant().GetId(), "purpose "+r.GetGrant().GetPurpose()
	case *yrdv1.DecideGrantResponse:
		rec.DatasetId, rec.GrantId, rec.Detail = r.GetGrant().GetDatasetId(), r.GetGrant().GetId(), "grant is now "+r.GetGrant().GetState().String()
		if r.GetGrant().GetState() == yrdv1.GrantState_GRANT_STATE_APPROVED {
			rec.Detail += ", expires " + r.GetGrant().GetExpiresAt().AsTime().UTC().Format(time.RFC3339)
		}
	case *yrdv1.UpdatePolicyResponse:
		rec.PolicyVersion, rec.Detail = r.GetParams().GetVersion(), "policy parameters changed"
	case *yrdv1.CreateAPIKeyResponse:
		rec.Detail = "API key " + r.GetKey().GetId() + " created for " + auth.String(r.GetKey().GetPrincipal())
	case *yrdv1.RevokeAPIKeyResponse:
		rec.Detail = "API key " + r.GetKey().GetId() + " revoked"
	case *yrdv1.IssueCertificateResponse:
		rec.Detail = "certificate " + r.GetCertificate().GetSerial() + " issued for " + auth.String(r.GetCertificate().GetPrincipal())
	case *yrdv1.RevokeCertificateResponse:
		rec.Detail = "certificate " + r.GetCertificate().GetSerial() + " revoked"
	}
	// The change is committed and in the replicated raft log already, so
	// the client does not wait for this record's fsync (see DESIGN.md).
	rec.Requester = principal(ctx)
	stampRequestID(ctx, rec)
	if err := n.auditLog.Enqueue(context.WithoutCancel(ctx), rec); err != nil {
		n.log.ErrorContext(ctx, "audit append failed", "err", err)
		return errorf(ErrUnavailable, "the change was made but its audit record could not be written: %v", err)
	}
	return nil
}

type prevLevelKey struct{}

// withPreviousLevel remembers a dataset's level before an update, so the
// audit record can tell a re-grade from another change.
func (n *Node) withPreviousLevel(ctx context.Context, req any) context.Context {
	if u, ok := req.(*yrdv1.UpdateDatasetRequest); ok {
		if d, found := n.catalog.GetDataset(u.GetDataset().GetId()); found {
			return context.WithValue(ctx, prevLevelKey{}, d.GetLevel())
		}
	}
	return ctx
}

func (n *Node) previousLevel(ctx context.Context) yrdv1.ClassificationLevel {
	l, _ := ctx.Value(prevLevelKey{}).(yrdv1.ClassificationLevel)
	return l
}

// anchorLoop records the audit chain head in the replicated catalog now
// and then, so that a cut tail is detectable by every member.
func (n *Node) anchorLoop() {
	t := time.NewTicker(n.cfg.AnchorInterval)
	defer t.Stop()
	// Start from what the catalog holds: from 0, a restarted node would
	// propose its unchanged head every interval, each refused as not
	// advancing, until its next audit record.
	anchored := n.lastAnchored()
	for {
		select {
		case <-n.base.Done():
			return
		case <-t.C:
		}
		seq, head := n.auditLog.Head()
		if seq == anchored {
			n.log.Debug("audit anchor: head already anchored", "seq", seq)
			continue
		}
		if n.raft.Leader() == "" {
			continue
		}
		key, err := n.signingKey()
		if err != nil {
			n.log.Error("audit anchor: signing key", "err", err)
			continue
		}
		a := audit.NewAnchor(key, n.id.String(), seq, head, time.Now())
		ctx, cancel := context.WithTimeout(n.base, 5*time.Second)
		_, err = n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_RecordAnchor{RecordAnchor: &yrdv1.RecordAnchorCommand{Anchor: a}}})
		cancel()
		if errors.Is(err, ErrConflict) {
			// This replica had not yet applied a later anchor of ours
			// when the loop started; catch up instead of retrying.
			anchored = max(anchored, n.lastAnchored())
			if seq <= anchored {
				continue
			}
		}
		if err != nil {
			n.log.Warn("recording audit anchor", "seq", seq, "err", err)
			continue
		}
		anchored = seq
		n.anchoredSeq.Store(seq)
		n.anchoredAt.Store(a.GetTime().AsTime().UnixNano())
	}
}

// lastAnchored is the sequence number of this node's latest anchor in
// the local catalog, 0 if it has none.
func (n *Node) lastAnchored() uint64 {
	a, err := n.catalog.LatestAnchor(n.id.String())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		n.log.Warn("audit anchor: reading the latest", "err", err)
	}
	return a.GetSeq()
}

// flushAudit makes every record of a call already answered readable: the
// summariser's pending refusals, then the log's queue.
func (n *Node) flushAudit(ctx context.Context) error {
	if err := n.refusals.Flush(ctx); err != nil {
		return err
	}
	return n.auditLog.Flush(ctx)
}

// auditService serves the node's own audit trail to auditors.
type auditService struct {
	yrdv1grpc.UnimplementedAuditServiceServer
	n *Node
}

// ruleIDPattern is what a rule id looks like, ours ("auth.bad-key") and the
// policy's ("general.personal.mask").
var ruleIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,99}$`)

func auditFilter(req *yrdv1.ListAuditRequest) (audit.Filter, error) {
	if req.GetLimit() < 0 || req.GetLimit() > audit.MaxLimit {
		return audit.Filter{}, errorf(ErrInvalid, "limit: %d is outside 0..%d", req.GetLimit(), audit.MaxLimit)
	}
	// An unknown value would silently match nothing: say so instead.
	if _, ok := yrdv1.Effect_name[int32(req.GetDecision())]; !ok {
		return audit.Filter{}, errorf(ErrInvalid, "decision: unknown outcome %d (want DENY, ALLOW_ROWS or ALLOW_AGGREGATES)", req.GetDecision())
	}
	if _, ok := yrdv1.AuditAction_name[int32(req.GetAction())]; !ok {
		return audit.Filter{}, errorf(ErrInvalid, "action: unknown audit action %d", req.GetAction())
	}
	if r := req.GetRuleId(); r != "" && !ruleIDPattern.MatchString(r) {
		return audit.Filter{}, errorf(ErrInvalid, "rule_id: %q is not a rule id (lower-case letters, digits, '.' and '-', e.g. auth.bad-key)", r)
	}
	f := audit.Filter{Requester: req.GetRequester(), DatasetID: req.GetDatasetId(), Decision: req.GetDecision(),
		Action: req.GetAction(), RuleID: req.GetRuleId(), AfterSeq: req.GetAfterSeq(), Limit: int(req.GetLimit())}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		f.Until = req.GetUntil().AsTime()
	}
	return f, nil
}

func (s *auditService) ListAudit(ctx context.Context, req *yrdv1.ListAuditRequest) (*yrdv1.ListAuditResponse, error) {
	f, err := auditFilter(req)
	if err != nil {
		return nil, err
	}
	if err := s.n.flushAudit(ctx); err != nil {
		return nil, err
	}
	recs, next, err := s.n.auditLog.List(f)
	if err != nil {
		return nil, err
	}
	return &yrdv1.ListAuditResponse{Records: recs, NextAfterSeq: next}, nil
}

func (s *auditService) ExportAudit(req *yrdv1.ListAuditRequest, stream yrdv1grpc.AuditService_ExportAuditServer) error {
	f, err := auditFilter(req)
	if err != nil {
		return err
	}
	if err := s.n.flushAudit(stream.Context()); err != nil {
		return err
	}
	for rec, err := range s.n.auditLog.Records(f.AfterSeq) {
		if err != nil {
			return err
		}
		if !f.Match(rec) {
			continue
		}
		if err := stream.Send(rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *auditService) VerifyAudit(ctx context.Context, _ *yrdv1.VerifyAuditRequest) (*yrdv1.VerifyAuditResponse, error) {
	if err := s.n.flushAudit(ctx); err != nil {
		return nil, err
	}
	anchors, err := s.n.catalog.Anchors(s.n.id.String())
	if err != nil {
		return nil, err
	}
	rep := s.n.auditLog.Verify(anchors)
	return &yrdv1.VerifyAuditResponse{Ok: rep.OK, Records: rep.Records, FirstBad: rep.FirstBad, Problem: rep.Problem,
		AnchorsChecked: uint64(len(anchors))}, nil
}
