package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// waitNoLeader waits until node i knows no leader (its election timeout
// ran out after the leader went away).
func waitNoLeader(t *testing.T, c *testnet.Cluster, i int) {
	t.Helper()
	ctx := testCtx(t)
	for c.Node(i).Raft().Leader() != "" {
		select {
		case <-ctx.Done():
			t.Fatalf("%s still follows %s", c.Config(i).City, c.Node(i).Raft().Leader())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkQuorumLost asserts err is the fast, clear refusal of a node that
// cannot elect a leader, marked so that clients do not retry it.
func checkQuorumLost(t *testing.T, what string, err error, took time.Duration) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "no leader: 2 of 3 voters unreachable") {
		t.Fatalf("%s without quorum: %v, want Unavailable \"no leader: 2 of 3 voters unreachable\"", what, err)
	}
	// Stopped voters refuse the probe at once; the client's deadline is
	// 10 s, which is what this took before.
	if took > 3*time.Second {
		t.Fatalf("%s without quorum took %v, want well under the 10 s deadline", what, took)
	}
	var marked bool
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()[node.MetaQuorum] == node.MetaQuorumLost {
			marked = true
		}
	}
	if !marked {
		t.Fatalf("%s without quorum: status details %v lack %s=%s", what, st.Details(), node.MetaQuorum, node.MetaQuorumLost)
	}
}

func TestQuorumLossFailsFastAndShowsInStatus(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	leader, follower := leaderAndFollower(t, c)
	publisher := publisherClient(t, c, follower) // its key is made while writes still work
	c.Stop(leader)
	c.Stop(3 - leader - follower)
	waitNoLeader(t, c, follower)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := publisher.PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, follower, 1)})
	checkQuorumLost(t, "write", err, time.Since(start))

	start = time.Now()
	_, err = catalogClient(c, follower).GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: dsAt(c, follower, 1).GetId()})
	checkQuorumLost(t, "linearizable read", err, time.Since(start))

	st, err := yrdv1grpc.NewClusterServiceClient(c.Conn(follower)).Status(ctx, &yrdv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLeaderPeerId() != "" || !strings.Contains(st.GetNoLeader(), "no leader: 2 of 3 voters unreachable") {
		t.Fatalf("status without quorum: leader %q, no_leader %q; want the unreachable voters", st.GetLeaderPeerId(), st.GetNoLeader())
	}
}

// TestFailedHopIsNamed: a follower cut off from the leader is healthy; a
// call it forwards says the hop to the leader failed, not the node.
func TestFailedHopIsNamed(t *testing.T) {
	c, leader, follower := startPatientCluster(t)
	publisher := publisherClient(t, c, follower)
	leaderID := c.Node(leader).PeerID().String()
	c.Partition([]int{follower}, []int{leader, 3 - leader - follower})
	// The patient follower still knows the leader.
	want := "forwarding from " + c.Config(follower).City + " to the leader " + c.Config(leader).City + " (peer " + leaderID + ") failed"
	_, err := publisher.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, follower, 1)})
	checkHop(t, "write", err, want)
	_, err = yrdv1grpc.NewClusterServiceClient(c.Conn(follower)).TransferLeadership(testCtx(t), &yrdv1.TransferLeadershipRequest{})
	checkHop(t, "leadership transfer", err, want)
}

// checkHop asserts err names the failed hop and carries the mark that
// keeps a client from blaming the node it asked.
func checkHop(t *testing.T, what string, err error, want string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), want) {
		t.Fatalf("%s through a partitioned follower: %v, want Unavailable %q", what, err, want)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == node.ReasonNotApplied {
			return
		}
	}
	t.Fatalf("%s through a partitioned follower: details %v, want reason %s", what, st.Details(), node.ReasonNotApplied)
}

// memberReachable is what node i's cluster status says of the member of
// city.
func memberReachable(t *testing.T, c *testnet.Cluster, i int, city string) (bool, string) {
	t.Helper()
	st, err := yrdv1grpc.NewClusterServiceClient(c.Conn(i)).Status(testCtx(t), &yrdv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.GetMembers() {
		if m.GetMember().GetCity() == city {
			return m.GetReachable(), m.GetError()
		}
	}
	t.Fatalf("status of %s lists no %s", c.Config(i).City, city)
	return false, ""
}

// TestRestartedMemberIsReachableAtOnce: once a restarted member is back
// (ready: it follows the leader), another member's status shows it
// reachable on the next call, not after the dial backoffs run out.
func TestRestartedMemberIsReachableAtOnce(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	leader, follower := leaderAndFollower(t, c)
	other := 3 - leader - follower
	city := c.Config(other).City
	if err := c.Stop(other); err != nil {
		t.Fatal(err)
	}
	// The follower finds it gone, and keeps finding it gone: its probes
	// and their retries back off.
	for range 3 {
		waitFor(t, "the follower to see "+city+" unreachable", func() bool {
			ok, _ := memberReachable(t, c, follower, city)
			return !ok
		})
	}
	if err := c.Restart(testCtx(t), other); err != nil {
		t.Fatal(err)
	}
	if ok, why := memberReachable(t, c, follower, city); !ok {
		t.Fatalf("%s is back and follows the leader, but %s's status says unreachable: %s", city, c.Config(follower).City, why)
	}
}

// startPatientCluster starts a 3-city cluster whose followers wait 30 s
// without hearing from the leader before they stand for election, and
// returns the leader and one such follower: cut off, that follower still
// knows its leader however slow the machine, which is what the tests of a
// failed hop to the leader need. The first city, which bootstraps the
// cluster, keeps the fast timeouts so that the cluster forms at once.
func startPatientCluster(t *testing.T) (c *testnet.Cluster, leader, follower int) {
	t.Helper()
	c = startCluster(t, testnet.Options{Configure: func(i int, cfg *node.Config) {
		if i > 0 {
			cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = 30*time.Second, 30*time.Second
		}
	}})
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < c.Len(); i++ {
		if i != leader {
			return c, leader, i
		}
	}
	panic("unreachable: a 3-city cluster has two cities after the first")
}
