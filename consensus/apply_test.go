package consensus

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// applier applies commands to a real catalog file, one raft index each.
type applier struct {
	t     *testing.T
	c     *store.Catalog
	index uint64
	now   time.Time
}

func newApplier(t *testing.T) *applier {
	c, err := store.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &applier{t: t, c: c, now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

func (a *applier) apply(origin string, cmd *yrdv1.Command) *yrdv1.CommandResult {
	a.t.Helper()
	a.index++
	cmd.Time, cmd.OriginCity, cmd.OriginPeer = timestamppb.New(a.now), origin, origin+"-peer"
	var res *yrdv1.CommandResult
	if err := a.c.Update(a.index, func(tx *store.Tx) (err error) {
		res, err = applyCommand(tx, cmd)
		return err
	}); err != nil {
		a.t.Fatal(err)
	}
	return res
}

func want(t *testing.T, res *yrdv1.CommandResult, code yrdv1.ErrorCode, hint string) {
	t.Helper()
	if res.GetErrorCode() != code || !strings.Contains(res.GetErrorMessage(), hint) {
		t.Fatalf("got %v %q, want %v mentioning %q", res.GetErrorCode(), res.GetErrorMessage(), code, hint)
	}
}

var ok = yrdv1.ErrorCode_ERROR_CODE_UNSPECIFIED

func publishCmd(d *yrdv1.Dataset) *yrdv1.Command {
	return &yrdv1.Command{Op: &yrdv1.Command_PublishDataset{PublishDataset: &yrdv1.PublishDatasetCommand{Dataset: d}}}
}

func hospital() *yrdv1.Dataset {
	for _, d := range sample.Datasets() {
		if d.GetLevel() == yrdv1.ClassificationLevel_LEVEL_IMPORTANT {
			return d
		}
	}
	panic("no IMPORTANT sample")
}

func TestNodeCanOnlyPublishItsOwnCitysDatasets(t *testing.T) {
	a := newApplier(t)
	d := hospital() // owned by nanjing
	want(t, a.apply("shanghai", publishCmd(d)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "owner_city")
	want(t, a.apply("nanjing", publishCmd(d)), ok, "")
	if _, found := a.c.GetDataset(d.GetId()); !found {
		t.Fatal("the owner's publish was not applied")
	}
}

func TestGrantLifecycleRules(t *testing.T) {
	a := newApplier(t)
	d := hospital()
	a.apply(d.GetOwnerCity(), publishCmd(d))
	analyst := &yrdv1.Principal{City: "hangzhou", Org: "hz-health", Name: "wang", Role: yrdv1.Role_ROLE_ANALYST}
	cdo := &yrdv1.Principal{City: d.GetOwnerCity(), Org: d.GetOwnerOrg(), Name: "chen", Role: yrdv1.Role_ROLE_CDO}
	grant := &yrdv1.Grant{Id: "g1", DatasetId: d.GetId(), RequesterCity: "hangzhou", RequesterOrg: "hz-health", Purpose: "research",
		ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(24 * time.Hour), RequestedBy: analyst}
	req := func(g *yrdv1.Grant) *yrdv1.Command {
		return &yrdv1.Command{Op: &yrdv1.Command_RequestGrant{RequestGrant: &yrdv1.RequestGrantCommand{Grant: g}}}
	}
	decide := func(to yrdv1.GrantState, by *yrdv1.Principal) *yrdv1.Command {
		return &yrdv1.Command{Op: &yrdv1.Command_DecideGrant{DecideGrant: &yrdv1.DecideGrantCommand{Id: "g1", To: to, By: by}}}
	}
	// Requested from another city than the requester's: refused.
	want(t, a.apply("shanghai", req(grant)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "home node")
	res := a.apply("hangzhou", req(grant))
	want(t, res, ok, "")
	if res.GetGrant().GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED || res.GetGrant().GetExpiresAt() != nil {
		t.Fatalf("requested grant: %v", res.GetGrant())
	}
	want(t, a.apply("hangzhou", req(grant)), yrdv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "g1")

	// Approval: only a CDO of the owning organisation, from its city.
	otherCDO := &yrdv1.Principal{City: d.GetOwnerCity(), Org: "nj-transport", Name: "x", Role: yrdv1.Role_ROLE_CDO}
	want(t, a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_APPROVED, otherCDO)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "CDO")
	want(t, a.apply("hangzhou", decide(yrdv1.GrantState_GRANT_STATE_APPROVED, cdo)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "CDO")
	want(t, a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_APPROVED, analyst)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "CDO")
	res = a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_APPROVED, cdo))
	want(t, res, ok, "")
	if !res.GetGrant().GetExpiresAt().AsTime().Equal(a.now.Add(24 * time.Hour)) {
		t.Fatalf("approved grant expires %v, want a day after approval", res.GetGrant().GetExpiresAt().AsTime())
	}
	want(t, a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_REJECTED, cdo)), yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "APPROVED")
	res = a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_REVOKED, cdo))
	want(t, res, ok, "")
	if res.GetGrant().GetState() != yrdv1.GrantState_GRANT_STATE_REVOKED || res.GetGrant().GetRevokedBy().GetName() != "chen" {
		t.Fatalf("revoked grant: %v", res.GetGrant())
	}
	want(t, a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_REVOKED, cdo)), yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "REVOKED")
}

