package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

const (
	defaultGrantDuration = 90 * 24 * time.Hour
	maxGrantDuration     = 366 * 24 * time.Hour
)

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$`)

// grantService manages data-use agreements. Requests come from the
// requester's home node, decisions from the owning organisation's CDO at
// the owner's node; the catalog re-checks both (consensus/apply_access.go).
type grantService struct {
	yrdv1grpc.UnimplementedGrantServiceServer
	n *Node
}

func (s *grantService) RequestGrant(ctx context.Context, req *yrdv1.RequestGrantRequest) (*yrdv1.RequestGrantResponse, error) {
	p := principal(ctx)
	if err := validID("dataset_id", req.GetDatasetId()); err != nil {
		return nil, err
	}
	if !slugPattern.MatchString(req.GetPurpose()) {
		return nil, errorf(ErrInvalid, "purpose: %q must be a purpose slug such as elderly-care-planning", req.GetPurpose())
	}
	form := req.GetResultForm()
	if form != yrdv1.ResultForm_RESULT_FORM_ROWS && form != yrdv1.ResultForm_RESULT_FORM_AGGREGATES {
		return nil, errorf(ErrInvalid, "result_form: required (ROWS or AGGREGATES)")
	}
	duration := defaultGrantDuration
	if req.GetDuration() != nil {
		if err := req.GetDuration().CheckValid(); err != nil {
			return nil, errorf(ErrInvalid, "duration: %v", err)
		}
		duration = req.GetDuration().AsDuration()
	}
	if duration <= 0 || duration > maxGrantDuration {
		return nil, errorf(ErrInvalid, "duration: %v is outside (0, %v]", duration, maxGrantDuration)
	}
	if len([]rune(req.GetNote())) > 1000 {
		return nil, errorf(ErrInvalid, "note: longer than 1000 characters")
	}
	id := make([]byte, 8)
	rand.Read(id)
	g := &yrdv1.Grant{Id: "grant-" + hex.EncodeToString(id), DatasetId: req.GetDatasetId(), RequesterCity: p.GetCity(),
		RequesterOrg: p.GetOrg(), Purpose: req.GetPurpose(), ResultForm: form, Duration: durationpb.New(duration),
		AllowPersonal: req.GetAllowPersonal(), RequestedBy: p, Note: req.GetNote()}
	res, err := s.n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_RequestGrant{RequestGrant: &yrdv1.RequestGrantCommand{Grant: g}}})
	if err != nil {
		return nil, err
	}
	return &yrdv1.RequestGrantResponse{Grant: res.GetGrant()}, nil
}

func (s *grantService) decide(ctx context.Context, req *yrdv1.DecideGrantRequest, to yrdv1.GrantState) (*yrdv1.DecideGrantResponse, error) {
	if req.GetId() == "" {
		return nil, errorf(ErrInvalid, "id: required")
	}
	if len([]rune(req.GetNote())) > 1000 {
		return nil, errorf(ErrInvalid, "note: longer than 1000 characters")
	}
	// The command's time is the one the expiry is judged against, here and
	// in the catalog (consensus/apply_access.go), so both judge alike.
	now := timestamppb.Now()
	if err := validExpiry(req.GetExpiresAt(), to, now.AsTime()); err != nil {
		return nil, err
	}
	res, err := s.n.propose(ctx, &yrdv1.Command{Time: now, Op: &yrdv1.Command_DecideGrant{DecideGrant: &yrdv1.DecideGrantCommand{
		Id: req.GetId(), To: to, By: principal(ctx), Note: req.GetNote(), ExpiresAt: req.GetExpiresAt()}}})
	if errors.Is(err, ErrPermissionDenied) {
		s.n.auditGrantRefused(ctx, req.GetId(), to, err)
	}
	if err != nil {
		return nil, err
	}
	return &yrdv1.DecideGrantResponse{Grant: res.GetGrant()}, nil
}

// validExpiry checks what can be checked of a decision's expires_at
// without the grant: that only an approval carries one, and that it is a
// time after now. Whether it shortens the requested duration the catalog
// decides, from the grant it holds.
func validExpiry(at *timestamppb.Timestamp, to yrdv1.GrantState, now time.Time) error {
	switch {
	case at == nil:
		return nil
	case to != yrdv1.GrantState_GRANT_STATE_APPROVED:
		return errorf(ErrInvalid, "expires_at: only an approval sets when a grant expires")
	case at.CheckValid() != nil:
		return errorf(ErrInvalid, "expires_at: %v", at.CheckValid())
	case !at.AsTime().After(now):
		return errorf(ErrInvalid, "expires_at: %s is not in the future", at.AsTime().UTC().Format(time.RFC3339))
	}
	return nil
}

// grantActions are the audit actions of the grant decisions.
var grantActions = map[yrdv1.GrantState]yrdv1.AuditAction{
	yrdv1.GrantState_GRANT_STATE_APPROVED: yrdv1.AuditAction_AUDIT_ACTION_GRANT_APPROVE,
	yrdv1.GrantState_GRANT_STATE_REJECTED: yrdv1.AuditAction_AUDIT_ACTION_GRANT_REJECT,
	yrdv1.GrantState_GRANT_STATE_REVOKED:  yrdv1.AuditAction_AUDIT_ACTION_GRANT_REVOKE,
}

// auditGrantRefused records a grant decision the catalog refused. The
// catalog refuses a decision with PermissionDenied for one reason only:
// the CDO (the role table admits no one else, and the command's origin is
// this node, the CDO's home) is not of the organisation and city that own
// the data (consensus/apply_access.go).
func (n *Node) auditGrantRefused(ctx context.Context, id string, to yrdv1.GrantState, err error) {
	rec := &yrdv1.AuditRecord{Action: grantActions[to], GrantId: id, Detail: err.Error()}
	if g, gerr := n.catalog.GetGrant(id); gerr == nil {
		rec.DatasetId = g.GetDatasetId()
	}
	n.auditRefused(ctx, RuleGrantOtherOrg, rec)
}

func (s *grantService) ApproveGrant(ctx context.Context, req *yrdv1.DecideGrantRequest) (*yrdv1.DecideGrantResponse, error) {
	return s.decide(ctx, req, yrdv1.GrantState_GRANT_STATE_APPROVED)
}

func (s *grantService) RejectGrant(ctx context.Context, req *yrdv1.DecideGrantRequest) (*yrdv1.DecideGrantResponse, error) {
	return s.decide(ctx, req, yrdv1.GrantState_GRANT_STATE_REJECTED)
}

func (s *grantService) RevokeGrant(ctx context.Context, req *yrdv1.DecideGrantRequest) (*yrdv1.DecideGrantResponse, error) {
	return s.decide(ctx, req, yrdv1.GrantState_GRANT_STATE_REVOKED)
}

func (s *grantService) GetGrant(ctx context.Context, req *yrdv1.GetGrantRequest) (*yrdv1.GetGrantResponse, error) {
	if err := s.n.readBarrier(ctx, req.GetConsistency()); err != nil {
		return nil, err
	}
	g, err := s.n.catalog.GetGrant(req.GetId())
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(ErrNotFound, "id: grant %q not found", req.GetId())
	} else if err != nil {
		return nil, err
	}
	return &yrdv1.GetGrantResponse{Grant: g}, nil
}

func (s *grantService) ListGrants(ctx context.Context, req *yrdv1.ListGrantsRequest) (*yrdv1.ListGrantsResponse, error) {
	if _, ok := yrdv1.GrantState_name[int32(req.GetState())]; !ok {
		return nil, errorf(ErrInvalid, "state: unknown value %d", req.GetState())
	}
	if err := s.n.readBarrier(ctx, req.GetConsistency()); err != nil {
		return nil, err
	}
	grants, err := s.n.catalog.ListGrants(store.GrantFilter{DatasetID: req.GetDatasetId(), RequesterOrg: req.GetRequesterOrg(), State: req.GetState()})
	if err != nil {
		return nil, err
	}
	return &yrdv1.ListGrantsResponse{Grants: s.ownedBy(grants, req.GetOwnerCity(), req.GetOwnerOrg())}, nil
}

// ownedBy keeps the grants on datasets of the owner city and org (either
// empty matches any): a CDO's view of the requests on their own data.
func (s *grantService) ownedBy(grants []*yrdv1.Grant, city, org string) []*yrdv1.Grant {
	if city == "" && org == "" {
		return grants
	}
	kept := grants[:0]
	for _, g := range grants {
		d, ok := s.n.catalog.GetDataset(g.GetDatasetId())
		if ok && (city == "" || d.GetOwnerCity() == city) && (org == "" || d.GetOwnerOrg() == org) {
			kept = append(kept, g)
		}
	}
	return kept
}

// policyService exposes the rule parameters and decides access requests.
type policyService struct {
	yrdv1grpc.UnimplementedPolicyServiceServer
	n *Node
}

// currentPolicy is the catalog's policy or, before the first UpdatePolicy,
// the initial one the raft FSM starts from (and replays with).
func (n *Node) currentPolicy() (*yrdv1.PolicyParams, error) {
	p, err := n.catalog.Policy()
	if errors.Is(err, store.ErrNotFound) {
		return consensus.InitialPolicy(), nil
	}
	return p, err
}

func (s *policyService) GetPolicy(ctx context.Context, _ *yrdv1.GetPolicyRequest) (*yrdv1.GetPolicyResponse, error) {
	if err := s.n.readBarrier(ctx, yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); err != nil {
		return nil, err
	}
	p, err := s.n.currentPolicy()
	if err != nil {
		return nil, err
	}
	return &yrdv1.GetPolicyResponse{Params: p}, nil
}

func validParams(p *yrdv1.PolicyParams) error {
	switch {
	case p == nil:
		return errorf(ErrInvalid, "params: required")
	case p.GetDefaultMinGroupSize() < 2:
		return errorf(ErrInvalid, "params.default_min_group_size: %d is below 2", p.GetDefaultMinGroupSize())
	case p.GetRowCap() == 0:
		return errorf(ErrInvalid, "params.row_cap: must be positive")
	case p.GetCrossBorderIndividualsLimit() == 0 || p.GetCrossBorderSensitiveIndividualsLimit() == 0:
		return errorf(ErrInvalid, "params.cross_border_*_limit: must be positive")
	}
	if err := policy.ValidatePrivacyBudget(p.GetPrivacyBudget()); err != nil {
		return errorf(ErrInvalid, "params.%v", err)
	}
	for i, s := range p.GetTrialSectors() {
		if !contains(catalogspec.Sectors, s) {
			return errorf(ErrInvalid, "params.trial_sectors[%d]: %q is not a sector", i, s)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *policyService) UpdatePolicy(ctx context.Context, req *yrdv1.UpdatePolicyRequest) (*yrdv1.UpdatePolicyResponse, error) {
	if err := validParams(req.GetParams()); err != nil {
		return nil, err
	}
	res, err := s.n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_UpdatePolicy{UpdatePolicy: &yrdv1.UpdatePolicyCommand{
		Params: req.GetParams(), ExpectedVersion: req.GetExpectedVersion(), By: principal(ctx)}}})
	if err != nil {
		return nil, err
	}
	return &yrdv1.UpdatePolicyResponse{Params: res.GetPolicy()}, nil
}

// Decide evaluates an access request exactly as a query would be judged.
// Rules, grants and metadata are replicated, so every node decides alike;
// the decision is on record before it is returned (fail closed).
func (s *policyService) Decide(ctx context.Context, req *yrdv1.DecideRequest) (*yrdv1.DecideResponse, error) {
	n := s.n
	access := req.GetAccess()
	if err := validID("access.dataset_id", access.GetDatasetId()); err != nil {
		return nil, err
	}
	if err := n.readBarrier(ctx, yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); err != nil {
		return nil, err
	}
	ds, ok := n.catalog.GetDataset(access.GetDatasetId())
	if !ok {
		return nil, errorf(ErrNotFound, "access.dataset_id: dataset %q not found", access.GetDatasetId())
	}
	if err := policy.ValidateAccess(ds, access); err != nil {
		return nil, errorf(ErrInvalid, "access: %v", err)
	}
	p := principal(ctx)
	params, err := n.currentPolicy()
	if err != nil {
		return nil, err
	}
	grants, err := n.catalog.ListGrants(store.GrantFilter{DatasetID: ds.GetId(), RequesterOrg: p.GetOrg()})
	if err != nil {
		return nil, err
	}
	self, _ := n.catalog.Member(n.id.String())
	d := policy.Decide(&policy.Request{Requester: p, RequesterOutsideMainland: self.GetOutsideMainland(), Dataset: ds,
		Access: access, Grants: grants, Now: time.Now(), Params: params})
	rec, err := n.audit(ctx, &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, DatasetId: ds.GetId(),
		GrantId: d.GetGrantId(), Decision: d.GetEffect(), RuleIds: d.GetRuleIds(), PolicyVersion: d.GetPolicyVersion(),
		QueryFingerprint: fingerprint(access), CrossBorder: d.GetCrossBorder(), Detail: d.GetReason()})
	if err != nil {
		return nil, err
	}
	return &yrdv1.DecideResponse{Decision: d, AuditSeq: rec.GetSeq()}, nil
}

// fingerprint identifies a request on record without storing its text.
func fingerprint(m proto.Message) string {
	data, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}
