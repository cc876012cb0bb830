package node_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// TestBadInputGetsClearStatusAndWritesNothing: each malformed call gets
// its status code naming the field, and the catalog is unchanged. Long
// because its table of cases is inline, one entry per bad input.
func TestBadInputGetsClearStatusAndWritesNothing(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	leader, follower := leaderAndFollower(t, c)
	cl := publisherClient(t, c, follower)
	existing := publish(t, cl, dsAt(c, follower, 1))

	mutate := func(f func(d *yrdv1.Dataset)) *yrdv1.Dataset {
		d := dsAt(c, follower, 2)
		f(d)
		return d
	}
	cases := []struct {
		name      string
		call      func() error
		code      codes.Code
		fieldHint string
	}{
		{"empty id", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: mutate(func(d *yrdv1.Dataset) { d.Id = "" })})
			return err
		}, codes.InvalidArgument, "id"},
		{"malformed id", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: mutate(func(d *yrdv1.Dataset) { d.Id = "Shanghai Data!" })})
			return err
		}, codes.InvalidArgument, "id"},
		{"unknown level", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: mutate(func(d *yrdv1.Dataset) { d.Level = 9 })})
			return err
		}, codes.InvalidArgument, "level"},
		{"oversized title", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: mutate(func(d *yrdv1.Dataset) { d.Title = strings.Repeat("数", 201) })})
			return err
		}, codes.InvalidArgument, "title"},
		{"unknown column type", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: mutate(func(d *yrdv1.Dataset) { d.Schema.Columns[1].Type = "VARCHARX" })})
			return err
		}, codes.InvalidArgument, "schema.columns[1].type"},
		{"missing dataset", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{})
			return err
		}, codes.InvalidArgument, "dataset"},
		{"duplicate id", func() error {
			_, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, follower, 1)})
			return err
		}, codes.AlreadyExists, "id"},
		{"stale version", func() error {
			d := proto.Clone(existing).(*yrdv1.Dataset)
			d.Title = "changed"
			_, err := cl.UpdateDataset(testCtx(t), &yrdv1.UpdateDatasetRequest{Dataset: d, ExpectedVersion: existing.GetVersion() + 1})
			return err
		}, codes.FailedPrecondition, "expected_version"},
		{"update of unknown dataset", func() error {
			_, err := cl.UpdateDataset(testCtx(t), &yrdv1.UpdateDatasetRequest{Dataset: dsAt(c, follower, 3), ExpectedVersion: 1})
			return err
		}, codes.NotFound, "id"},
		{"get malformed id", func() error {
			_, err := cl.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: "../etc"})
			return err
		}, codes.InvalidArgument, "id"},
		{"get unknown id", func() error {
			_, err := cl.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: "nanjing.nothing.here"})
			return err
		}, codes.NotFound, "nanjing.nothing.here"},
		{"list unknown level", func() error {
			_, err := cl.ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{Level: 7})
			return err
		}, codes.InvalidArgument, "level"},
		{"list page size too large", func() error {
			_, err := cl.ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{PageSize: 5000})
			return err
		}, codes.InvalidArgument, "page_size"},
		{"list bad page token", func() error {
			_, err := cl.ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{PageToken: "!!not-a-token"})
			return err
		}, codes.InvalidArgument, "page_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("got %v, want code %v", err, tc.code)
			}
			if !strings.Contains(st.Message(), tc.fieldHint) {
				t.Fatalf("message %q does not name %q", st.Message(), tc.fieldHint)
			}
		})
	}
	// Nothing was written: the catalog holds exactly the one dataset, unchanged.
	for i := 0; i < c.Len(); i++ {
		resp, err := catalogClient(c, i).ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetDatasets()) != 1 || !proto.Equal(resp.GetDatasets()[0], existing) {
			t.Fatalf("%s: catalog changed by bad input: %v", c.Config(i).City, resp.GetDatasets())
		}
	}
	_ = leader
}

func TestUpdateAndRetireBumpVersion(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	cl := publisherClient(t, c, 0)
	d := publish(t, cl, dsAt(c, 0, 1))
	d.Title = "更新 updated"
	up, err := cl.UpdateDataset(testCtx(t), &yrdv1.UpdateDatasetRequest{Dataset: d, ExpectedVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetDataset().GetVersion() != 2 || up.GetDataset().GetTitle() != d.GetTitle() || !proto.Equal(up.GetDataset().GetCreatedAt(), d.GetCreatedAt()) {
		t.Fatalf("update gave %v", up.GetDataset())
	}
	ret, err := cl.RetireDataset(testCtx(t), &yrdv1.RetireDatasetRequest{Id: d.GetId(), ExpectedVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !ret.GetDataset().GetRetired() || ret.GetDataset().GetVersion() != 3 {
		t.Fatalf("retire gave %v", ret.GetDataset())
	}
	list, err := cl.ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetDatasets()) != 0 {
		t.Fatalf("retired dataset still listed by default: %v", list.GetDatasets())
	}
	list, err = cl.ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{IncludeRetired: true})
	if err != nil || len(list.GetDatasets()) != 1 {
		t.Fatalf("include_retired listed %v, %v", list.GetDatasets(), err)
	}
	if _, err := cl.UpdateDataset(testCtx(t), &yrdv1.UpdateDatasetRequest{Dataset: d, ExpectedVersion: 3}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("update of a retired dataset: %v, want FailedPrecondition", err)
	}
	mustGetEverywhere(t, c, d.GetId(), 3)
}
