package node_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// lines are the log lines at level, of every node writing to s (slog and,
// through the consensus package's adapter, raft's hclog).
func (s *syncBuffer) lines(level string) []string {
	var out []string
	for _, line := range strings.Split(s.String(), "\n") {
		if strings.Contains(line, "level="+level) {
			out = append(out, line)
		}
	}
	return out
}

// TestCleanStopLogsNoError runs a 3-node cluster, does some work and stops
// every node cleanly: no node logs an ERROR, before or during the stop.
func TestCleanStopLogsNoError(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := startCluster(t, testnet.Options{Logger: log})
	ctx := testCtx(t)
	for i := range 6 {
		at := i % 3
		if _, err := publisherClient(t, c, at).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, at, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if errs := logs.lines("ERROR"); len(errs) > 0 {
		t.Fatalf("a clean stop logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestRemovedMemberSaysSoAndStopsServing removes a voter from a running
// cluster: the removed node logs that it was removed, its health turns
// NOT_SERVING for good, it leaves raft and refuses every call but the
// health check with the reason, while the others go on serving.
func TestRemovedMemberSaysSoAndStopsServing(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := startCluster(t, testnet.Options{Logger: log})
	ctx := testCtx(t)
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gone, asker := (leader+1)%3, (leader+2)%3 // the removal is asked of a follower: it goes through the leader
	removed := c.Node(gone)
	admin := yrdv1grpc.NewClusterServiceClient(c.Conn(asker))
	if _, err := admin.Remove(ctx, &yrdv1.RemoveRequest{City: c.Config(gone).City}); err != nil {
		t.Fatal(err)
	}
	health := healthpb.NewHealthClient(c.Conn(gone))
	for {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("the removed node's health check: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING && removed.Raft().State() == "Shutdown" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the removed node still reports %s with raft %s:\n%s", resp.GetStatus(), removed.Raft().State(), strings.Join(logs.lines("WARN"), "\n"))
		case <-time.After(20 * time.Millisecond):
		}
	}
	_, err = catalogClient(c, gone).ListDatasets(ctx, &yrdv1.ListDatasetsRequest{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "was removed from the cluster") {
		t.Fatalf("a call on the removed node: %v, want FailedPrecondition saying it was removed", err)
	}
	city := "city=" + c.Config(gone).City
	if !slices.ContainsFunc(logs.lines("WARN"), func(l string) bool {
		return strings.Contains(l, "this node was removed from the cluster") && strings.Contains(l, city)
	}) {
		t.Fatalf("the removed node's log does not say it was removed:\n%s", strings.Join(logs.lines("WARN"), "\n"))
	}
	// The others go on: a write is acknowledged and read on both.
	d := publishAt(t, c, asker, 1)
	for _, i := range []int{leader, asker} {
		if _, err := catalogClient(c, i).GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: d.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	// Still NOT_SERVING once the membership loop has run again.
	if err := c.WaitVoters(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("the removed node's health later: %v %v", resp.GetStatus(), err)
	}
}
