package node_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// TestOwnerFieldErrorsBeforeOwnership: a dataset without owner_org, or
// with a misspelt owner_city, is a mistake in the file: the publisher
// hears which field, not "permission denied".
func TestOwnerFieldErrorsBeforeOwnership(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	pub := publisherClient(t, c, 0)
	city := c.Config(0).City
	for _, tc := range []struct {
		name  string
		edit  func(*yrdv1.Dataset)
		field string
	}{
		{"missing owner_org", func(d *yrdv1.Dataset) { d.OwnerOrg = "" }, "owner_org: required"},
		{"misspelt owner_city", func(d *yrdv1.Dataset) { d.OwnerCity = city + "x" }, "owner_city: unknown city"},
	} {
		d := dsAt(c, 0, 1)
		tc.edit(d)
		_, err := pub.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d})
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument %q", tc.name, err, tc.field)
		}
	}
	// Another organisation's well-formed dataset is still refused as such.
	d := dsAt(c, 0, 2)
	d.OwnerOrg = "someone-else"
	_, err := pub.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("other org's dataset: %v, want PermissionDenied", err)
	}
}

// TestRestartedNodeResumesAnchoring: after a restart the anchor loop
// starts from the node's latest anchor in the catalog; from 0 it proposed
// the unchanged head every interval, each refused as "does not advance".
func TestRestartedNodeResumesAnchoring(t *testing.T) {
	logs := &syncBuffer{}
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai"},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	connAs(t, c, 0, "sh-analytics", yrdv1.Role_ROLE_ANALYST) // its key's creation is audited
	id := c.Node(0).PeerID().String()
	waitFor(t, "a first anchor", func() bool {
		a, err := c.Node(0).Catalog().LatestAnchor(id)
		return err == nil && a.GetSeq() > 0
	})
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	before := len(logs.String())
	if err := c.Restart(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	// A tick that finds the head anchored is the event that shows the
	// loop knew where it stood; a refused proposal comes before it if not.
	waitFor(t, "the anchor loop to find its head anchored", func() bool {
		since := logs.String()[before:]
		if strings.Contains(since, "does not advance") {
			t.Fatalf("after a restart: %s", since)
		}
		return strings.Contains(since, "head already anchored")
	})
}

// waitFor polls cond until it holds, failing the test if it does not
// within the test context's time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestOperatorIssuesCredentialsOnlyForItsCity: an organisation that
// publishes in hangzhou is hangzhou's; shanghai's operator may not vouch
// for it, with a key or a certificate, and the refusal is on record.
func TestOperatorIssuesCredentialsOnlyForItsCity(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	sh, hz := c.Index("shanghai"), c.Index("hangzhou")
	publishAt(t, c, hz, 1)
	publishAt(t, c, sh, 1)
	admin := yrdv1grpc.NewAuthServiceClient(c.Conn(sh))
	ctx := testCtx(t)
	_, err := admin.CreateAPIKey(ctx, &yrdv1.CreateAPIKeyRequest{Org: orgOf("hangzhou"), Role: yrdv1.Role_ROLE_PUBLISHER, Name: "mallory"})
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "is an organisation of hangzhou") {
		t.Fatalf("shanghai key for a hangzhou organisation: %v, want PermissionDenied naming hangzhou", err)
	}
	_, err = admin.IssueCertificate(ctx, &yrdv1.IssueCertificateRequest{Org: orgOf("hangzhou"), Role: yrdv1.Role_ROLE_PUBLISHER, Name: "mallory"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("shanghai certificate for a hangzhou organisation: %v, want PermissionDenied", err)
	}
	if recs := withRule(t, c, sh, node.RuleCredentialOtherCity); len(recs) != 2 {
		t.Fatalf("%d %s records, want 2: %v", len(recs), node.RuleCredentialOtherCity, recs)
	}
	// Its own organisations, and ones the catalog does not know yet, are
	// shanghai's to name.
	for _, org := range []string{orgOf("shanghai"), "sh-new-bureau"} {
		if _, err := admin.CreateAPIKey(ctx, &yrdv1.CreateAPIKeyRequest{Org: org, Role: yrdv1.Role_ROLE_ANALYST, Name: "ann"}); err != nil {
			t.Fatalf("key for %s: %v", org, err)
		}
	}
}
