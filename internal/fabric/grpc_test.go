package fabric

import (
	"context"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcpeer "google.golang.org/grpc/peer"
)

func TestGRPCHealthOverFabricNamesCaller(t *testing.T) {
	client, server, _, _ := memberPair(t)
	ctx := testContext(t)

	var (
		mu      sync.Mutex
		callers []peer.ID
	)
	whoCalls := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if p, ok := grpcpeer.FromContext(ctx); ok {
			if id, ok := PeerIDFromAddr(p.Addr); ok {
				mu.Lock()
				callers = append(callers, id)
				mu.Unlock()
			}
		}
		return handler(ctx, req)
	}

	srv := grpc.NewServer(grpc.UnaryInterceptor(whoCalls))
	hs := health.NewServer()
	hs.SetServingStatus("yrd.catalog", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	lis := server.Listen(ProtocolRPC)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-served
	}()

	cc, err := grpc.NewClient("passthrough:///"+server.ID().String(),
		grpc.WithContextDialer(client.Dialer(ProtocolRPC)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer cc.Close()

	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "yrd.catalog"})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v, want SERVING", resp.GetStatus())
	}

	mu.Lock()
	defer mu.Unlock()
	if len(callers) != 1 || callers[0] != client.ID() {
		t.Fatalf("server saw callers %v, want [%s]", callers, client.ID())
	}
}
