package node

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Servers, as the rpc metrics and log lines name them.
const (
	serverAPI    = "api"    // the client API
	serverFabric = "fabric" // the members' services over the fabric
)

// queryMethods are the calls that run a query, logged at Info: the
// operator's record of who asked what where. Other calls log at Debug.
var queryMethods = map[string]bool{
	"/yrd.v1.QueryService/Query":  true,
	"/yrd.v1.PeerService/Execute": true,
}

// observeUnary is the outermost interceptor of a server: it takes up the
// request id (the client's or a member's, else a new one), answers with
// it, and counts and logs the call with its final code.
func (n *Node) observeUnary(server string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		id, err := incomingRequestID(ctx)
		if err != nil {
			err = toStatus(err)
			n.finishRPC(ctx, server, info.FullMethod, start, err)
			return nil, err
		}
		ctx = withRequestID(ctx, id)
		_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
		resp, err := h(ctx, req)
		n.finishRPC(ctx, server, info.FullMethod, start, err)
		return resp, err
	}
}

// observeStream is observeUnary for streaming calls.
func (n *Node) observeStream(server string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		ctx := ss.Context()
		id, err := incomingRequestID(ctx)
		if err != nil {
			err = toStatus(err)
			n.finishRPC(ctx, server, info.FullMethod, start, err)
			return err
		}
		ctx = withRequestID(ctx, id)
		_ = ss.SetHeader(metadata.Pairs(RequestIDHeader, id))
		err = h(srv, ctxStream{ss, ctx})
		n.finishRPC(ctx, server, info.FullMethod, start, err)
		return err
	}
}

// finishRPC counts a finished call and logs it. err is a status already
// (the inner interceptors translate every error).
func (n *Node) finishRPC(ctx context.Context, server, method string, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	n.metrics.observeRPC(server, method, code, d)
	level := slog.LevelDebug
	switch {
	case code == codes.Internal || code == codes.Unknown || code == codes.DataLoss:
		level = slog.LevelWarn
	case queryMethods[method]:
		level = slog.LevelInfo
	}
	attrs := []any{"server", server, "method", method, "code", code.String(), "duration", d}
	if err != nil {
		attrs = append(attrs, "err", status.Convert(err).Message())
	}
	n.log.Log(ctx, level, "rpc", attrs...)
}
