package consensus

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// MaxVoters is the most voting members the registry accepts: 3 to 7 core
// cities vote, the rest of the delta follows as non-voters.
const MaxVoters = 7

// applyCommand runs one command against the catalog. Domain outcomes (not
// found, conflicts, bad tokens) are results: they are decided identically on
// every replica. Only storage failures are errors. Each command checks
// everything before it writes, so a refused command writes nothing.
//
// cmd must be the caller's own copy, decoded for this call: the dataset it
// carries is completed in place and handed to the catalog, which keeps it,
// and to the result. Nothing may modify cmd or the result afterwards.
func applyCommand(tx *store.Tx, cmd *yrdv1.Command) (*yrdv1.CommandResult, error) {
	now := cmd.GetTime()
	switch op := cmd.Op.(type) {
	case *yrdv1.Command_PublishDataset:
		if o := cmd.GetOriginCity(); o != "" && o != op.PublishDataset.GetDataset().GetOwnerCity() {
			return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "dataset.owner_city: %s's node cannot publish for %s", o, op.PublishDataset.GetDataset().GetOwnerCity()), nil
		}
		return publish(tx, op.PublishDataset.GetDataset(), now)
	case *yrdv1.Command_UpdateDataset:
		if o := cmd.GetOriginCity(); o != "" && o != op.UpdateDataset.GetDataset().GetOwnerCity() {
			return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "dataset.owner_city: %s's node cannot change %s's datasets", o, op.UpdateDataset.GetDataset().GetOwnerCity()), nil
		}
		return update(tx, op.UpdateDataset, now)
	case *yrdv1.Command_RetireDataset:
		if o := cmd.GetOriginCity(); o != "" {
			if d, err := lookup(tx, op.RetireDataset.GetId()); err != nil {
				return nil, err
			} else if d != nil && d.GetOwnerCity() != o {
				return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "id: %s's node cannot retire %s's datasets", o, d.GetOwnerCity()), nil
			}
		}
		return retire(tx, op.RetireDataset, now)
	case *yrdv1.Command_IssueJoinToken:
		return issueToken(tx, op.IssueJoinToken, now)
	case *yrdv1.Command_RedeemJoinToken:
		return redeemToken(tx, op.RedeemJoinToken, now)
	case *yrdv1.Command_RemoveMember:
		return removeMember(tx, op.RemoveMember.GetPeerId())
	case *yrdv1.Command_RequestGrant:
		return requestGrant(tx, cmd, op.RequestGrant)
	case *yrdv1.Command_DecideGrant:
		return decideGrant(tx, cmd, op.DecideGrant)
	case *yrdv1.Command_UpdatePolicy:
		return updatePolicy(tx, cmd, op.UpdatePolicy)
	case *yrdv1.Command_RecordAnchor:
		return recordAnchor(tx, cmd, op.RecordAnchor)
	case *yrdv1.Command_SpendPrivacyBudget:
		return spendPrivacyBudget(tx, cmd, op.SpendPrivacyBudget)
	case *yrdv1.Command_PutMember:
		m := proto.Clone(op.PutMember.GetMember()).(*yrdv1.Member)
		if m.GetPeerId() == "" {
			return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "member.peer_id: required"), nil
		}
		if m.JoinedAt == nil {
			m.JoinedAt = now
		}
		// A member may refresh its own addresses; what it is (city,
		// suffrage, region) is set only by the join token that admitted it.
		if o := cmd.GetOriginPeer(); o != "" {
			old, err := tx.Member(m.GetPeerId())
			switch {
			case errors.Is(err, store.ErrNotFound):
				if members, err := tx.Members(); err != nil {
					return nil, err
				} else if len(members) > 0 {
					return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "member: new members join with a token"), nil
				}
			case err != nil:
				return nil, err
			case o != m.GetPeerId() || old.GetCity() != m.GetCity() || old.GetSuffrage() != m.GetSuffrage() ||
				old.GetOutsideMainland() != m.GetOutsideMainland():
				return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "member: a node may only refresh its own addresses"), nil
			}
		}
		return &yrdv1.CommandResult{Member: m}, tx.PutMember(m)
	default:
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "command has no known operation"), nil
	}
}

func fail(code yrdv1.ErrorCode, format string, args ...any) *yrdv1.CommandResult {
	return &yrdv1.CommandResult{ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}
}

// lookup distinguishes "absent" from a storage failure.
func lookup(tx *store.Tx, id string) (*yrdv1.Dataset, error) {
	d, err := tx.Dataset(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return d, err
}

func publish(tx *store.Tx, in *yrdv1.Dataset, now *timestamppb.Timestamp) (*yrdv1.CommandResult, error) {
	if in.GetId() == "" {
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "dataset.id: required"), nil
	}
	old, err := lookup(tx, in.GetId())
	if err != nil {
		return nil, err
	}
	if old != nil {
		return fail(yrdv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "dataset.id: %q already exists (version %d)", in.GetId(), old.GetVersion()), nil
	}
	d := in // the command's own copy; see applyCommand
	d.Version, d.CreatedAt, d.UpdatedAt, d.Retired, d.RetiredAt = 1, now, now, false, nil
	return &yrdv1.CommandResult{Dataset: d}, tx.PutDatasetOwned(d)
}

