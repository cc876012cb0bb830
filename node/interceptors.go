package node

import (
	"context"

	"google.golang.org/grpc"
)

// statusInterceptor translates every handler error to a gRPC status in one
// place (toStatus). It serves the fabric; the client API's interceptors
// (authz.go) do the same after authenticating.
func statusInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	return resp, toStatus(err)
}

// statusStreamInterceptor is statusInterceptor for streaming calls.
func statusStreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return toStatus(h(srv, ss))
}
