package node_test

import (
	"context"
	"log/slog"
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

// probeLine is what a leaderless node logs after a round of asking the
// other members whether it is still one, and none said no.
const probeLine = "asked the other members whether this node is still one"

// removedRefusal is node i's refusal of an API call, if it refuses it
// because it was removed; nil if it refuses it for another reason or not
// at all.
func removedRefusal(ctx context.Context, c *testnet.Cluster, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := catalogClient(c, i).ListDatasets(ctx, &yrdv1.ListDatasetsRequest{Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_STALE})
	if status.Code(err) == codes.FailedPrecondition && strings.Contains(err.Error(), "was removed") {
		return err
	}
	return nil
}

// waitLogged waits until logs, from offset on, has a line containing every
// one of parts, and returns it.
func waitLogged(ctx context.Context, t *testing.T, logs *syncBuffer, offset int, parts ...string) string {
	t.Helper()
	for {
		for _, line := range strings.Split(logs.String()[offset:], "\n") {
			if containsAll(line, parts) {
				return line
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no log line with %q:\n%s", parts, logs.String()[offset:])
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestMemberRemovedWhileDownLearnsItOnRestart stops a voter, removes it
// through the leader and starts it again on its data dir: its raft still
// lists it and the others' fabric refuses it, yet it finds out (asking the
// members) and ends as a node removed while running does: WARN in the log,
// health NOT_SERVING, raft stopped, every API call refused as removed.
func TestMemberRemovedWhileDownLearnsItOnRestart(t *testing.T) {
	var logs syncBuffer
	c := startCluster(t, testnet.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gone := (leader + 1) % 3
	if err := c.Stop(gone); err != nil {
		t.Fatal(err)
	}
	admin := yrdv1grpc.NewClusterServiceClient(c.Conn(leader))
	if _, err := admin.Remove(ctx, &yrdv1.RemoveRequest{City: c.Config(gone).City}); err != nil {
		t.Fatal(err)
	}
	offset := len(logs.String())
	if err := c.StartNode(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for removedRefusal(ctx, c, gone) == nil {
		select {
		case <-ctx.Done():
			t.Fatalf("the restarted node never said it was removed:\n%s", logs.String()[offset:])
		case <-time.After(20 * time.Millisecond):
		}
	}
	resp, err := healthpb.NewHealthClient(c.Conn(gone)).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("the removed node's health: %v %v, want NOT_SERVING", resp.GetStatus(), err)
	}
	waitLogged(ctx, t, &logs, offset, "level=WARN", "this node was removed from the cluster", "city="+c.Config(gone).City,
		"no longer lists it")
	if state := c.Node(gone).Raft().State(); state != "Shutdown" {
		t.Fatalf("the removed node's raft is %s, want Shutdown", state)
	}
}

// TestUnreachableMembersDoNotMakeANodeRemoved stops every node and starts
// one again alone: it asks the others, reaches none, and stays a member
// that waits for its peers.
func TestUnreachableMembersDoNotMakeANodeRemoved(t *testing.T) {
	var logs syncBuffer
	c := startCluster(t, testnet.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range c.Len() {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	offset := len(logs.String())
	if err := c.StartNode(ctx, 0); err != nil {
		t.Fatal(err)
	}
	waitLogged(ctx, t, &logs, offset, probeLine, "city="+c.Config(0).City, "still_member=0", "no_answer=2")
	assertNotRemoved(ctx, t, c, 0, &logs, offset)
}

// TestPartitionedMemberIsNotRemoved cuts a follower off the fabric, where
// the others now refuse it as they refuse a removed node: it asks them
// over their API, they say it is a member, and it stays one.
func TestPartitionedMemberIsNotRemoved(t *testing.T) {
	var logs syncBuffer
	c := startCluster(t, testnet.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cut := (leader + 1) % 3
	offset := len(logs.String())
	c.Partition([]int{leader, (leader + 2) % 3})
	waitLogged(ctx, t, &logs, offset, probeLine, "city="+c.Config(cut).City, "still_member=2")
	assertNotRemoved(ctx, t, c, cut, &logs, offset)
}

// assertNotRemoved checks that node i did not conclude it was removed.
func assertNotRemoved(ctx context.Context, t *testing.T, c *testnet.Cluster, i int, logs *syncBuffer, offset int) {
	t.Helper()
	if err := removedRefusal(ctx, c, i); err != nil {
		t.Fatalf("a node that is still a member refuses calls as removed: %v", err)
	}
	if state := c.Node(i).Raft().State(); state == "Shutdown" {
		t.Fatal("a node that is still a member stopped its raft")
	}
	if strings.Contains(logs.String()[offset:], "this node was removed from the cluster") {
		t.Fatalf("a node that is still a member logged it was removed:\n%s", logs.String()[offset:])
	}
}
