package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

func startCluster(t testing.TB, opts testnet.Options) *testnet.Cluster {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testnet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// catalogClient reads the catalog at node i as its operator.
func catalogClient(c *testnet.Cluster, i int) yrdv1grpc.CatalogServiceClient {
	return yrdv1grpc.NewCatalogServiceClient(c.Conn(i))
}

// orgOf is the organisation that publishes test datasets in a city.
func orgOf(city string) string { return city + "-data" }

var dsTemplate = sample.Datasets()[0]

// dsAt is a valid dataset with a unique id, owned by node's city.
func dsAt(c *testnet.Cluster, node, i int) *yrdv1.Dataset {
	city := c.Config(node).City
	// One clone of a template, not the whole sample catalog per call: the
	// write benchmarks call this per write, in the nodes' own process.
	d := proto.Clone(dsTemplate).(*yrdv1.Dataset)
	d.Id = fmt.Sprintf("%s.test.dataset-%05d", city, i)
	d.OwnerCity, d.OwnerOrg = city, orgOf(city)
	d.Title = fmt.Sprintf("test dataset %d", i)
	return d
}

// publisherClient is a publisher of orgOf(node's city) at node.
func publisherClient(t testing.TB, c *testnet.Cluster, node int) yrdv1grpc.CatalogServiceClient {
	t.Helper()
	conn, err := c.ConnAs(node, orgOf(c.Config(node).City), yrdv1.Role_ROLE_PUBLISHER)
	if err != nil {
		t.Fatal(err)
	}
	return yrdv1grpc.NewCatalogServiceClient(conn)
}

// publishAt publishes dsAt(c, node, i) through node, as its publisher.
func publishAt(t testing.TB, c *testnet.Cluster, node, i int) *yrdv1.Dataset {
	t.Helper()
	return publish(t, publisherClient(t, c, node), dsAt(c, node, i))
}

func leaderAndFollower(t testing.TB, c *testnet.Cluster) (leader, follower int) {
	t.Helper()
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return leader, (leader + 1) % c.Len()
}

func publish(t testing.TB, cl yrdv1grpc.CatalogServiceClient, d *yrdv1.Dataset) *yrdv1.Dataset {
	t.Helper()
	resp, err := cl.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d})
	if err != nil {
		t.Fatalf("publish %s: %v", d.GetId(), err)
	}
	return resp.GetDataset()
}

// mustGetEverywhere reads id linearizably from every running node.
func mustGetEverywhere(t testing.TB, c *testnet.Cluster, id string, wantVersion uint64) {
	t.Helper()
	for i := 0; i < c.Len(); i++ {
		if c.Node(i) == nil {
			continue
		}
		resp, err := catalogClient(c, i).GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: id})
		if err != nil {
			t.Fatalf("get %s on %s: %v", id, c.Config(i).City, err)
		}
		if resp.GetDataset().GetVersion() != wantVersion {
			t.Fatalf("get %s on %s: version %d, want %d", id, c.Config(i).City, resp.GetDataset().GetVersion(), wantVersion)
		}
	}
}

func TestPublishOnFollowerReadEverywhereAndSurviveLeaderLoss(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	leader, follower := leaderAndFollower(t, c)

	got := publishAt(t, c, follower, 1)
	if got.GetVersion() != 1 || got.GetCreatedAt() == nil {
		t.Fatalf("published dataset has version %d created %v; want version 1 and a creation time", got.GetVersion(), got.GetCreatedAt())
	}
	mustGetEverywhere(t, c, got.GetId(), 1)

	// Every acknowledged write survives the leader's loss.
	var acked []string
	for i := 2; i <= 20; i++ {
		acked = append(acked, publishAt(t, c, i%c.Len(), i).GetId())
	}
	oldLeaderCity := c.Config(leader).City
	if err := c.Stop(leader); err != nil {
		t.Fatal(err)
	}
	newLeader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if newLeader == leader {
		t.Fatalf("the stopped node %s is still reported as leader", oldLeaderCity)
	}
	for _, id := range acked {
		mustGetEverywhere(t, c, id, 1)
	}
	// Writes go on with two of three voters.
	d21 := publishAt(t, c, newLeader, 21)

	// The old leader comes back and catches up.
	if err := c.Restart(testCtx(t), leader); err != nil {
		t.Fatal(err)
	}
	resp, err := catalogClient(c, leader).GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: d21.GetId()})
	if err != nil {
		t.Fatalf("restarted %s did not catch up: %v", oldLeaderCity, err)
	}
	if resp.GetDataset().GetTitle() != d21.GetTitle() {
		t.Fatalf("restarted node serves %q", resp.GetDataset().GetTitle())
	}
}