func update(tx *store.Tx, op *yrdv1.UpdateDatasetCommand, now *timestamppb.Timestamp) (*yrdv1.CommandResult, error) {
	in := op.GetDataset()
	old, err := lookup(tx, in.GetId())
	if err != nil {
		return nil, err
	}
	switch {
	case old == nil:
		return fail(yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "dataset.id: %q not found", in.GetId()), nil
	case old.GetRetired():
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "dataset %q is retired and cannot change", in.GetId()), nil
	case op.GetExpectedVersion() != old.GetVersion():
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "expected_version: %d is stale; the catalog holds version %d", op.GetExpectedVersion(), old.GetVersion()), nil
	case in.GetOwnerCity() != old.GetOwnerCity():
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "dataset.owner_city: cannot change from %q to %q; publish a new dataset instead", old.GetOwnerCity(), in.GetOwnerCity()), nil
	case in.GetOwnerOrg() != old.GetOwnerOrg():
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "dataset.owner_org: cannot change from %q to %q; publish a new dataset instead", old.GetOwnerOrg(), in.GetOwnerOrg()), nil
	}
	d := in // the command's own copy; see applyCommand
	d.Version, d.CreatedAt, d.UpdatedAt, d.Retired, d.RetiredAt = old.GetVersion()+1, old.GetCreatedAt(), now, false, nil
	return &yrdv1.CommandResult{Dataset: d}, tx.PutDatasetOwned(d)
}

func retire(tx *store.Tx, op *yrdv1.RetireDatasetCommand, now *timestamppb.Timestamp) (*yrdv1.CommandResult, error) {
	old, err := lookup(tx, op.GetId())
	if err != nil {
		return nil, err
	}
	switch {
	case old == nil:
		return fail(yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "id: dataset %q not found", op.GetId()), nil
	case old.GetRetired():
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "dataset %q is already retired", op.GetId()), nil
	case op.GetExpectedVersion() != 0 && op.GetExpectedVersion() != old.GetVersion():
		return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "expected_version: %d is stale; the catalog holds version %d", op.GetExpectedVersion(), old.GetVersion()), nil
	}
	d := old // a fresh copy read from the transaction
	d.Version, d.UpdatedAt, d.Retired, d.RetiredAt = old.GetVersion()+1, now, true, now
	return &yrdv1.CommandResult{Dataset: d}, tx.PutDatasetOwned(d)
}

func issueToken(tx *store.Tx, op *yrdv1.IssueJoinTokenCommand, now *timestamppb.Timestamp) (*yrdv1.CommandResult, error) {
	if len(op.GetTokenHash()) == 0 || op.GetExpiresAt() == nil {
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "join token: hash and expiry are required"), nil
	}
	if err := tx.DeleteExpiredJoinTokens(now.AsTime()); err != nil {
		return nil, err
	}
	t := &yrdv1.JoinToken{TokenHash: op.GetTokenHash(), ExpiresAt: op.GetExpiresAt(), Suffrage: op.GetSuffrage(), City: op.GetCity(),
		IssuedAt: now, OutsideMainland: op.GetOutsideMainland()}
	return &yrdv1.CommandResult{}, tx.PutJoinToken(t)
}

func redeemToken(tx *store.Tx, op *yrdv1.RedeemJoinTokenCommand, now *timestamppb.Timestamp) (*yrdv1.CommandResult, error) {
	t, err := tx.JoinToken(op.GetTokenHash())
	if errors.Is(err, store.ErrNotFound) {
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "token: not a valid join token"), nil
	} else if err != nil {
		return nil, err
	}
	in := op.GetMember()
	members, err := tx.Members()
	if err != nil {
		return nil, err
	}
	voters := 0
	for _, m := range members {
		if m.GetSuffrage() == yrdv1.Suffrage_SUFFRAGE_VOTER {
			voters++
		}
		if m.GetPeerId() == in.GetPeerId() {
			return fail(yrdv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "peer_id: %s is already a member (city %s)", m.GetPeerId(), m.GetCity()), nil
		}
		if m.GetCity() == in.GetCity() {
			return fail(yrdv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "city: %s already has a node (%s); remove it first", m.GetCity(), m.GetPeerId()), nil
		}
	}
	switch {
	case t.GetRedeemedBy() != "":
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "token: already used by %s", t.GetRedeemedBy()), nil
	case !now.AsTime().Before(t.GetExpiresAt().AsTime()):
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "token: expired at %s", t.GetExpiresAt().AsTime().UTC().Format("2006-01-02T15:04:05Z")), nil
	case t.GetCity() != "" && t.GetCity() != in.GetCity():
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "token: issued for city %s, not %s", t.GetCity(), in.GetCity()), nil
	case t.GetSuffrage() == yrdv1.Suffrage_SUFFRAGE_VOTER && voters >= MaxVoters:
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "token: the cluster already has %d voters, the most it allows", MaxVoters), nil
	case !bytes.Equal(t.GetTokenHash(), op.GetTokenHash()):
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "token: not a valid join token"), nil
	}
	m := proto.Clone(in).(*yrdv1.Member)
	m.Suffrage, m.JoinedAt, m.OutsideMainland = t.GetSuffrage(), now, t.GetOutsideMainland()
	t = proto.Clone(t).(*yrdv1.JoinToken)
	t.RedeemedBy, t.RedeemedAt = m.GetPeerId(), now
	if err := tx.PutJoinToken(t); err != nil {
		return nil, err
	}
	return &yrdv1.CommandResult{Member: m}, tx.PutMember(m)
}

func removeMember(tx *store.Tx, peerID string) (*yrdv1.CommandResult, error) {
	m, err := tx.Member(peerID)
	if errors.Is(err, store.ErrNotFound) {
		return fail(yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "peer_id: %s is not a member", peerID), nil
	} else if err != nil {
		return nil, err
	}
	return &yrdv1.CommandResult{Member: m}, tx.DeleteMember(peerID)
}
