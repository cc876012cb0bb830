package consensus

import (
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// The home node authorises a request before proposing it; the checks here
// repeat what can be decided from the catalog and the command's origin,
// so that a member cannot act for principals of another city, or for an
// organisation on data it does not own, whatever it proposes.

// fromOrigin reports whether principal p may have come from the proposing
// node. Commands proposed before origins were recorded carry none.
func fromOrigin(cmd *yrdv1.Command, p *yrdv1.Principal) bool {
	return cmd.GetOriginCity() == "" || cmd.GetOriginCity() == p.GetCity()
}

func requestGrant(tx *store.Tx, cmd *yrdv1.Command, op *yrdv1.RequestGrantCommand) (*yrdv1.CommandResult, error) {
	in := op.GetGrant()
	if in.GetId() == "" || in.GetRequestedBy() == nil {
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "grant: id and requester are required"), nil
	}
	if !fromOrigin(cmd, in.GetRequestedBy()) || in.GetRequesterCity() != in.GetRequestedBy().GetCity() ||
		in.GetRequesterOrg() != in.GetRequestedBy().GetOrg() {
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "grant: a grant is requested by its requester's home node for its own organisation"), nil
	}
	ds, err := lookup(tx, in.GetDatasetId())
	if err != nil {
		return nil, err
	}
	switch {
	case ds == nil:
		return fail(yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "dataset_id: dataset %q not found", in.GetDatasetId()), nil
	case ds.GetRetired():
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "dataset_id: dataset %q is retired", in.GetDatasetId()), nil
	case ds.GetLevel() == yrdv1.ClassificationLevel_LEVEL_CORE:
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "dataset_id: %q is CORE data: metadata only, no grant can open it", in.GetDatasetId()), nil
	}
	if _, err := tx.Grant(in.GetId()); err == nil {
		return fail(yrdv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "id: grant %q already exists", in.GetId()), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	g := proto.Clone(in).(*yrdv1.Grant)
	g.State, g.RequestedAt, g.Version = yrdv1.GrantState_GRANT_STATE_REQUESTED, cmd.GetTime(), 1
	g.DecidedBy, g.DecidedAt, g.ExpiresAt, g.RevokedBy, g.RevokedAt = nil, nil, nil, nil, nil
	return &yrdv1.CommandResult{Grant: g}, tx.PutGrant(g)
}

func decideGrant(tx *store.Tx, cmd *yrdv1.Command, op *yrdv1.DecideGrantCommand) (*yrdv1.CommandResult, error) {
	g, err := tx.Grant(op.GetId())
	if errors.Is(err, store.ErrNotFound) {
		return fail(yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "id: grant %q not found", op.GetId()), nil
	} else if err != nil {
		return nil, err
	}
	ds, err := lookup(tx, g.GetDatasetId())
	if err != nil {
		return nil, err
	}
	by := op.GetBy()
	// Only a CDO of the organisation (and city) that owns the data decides.
	if ds == nil || by.GetRole() != yrdv1.Role_ROLE_CDO || by.GetOrg() != ds.GetOwnerOrg() ||
		by.GetCity() != ds.GetOwnerCity() || !fromOrigin(cmd, by) {
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "only a CDO of %s in %s decides grants on %s",
			ds.GetOwnerOrg(), ds.GetOwnerCity(), g.GetDatasetId()), nil
	}
	now := cmd.GetTime()
	g = proto.Clone(g).(*yrdv1.Grant)
	switch op.GetTo() {
	case yrdv1.GrantState_GRANT_STATE_APPROVED, yrdv1.GrantState_GRANT_STATE_REJECTED:
		if g.GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED {
			return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "grant %s is %s; only a requested grant can be decided", g.GetId(), stateName(g.GetState())), nil
		}
		g.State, g.DecidedBy, g.DecidedAt = op.GetTo(), by, now
		if op.GetTo() == yrdv1.GrantState_GRANT_STATE_APPROVED {
			g.ExpiresAt = timestamppb.New(now.AsTime().Add(g.GetDuration().AsDuration()))
		}
	case yrdv1.GrantState_GRANT_STATE_REVOKED:
		if g.GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED && g.GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED {
			return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "grant %s is %s; only a requested or approved grant can be revoked", g.GetId(), stateName(g.GetState())), nil
		}
		g.State, g.RevokedBy, g.RevokedAt = op.GetTo(), by, now
	default:
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "to: %v is not a decision", op.GetTo()), nil
	}
	if op.GetNote() != "" {
		g.Note = op.GetNote()
	}
	g.Version++
	return &yrdv1.CommandResult{Grant: g}, tx.PutGrant(g)
}

func stateName(s yrdv1.GrantState) string {
	name := s.String()
	if len(name) > len("GRANT_STATE_") {
		return name[len("GRANT_STATE_"):]
	}
	return name
}

// DefaultPolicyVersion is the version of the built-in policy parameters
// that apply until the first UpdatePolicy.
const DefaultPolicyVersion = 1

func updatePolicy(tx *store.Tx, cmd *yrdv1.Command, op *yrdv1.UpdatePolicyCommand) (*yrdv1.CommandResult, error) {
	if op.GetBy().GetRole() != yrdv1.Role_ROLE_OPERATOR || !fromOrigin(cmd, op.GetBy()) {
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "only an operator changes the policy"), nil
	}
	// Before any change the delta runs the built-in defaults, version 1.
	current := uint64(DefaultPolicyVersion)
	if p, err := tx.Policy(); err == nil {
		current = p.GetVersion()
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if op.GetExpectedVersion() != current {
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "expected_version: %d is stale; the catalog holds policy version %d", op.GetExpectedVersion(), current), nil
	}
	p := proto.Clone(op.GetParams()).(*yrdv1.PolicyParams)
	p.Version, p.UpdatedAt, p.UpdatedBy = current+1, cmd.GetTime(), op.GetBy()
	return &yrdv1.CommandResult{Policy: p}, tx.PutPolicy(p)
}

func recordAnchor(tx *store.Tx, cmd *yrdv1.Command, op *yrdv1.RecordAnchorCommand) (*yrdv1.CommandResult, error) {
	a := op.GetAnchor()
	if cmd.GetOriginPeer() != "" && cmd.GetOriginPeer() != a.GetNode() {
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "anchor: a node anchors only its own audit log"), nil
	}
	last, err := tx.LatestAnchor(a.GetNode())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if last != nil && a.GetSeq() <= last.GetSeq() {
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "anchor: seq %d does not advance past %d", a.GetSeq(), last.GetSeq()), nil
	}
	return &yrdv1.CommandResult{}, tx.PutAnchor(a)
}
