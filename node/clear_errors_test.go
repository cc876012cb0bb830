package node_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
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