// TestApprovalMayOnlyShortenTheRequestedExpiry: an approval's expires_at
// replaces the requested duration only if it falls after the command's
// time and no later than that duration from it; a refusal names the field
// and changes nothing.
func TestApprovalMayOnlyShortenTheRequestedExpiry(t *testing.T) {
	a := newApplier(t)
	d := hospital()
	a.apply(d.GetOwnerCity(), publishCmd(d))
	analyst := &yrdv1.Principal{City: "hangzhou", Org: "hz-health", Name: "wang", Role: yrdv1.Role_ROLE_ANALYST}
	cdo := &yrdv1.Principal{City: d.GetOwnerCity(), Org: d.GetOwnerOrg(), Name: "chen", Role: yrdv1.Role_ROLE_CDO}
	want(t, a.apply("hangzhou", &yrdv1.Command{Op: &yrdv1.Command_RequestGrant{RequestGrant: &yrdv1.RequestGrantCommand{Grant: &yrdv1.Grant{
		Id: "g1", DatasetId: d.GetId(), RequesterCity: "hangzhou", RequesterOrg: "hz-health", Purpose: "research",
		ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(30 * 24 * time.Hour), RequestedBy: analyst}}}}), ok, "")
	decide := func(to yrdv1.GrantState, at time.Time) *yrdv1.Command {
		return &yrdv1.Command{Op: &yrdv1.Command_DecideGrant{DecideGrant: &yrdv1.DecideGrantCommand{Id: "g1", To: to, By: cdo,
			ExpiresAt: timestamppb.New(at)}}}
	}
	approve := func(at time.Time) *yrdv1.Command { return decide(yrdv1.GrantState_GRANT_STATE_APPROVED, at) }
	want(t, a.apply(d.GetOwnerCity(), approve(a.now.Add(31*24*time.Hour))), yrdv1.ErrorCode_ERROR_CODE_INVALID, "expires_at: 2026-12-23T10:00:00Z is later than the requested expiry 2026-12-22T10:00:00Z")
	want(t, a.apply(d.GetOwnerCity(), approve(a.now)), yrdv1.ErrorCode_ERROR_CODE_INVALID, "expires_at: 2026-11-22T10:00:00Z is not after the approval")
	want(t, a.apply(d.GetOwnerCity(), decide(yrdv1.GrantState_GRANT_STATE_REJECTED, a.now.Add(time.Hour))), yrdv1.ErrorCode_ERROR_CODE_INVALID, "only an approval")
	if g, _ := a.c.GetGrant("g1"); g.GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED {
		t.Fatalf("refused approvals changed the grant: %v", g)
	}
	shorter := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	res := a.apply(d.GetOwnerCity(), approve(shorter))
	want(t, res, ok, "")
	if !res.GetGrant().GetExpiresAt().AsTime().Equal(shorter) || res.GetGrant().GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED {
		t.Fatalf("approved until %v: %v", shorter, res.GetGrant())
	}
}

