package consensus

import (
	"errors"
	"math"
	"strconv"
	"time"

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
	if op.GetExpiresAt() != nil && op.GetTo() != yrdv1.GrantState_GRANT_STATE_APPROVED {
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "expires_at: only an approval sets when a grant expires"), nil
	}
	now := cmd.GetTime()
	g = proto.Clone(g).(*yrdv1.Grant)
	switch op.GetTo() {
	case yrdv1.GrantState_GRANT_STATE_APPROVED, yrdv1.GrantState_GRANT_STATE_REJECTED:
		if g.GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED {
			return fail(yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "grant %s is %s; only a requested grant can be decided", g.GetId(), stateName(g.GetState())), nil
		}
		if op.GetTo() == yrdv1.GrantState_GRANT_STATE_APPROVED {
			expires, refused := approvedExpiry(g, now, op.GetExpiresAt())
			if refused != nil {
				return refused, nil
			}
			g.ExpiresAt = expires
		}
		g.State, g.DecidedBy, g.DecidedAt = op.GetTo(), by, now
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

// approvedExpiry is when a grant approved at now expires: the requested
// duration from now, or the earlier time the CDO chose. Everything comes
// from the command and the catalog, never this replica's clock. A refusal
// is a result naming expires_at.
func approvedExpiry(g *yrdv1.Grant, now, chosen *timestamppb.Timestamp) (*timestamppb.Timestamp, *yrdv1.CommandResult) {
	requested := now.AsTime().Add(g.GetDuration().AsDuration())
	if chosen == nil {
		return timestamppb.New(requested), nil
	}
	at := chosen.AsTime().UTC().Format(time.RFC3339)
	switch {
	case chosen.CheckValid() != nil:
		return nil, fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "expires_at: %v", chosen.CheckValid())
	case !chosen.AsTime().After(now.AsTime()):
		return nil, fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "expires_at: %s is not after the approval (%s)",
			at, now.AsTime().UTC().Format(time.RFC3339))
	case chosen.AsTime().After(requested):
		return nil, fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "expires_at: %s is later than the requested expiry %s (%v from the approval); an approval may only shorten a grant",
			at, requested.UTC().Format(time.RFC3339), g.GetDuration().AsDuration())
	}
	return proto.Clone(chosen).(*timestamppb.Timestamp), nil
}

func stateName(s yrdv1.GrantState) string {
	name := s.String()
	if len(name) > len("GRANT_STATE_") {
		return name[len("GRANT_STATE_"):]
	}
	return name
}

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
	// Only the budget is checked here: it is new, so no command already in
	// a log can carry a bad one, while checking the older fields now would
	// change how such commands replay. The node checks all of them first.
	if msg := privacyBudgetProblem(op.GetParams().GetPrivacyBudget()); msg != "" {
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "params.%s", msg), nil
	}
	p := proto.Clone(op.GetParams()).(*yrdv1.PolicyParams)
	p.Version, p.UpdatedAt, p.UpdatedBy = current+1, cmd.GetTime(), op.GetBy()
	return &yrdv1.CommandResult{Policy: p}, tx.PutPolicy(p)
}

// currentPolicy is the stored policy or, before the first UpdatePolicy, the
// built-in defaults (version 1).
func currentPolicy(tx *store.Tx) (*yrdv1.PolicyParams, error) {
	p, err := tx.Policy()
	if errors.Is(err, store.ErrNotFound) {
		return InitialPolicy(), nil
	}
	return p, err
}

// Bounds of a privacy-budget spend. Requester city and org become part of a
// catalog key, so they are bounded well below bbolt's key limit: a put that
// failed on its size would be a storage error and stop every replica.
const (
	minBudgetYear      = 2000
	maxBudgetYear      = 2200
	maxBudgetPrincipal = 128
)

// spendPrivacyBudget charges epsilon to the requesting organisation's
// budget for the year, or refuses with EXHAUSTED and charges nothing when
// the total would pass the current policy's privacy_budget. The owner of
// the queried dataset charges it, since its node adds the noise; the
// requester's organisation is whatever the owner's node authenticated.
func spendPrivacyBudget(tx *store.Tx, cmd *yrdv1.Command, op *yrdv1.SpendPrivacyBudgetCommand) (*yrdv1.CommandResult, error) {
	city, org, year, eps := op.GetRequesterCity(), op.GetRequesterOrg(), op.GetYear(), op.GetEpsilon()
	switch {
	case city == "" || len(city) > maxBudgetPrincipal:
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "requester_city: required, at most %d bytes", maxBudgetPrincipal), nil
	case org == "" || len(org) > maxBudgetPrincipal:
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "requester_org: required, at most %d bytes", maxBudgetPrincipal), nil
	case year < minBudgetYear || year > maxBudgetYear:
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "year: %d is not a calendar year from %d to %d", year, minBudgetYear, maxBudgetYear), nil
	case !(eps > 0 && !math.IsInf(eps, 1)): // NaN fails eps > 0
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "epsilon: %v is not a finite number above 0", eps), nil
	case op.GetDatasetId() == "":
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "dataset_id: required"), nil
	}
	ds, err := lookup(tx, op.GetDatasetId())
	if err != nil {
		return nil, err
	}
	if ds == nil {
		return fail(yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "dataset_id: dataset %q not found", op.GetDatasetId()), nil
	}
	// Strict, unlike the older commands: no spend was ever proposed without
	// an origin.
	if o := cmd.GetOriginCity(); o != ds.GetOwnerCity() {
		if o == "" {
			o = "a command without an origin city"
		} else {
			o += "'s node"
		}
		return fail(yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "dataset_id: %s is owned by %s, so only %s's node charges privacy budget for it, not %s",
			op.GetDatasetId(), ds.GetOwnerCity(), ds.GetOwnerCity(), o), nil
	}
	params, err := currentPolicy(tx)
	if err != nil {
		return nil, err
	}
	// A family's budget is kept apart from the organisation-wide totals of
	// spends recorded before families (op.family empty).
	family := op.GetFamily()
	if len(family) > maxBudgetPrincipal {
		return fail(yrdv1.ErrorCode_ERROR_CODE_INVALID, "family: at most %d bytes", maxBudgetPrincipal), nil
	}
	spent, err := tx.PrivacySpent(city, org, int(year), family)
	if err != nil {
		return nil, err
	}
	budget, total := params.GetPrivacyBudget(), spent+eps
	// Written so that anything but a total within the budget refuses: an
	// overflow to +Inf or a NaN budget exhausts rather than passes.
	if !(total <= budget) {
		return fail(yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED,
			"privacy budget exhausted: organisation %s of %s has spent %v of its %d budget%s and asks for %v more, a total of %v, over the budget of %v (policy version %d)",
			org, city, spent, year, familyClause(family), eps, total, budget, params.GetVersion()), nil
	}
	if err := tx.PutPrivacySpent(city, org, int(year), family, total); err != nil {
		return nil, err
	}
	return &yrdv1.CommandResult{BudgetSpent: total, BudgetRemaining: budget - total}, nil
}

func familyClause(family string) string {
	if family == "" {
		return ""
	}
	return " for " + strconv.Quote(family)
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
