package node_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet"
)

func TestHealthAndReflection(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	for i := 0; i < c.Len(); i++ {
		resp, err := healthpb.NewHealthClient(c.Conn(i)).Check(testCtx(t), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s health: %v %v", c.Config(i).City, resp, err)
		}
	}
	// What grpcurl does: list the services by reflection.
	stream, err := reflectionpb.NewServerReflectionClient(c.Conn(0)).ServerReflectionInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"yrd.v1.CatalogService", "yrd.v1.ClusterService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Fatalf("reflection lists %v, missing %s", names, want)
		}
	}
	if slices.Contains(names, "yrd.v1.PeerService") {
		t.Fatal("the client API exposes PeerService, which is for members on the fabric only")
	}
}

func TestDeadlinesAreHonoured(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	// Lose the quorum: a write can then never commit, so only the deadline ends it.
	leader, follower := leaderAndFollower(t, c)
	third := 3 - leader - follower
	c.Stop(leader)
	c.Stop(third)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := publisherClient(t, c, follower).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, follower, 1)})
	if code := status.Code(err); code != codes.DeadlineExceeded && code != codes.Unavailable {
		t.Fatalf("write without quorum: %v, want DeadlineExceeded or Unavailable", err)
	}
	// Honouring the deadline ends it at 500 ms; 5 s means it was ignored
	// (the node's own ForwardTimeout is 10 s).
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("write without quorum took %v with a 500ms deadline", took)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = catalogClient(c, follower).GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: dsAt(c, follower, 1).GetId()})
	if code := status.Code(err); code != codes.DeadlineExceeded && code != codes.Unavailable {
		t.Fatalf("linearizable read without quorum: %v, want DeadlineExceeded or Unavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("read without quorum took %v with a 500ms deadline", took)
	}
	// A stale read still answers from the local replica.
	_, err = catalogClient(c, follower).GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: dsAt(c, follower, 1).GetId(),
		Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_STALE})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("stale read without quorum: %v, want NotFound from the local replica", err)
	}
}

func TestUnreachableLeaderIsNamed(t *testing.T) {
	c, leader, follower := startPatientCluster(t)
	c.Partition([]int{follower}, []int{leader, 3 - leader - follower})
	// The patient follower still knows the leader; a write forwarded
	// there fails at once and names the leader's API.
	_, err := publisherClient(t, c, follower).PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, follower, 1)})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), c.Config(leader).APIAddr) {
		t.Fatalf("write through a partitioned follower: %v, want Unavailable naming %s", err, c.Config(leader).APIAddr)
	}
}