func TestPolicyUpdatesAreVersionedAndOperatorOnly(t *testing.T) {
	a := newApplier(t)
	op := &yrdv1.Principal{City: "shanghai", Org: "sh-ops", Name: "root", Role: yrdv1.Role_ROLE_OPERATOR}
	upd := func(expected uint64, by *yrdv1.Principal) *yrdv1.Command {
		return &yrdv1.Command{Op: &yrdv1.Command_UpdatePolicy{UpdatePolicy: &yrdv1.UpdatePolicyCommand{
			Params: &yrdv1.PolicyParams{DefaultMinGroupSize: 20}, ExpectedVersion: expected, By: by}}}
	}
	want(t, a.apply("shanghai", upd(1, &yrdv1.Principal{City: "shanghai", Role: yrdv1.Role_ROLE_CDO})), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "operator")
	// The built-in defaults are version 1; the first change makes version 2.
	res := a.apply("shanghai", upd(1, op))
	want(t, res, ok, "")
	if res.GetPolicy().GetVersion() != 2 || res.GetPolicy().GetUpdatedBy().GetName() != "root" {
		t.Fatalf("policy: %v", res.GetPolicy())
	}
	want(t, a.apply("shanghai", upd(1, op)), yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "expected_version")
	want(t, a.apply("nanjing", upd(2, op)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "operator")
}

func TestAnchorsAdvanceAndComeFromTheirNode(t *testing.T) {
	a := newApplier(t)
	anchor := func(node string, seq uint64) *yrdv1.Command {
		return &yrdv1.Command{Op: &yrdv1.Command_RecordAnchor{RecordAnchor: &yrdv1.RecordAnchorCommand{Anchor: &yrdv1.AuditAnchor{Node: node, Seq: seq}}}}
	}
	want(t, a.apply("shanghai", anchor("shanghai-peer", 10)), ok, "")
	want(t, a.apply("shanghai", anchor("shanghai-peer", 10)), yrdv1.ErrorCode_ERROR_CODE_VERSION_CONFLICT, "advance")
	want(t, a.apply("nanjing", anchor("shanghai-peer", 20)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "own")
}

func TestMembersMayOnlyRefreshTheirOwnAddresses(t *testing.T) {
	a := newApplier(t)
	put := func(m *yrdv1.Member) *yrdv1.Command {
		return &yrdv1.Command{Op: &yrdv1.Command_PutMember{PutMember: &yrdv1.PutMemberCommand{Member: m}}}
	}
	self := &yrdv1.Member{PeerId: "shanghai-peer", City: "shanghai", Suffrage: yrdv1.Suffrage_SUFFRAGE_VOTER}
	want(t, a.apply("shanghai", put(self)), ok, "") // bootstrap: the registry is empty
	want(t, a.apply("nanjing", put(&yrdv1.Member{PeerId: "nanjing-peer", City: "nanjing"})), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "token")
	moved := &yrdv1.Member{PeerId: "shanghai-peer", City: "shanghai", Suffrage: yrdv1.Suffrage_SUFFRAGE_VOTER, ApiAddr: "10.0.0.1:7401"}
	want(t, a.apply("shanghai", put(moved)), ok, "")
	promoted := &yrdv1.Member{PeerId: "shanghai-peer", City: "shanghai", Suffrage: yrdv1.Suffrage_SUFFRAGE_VOTER, OutsideMainland: true}
	want(t, a.apply("shanghai", put(promoted)), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "own addresses")
}