func TestStaleReadServesLocalReplica(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	_, follower := leaderAndFollower(t, c)
	d := publishAt(t, c, follower, 1)
	// The follower acknowledged after the leader applied; its own replica
	// applies moments later, so a stale read eventually sees it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := catalogClient(c, follower).GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{
			Id: d.GetId(), Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_STALE})
		if err == nil {
			if !proto.Equal(resp.GetDataset(), d) {
				t.Fatalf("stale read returned %v, want %v", resp.GetDataset(), d)
			}
			return
		}
		if status.Code(err) != codes.NotFound || time.Now().After(deadline) {
			t.Fatalf("stale read: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFullRestartKeepsCatalogAndElectsLeader(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, testnet.Options{DataDir: dir})
	for i := 0; i < 30; i++ {
		publishAt(t, c, i%3, i)
	}
	members := c.AnyNode().Catalog().Members()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Same data dirs, no join tokens: nothing but the data dir is needed.
	for i := 0; i < c.Len(); i++ {
		if err := c.StartNode(testCtx(t), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitReady(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leader(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		mustGetEverywhere(t, c, dsAt(c, i%3, i).GetId(), 1)
	}
	resp, err := catalogClient(c, 0).ListDatasets(testCtx(t), &yrdv1.ListDatasetsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetDatasets()) != 30 {
		t.Fatalf("after restart the catalog lists %d datasets, want 30", len(resp.GetDatasets()))
	}
	if got := c.AnyNode().Catalog().Members(); len(got) != len(members) {
		t.Fatalf("after restart the registry has %d members, want %d", len(got), len(members))
	}
}

func TestLaggingFollowerCatchesUpByInstallSnapshot(t *testing.T) {
	raftCfg := testnet.FastRaft()
	raftCfg.SnapshotThreshold = 50
	raftCfg.TrailingLogs = 10
	raftCfg.SnapshotInterval = 50 * time.Millisecond
	c := startCluster(t, testnet.Options{Raft: raftCfg})
	leader, follower := leaderAndFollower(t, c)
	if err := c.Stop(follower); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		publishAt(t, c, leader, i)
	}
	// Make sure the log the follower would need is gone from the leader.
	if err := c.Node(leader).Raft().Snapshot(); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(c.Config(follower).DataDir, "raft", "snapshots")
	before, _ := os.ReadDir(snapDir)
	if err := c.Restart(testCtx(t), follower); err != nil {
		t.Fatal(err)
	}
	mustGetEverywhere(t, c, dsAt(c, leader, 299).GetId(), 1)
	if n := c.Node(follower).Catalog().DatasetCount(); n != 300 {
		t.Fatalf("follower holds %d datasets after catching up, want 300", n)
	}
	after, _ := os.ReadDir(snapDir)
	if len(after) <= len(before) {
		t.Fatalf("follower caught up without installing a snapshot (snapshots before %d, after %d)", len(before), len(after))
	}
}

func TestPartitionedLeaderLosesLeadershipAndCatchesUpAfterHeal(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	leader, _ := leaderAndFollower(t, c)
	others := []int{(leader + 1) % 3, (leader + 2) % 3}
	publishAt(t, c, leader, 1)

	c.Partition([]int{leader}, others)
	// The majority elects a new leader and keeps accepting writes.
	var newLeader int
	deadline := time.Now().Add(30 * time.Second) // an election takes 1–3 s with FastRaft
	for {
		i := others[0]
		if c.Node(others[1]).Raft().IsLeader() {
			i = others[1]
		}
		if c.Node(i).Raft().IsLeader() {
			newLeader = i
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the majority side elected no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d2 := publishAt(t, c, others[0], 2)
	// The isolated old leader cannot commit: its write fails within the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := publisherClient(t, c, leader).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, leader, 3)})
	cancel()
	if err == nil {
		t.Fatal("an isolated node acknowledged a write")
	}
	// Its lease (1 s with FastRaft) runs out without quorum contact; then
	// it steps down.
	for stepDown := time.Now().Add(30 * time.Second); c.Node(leader).Raft().IsLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(stepDown) {
			t.Fatal("the isolated old leader still believes it leads 30 s after its lease expired")
		}
	}

	c.Heal()
	if err := c.Node(leader).Raft().WaitApplied(testCtx(t), c.Node(newLeader).Catalog().AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	mustGetEverywhere(t, c, d2.GetId(), 1)
	if _, ok := c.Node(leader).Catalog().GetDataset(dsAt(c, leader, 3).GetId()); ok {
		t.Fatal("the write refused during the partition appeared after healing")
	}
}
