package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestGrantApproveExpiry: `grant approve --expires DATE` sets the grant's
// expiry to midnight UTC of that date; `--for` later than the requested
// duration is the node's refusal naming expires_at; both flags at once, or
// either on a rejection, are usage errors.
func TestGrantApproveExpiry(t *testing.T) {
	c := startCluster(t)
	var d *yrdv1.Dataset
	for _, s := range sample.Datasets() {
		if s.GetOwnerCity() == "shanghai" && len(s.GetPermittedPurposes()) > 0 {
			d = s
			break
		}
	}
	conn, err := c.ConnAs(0, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
		t.Fatal(err)
	}
	analyst := envAs(t, c, 1, "hz-planning", yrdv1.Role_ROLE_ANALYST)
	r := run(t, analyst, "grant", "request", d.GetId(), "--purpose", d.GetPermittedPurposes()[0], "--duration", "720h")
	var id string
	if f := strings.Fields(r.stdout); len(f) > 1 && f[0] == "id:" {
		id = f[1]
	}
	if r.code != 0 || !strings.HasPrefix(id, "grant-") {
		t.Fatalf("grant request: %+v", r)
	}
	cdo := envAs(t, c, 0, d.GetOwnerOrg(), yrdv1.Role_ROLE_CDO)
	if r := run(t, cdo, "grant", "approve", id, "--for", "31d"); r.code != 1 || !strings.Contains(r.stderr, "expires_at") {
		t.Fatalf("approve --for longer than requested: %+v", r)
	}
	for _, args := range [][]string{{"approve", id, "--for", "3d", "--expires", "2030-01-01"}, {"approve", id, "--for", "soon"},
		{"approve", id, "--expires", "31/12/2030"}, {"reject", id, "--for", "3d"}} {
		if r := run(t, cdo, append([]string{"grant"}, args...)...); r.code != 2 {
			t.Fatalf("grant %q: %+v", args, r)
		}
	}
	date := time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly)
	r = run(t, cdo, "grant", "approve", id, "--expires", date, "--note", "ten days")
	if r.code != 0 || !strings.Contains(r.stdout, "expires:   "+date+" 00:00Z") || !strings.Contains(r.stdout, "approved") {
		t.Fatalf("approve --expires %s: %+v", date, r)
	}
}
