package console

import (
	"net/url"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestGrantRows: an approved grant past its expiry reads "expired" and
// offers no revocation; the forms are drawn for a CDO of the owning
// organisation in the owning city only; an approval's dates run from
// tomorrow to the last midnight within the requested duration.
func TestGrantRows(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ds := &yrdv1.Dataset{Id: "shanghai.x", Title: "X", OwnerCity: "shanghai", OwnerOrg: "sh-a"}
	g := &yrdv1.Grant{Id: "g", DatasetId: ds.Id, State: yrdv1.GrantState_GRANT_STATE_APPROVED, Duration: durationpb.New(30 * 24 * time.Hour),
		ExpiresAt: timestamppb.New(now.Add(-time.Minute)), ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS}
	owner := &yrdv1.Principal{City: "shanghai", Org: "sh-a", Role: yrdv1.Role_ROLE_CDO}
	row := buildGrantRow(g, ds, owner, "en", now)
	if row.State != "expired" || row.Active || !row.Mine || row.Form != "grants.form_rows" || row.Duration != "30 days" {
		t.Fatalf("expired grant: %+v", row)
	}
	if row.MinExpiry != "2026-11-23" || row.MaxExpiry != "2026-12-22" {
		t.Fatalf("approval dates %s to %s", row.MinExpiry, row.MaxExpiry)
	}
	g.ExpiresAt = timestamppb.New(now.Add(time.Hour))
	if row := buildGrantRow(g, ds, owner, "zh", now); row.State != "approved" || !row.Active || row.Duration != "30 天" {
		t.Fatalf("active grant: %+v", row)
	}
	for _, who := range []*yrdv1.Principal{
		{City: "hangzhou", Org: "sh-a", Role: yrdv1.Role_ROLE_CDO},
		{City: "shanghai", Org: "sh-b", Role: yrdv1.Role_ROLE_CDO},
		{City: "shanghai", Org: "sh-a", Role: yrdv1.Role_ROLE_ANALYST},
	} {
		if buildGrantRow(g, ds, who, "en", now).Mine {
			t.Fatalf("%v is offered the owner's forms", who)
		}
	}
	if buildGrantRow(g, nil, owner, "en", now).Mine {
		t.Fatal("a grant on a dataset the page could not read is offered forms")
	}
}

func TestGrantQuery(t *testing.T) {
	analyst := &yrdv1.Principal{Org: "hz-planning", Role: yrdv1.Role_ROLE_ANALYST}
	_, req, _ := grantQuery(url.Values{}, analyst)
	if req.GetRequesterOrg() != "hz-planning" {
		t.Fatalf("an analyst's default filter: %v", req)
	}
	_, req, _ = grantQuery(url.Values{"org": {""}, "state": {"approved"}}, analyst)
	if req.GetRequesterOrg() != "" || req.GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED {
		t.Fatalf("an analyst's cleared filter: %v", req)
	}
	for _, bad := range []string{"unspecified", "expired", "x"} {
		if _, _, err := grantQuery(url.Values{"state": {bad}}, analyst); err == nil {
			t.Fatalf("state %q accepted", bad)
		}
	}
	cdo := &yrdv1.Principal{City: "shanghai", Org: "sh-civil-affairs", Role: yrdv1.Role_ROLE_CDO}
	if _, req, _ := grantQuery(url.Values{}, cdo); req.GetOwnerCity() != "shanghai" || req.GetOwnerOrg() != "sh-civil-affairs" {
		t.Fatalf("a CDO's default filter: %v", req)
	}
	if _, req, _ := grantQuery(url.Values{"owner": {"any"}}, cdo); req.GetOwnerOrg() != "" {
		t.Fatalf("a CDO asking for all data: %v", req)
	}
	if _, req, _ := grantQuery(url.Values{}, analyst); req.GetOwnerOrg() != "" {
		t.Fatalf("an analyst's default owner filter: %v", req)
	}
	if _, _, err := grantQuery(url.Values{"owner": {"theirs"}}, cdo); err == nil || err.Error() != "grants.err_owner" {
		t.Fatalf("owner=theirs: %v", err)
	}
}
