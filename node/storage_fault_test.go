package node_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store/wal/waltest"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// waitHealth waits until node i's gRPC health is want.
func waitHealth(t *testing.T, c *testnet.Cluster, i int, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	ctx := testCtx(t)
	for {
		resp, err := healthpb.NewHealthClient(c.Conn(i)).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s health never became %v (last: %v, %v)", c.Config(i).City, want, resp.GetStatus(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// selfError is what node i's status says of member id.
func memberError(t *testing.T, c *testnet.Cluster, i int, id string) string {
	t.Helper()
	st, err := yrdv1grpc.NewClusterServiceClient(c.Conn(i)).Status(testCtx(t), &yrdv1.StatusRequest{})
	if err != nil {
		t.Fatalf("status from %s: %v", c.Config(i).City, err)
	}
	for _, m := range st.GetMembers() {
		if m.GetMember().GetPeerId() == id {
			return m.GetError()
		}
	}
	t.Fatalf("status from %s lists no member %s", c.Config(i).City, id)
	return ""
}

// The leader's raft log fails its fdatasync. It must not acknowledge the
// write that hit it, must stop (health NOT_SERVING, writes UNAVAILABLE,
// the reason in status) rather than limp on, and must never sync that
// file again; the other two elect a leader and take writes; restarted on a
// healthy disk it rejoins and catches up with everything acknowledged.
func TestLeaderWhoseRaftLogSyncFailsStopsAndRecoversOnRestart(t *testing.T) {
	faults := make([]*waltest.FaultFS, 3)
	c := startCluster(t, testnet.Options{Configure: func(i int, cfg *node.Config) {
		faults[i] = waltest.New()
		cfg.WALFS = faults[i]
	}})
	bad, _ := leaderAndFollower(t, c)
	badID := c.Node(bad).PeerID().String()
	before := publishAt(t, c, bad, 0)

	faults[bad].FailSyncs(syscall.EIO)
	_, err := publisherClient(t, c, bad).PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, bad, 1)})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "storage failed") ||
		!strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("write through the leader whose log cannot sync = %v; want UNAVAILABLE naming the storage failure", err)
	}
	select {
	case <-faults[bad].Injected():
	default:
		t.Fatal("the write failed but no fault was injected")
	}
	waitHealth(t, c, bad, healthpb.HealthCheckResponse_NOT_SERVING)
	if e := memberError(t, c, bad, badID); !strings.Contains(e, "storage failed") || !strings.Contains(e, "restart") {
		t.Fatalf("the failed node's own status says %q; want the storage failure and what to do", e)
	}

	// The other two carry on.
	healthy := (bad + 1) % 3
	after := publishAt(t, c, healthy, 2)
	if e := memberError(t, c, healthy, badID); !strings.Contains(e, "storage failed") {
		t.Errorf("a healthy node's status says %q of the failed member; want its storage failure", e)
	}
	// Still failed after membership rounds that would set SERVING.
	waitHealth(t, c, bad, healthpb.HealthCheckResponse_NOT_SERVING)
	// Raft stops beside the failure (it cannot stop from inside its own
	// goroutines); it must get there, and stay out of elections.
	for deadline := time.Now().Add(10 * time.Second); c.Node(bad).Raft().State() != "Shutdown"; {
		if time.Now().After(deadline) {
			t.Fatalf("failed node's raft is still %s after 10s; want Shutdown (no campaigning)", c.Node(bad).Raft().State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if again := faults[bad].SyncsAfterFailure(); len(again) > 0 {
		t.Fatalf("the raft log synced a file again after its fdatasync failed: %v", again)
	}

	// Restart on a healthy disk: it rejoins and catches up.
	faults[bad].Heal()
	if err := c.Stop(bad); err != nil {
		t.Logf("stopping the failed node: %v", err)
	}
	if err := c.Restart(testCtx(t), bad); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, c, bad, healthpb.HealthCheckResponse_SERVING)
	mustGetEverywhere(t, c, before.GetId(), 1)
	mustGetEverywhere(t, c, after.GetId(), 1)
	if err := c.Node(bad).Raft().StorageErr(); err != nil {
		t.Fatalf("restarted node still failed: %v", err)
	}
}
