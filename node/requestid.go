package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// RequestIDHeader is the gRPC metadata key of a request id: a client may
// send one (else the node makes one up), the node answers with it in the
// response header, and passes it on to every node the request reaches.
const RequestIDHeader = "x-request-id"

// maxRequestIDLen keeps ids short enough for every log line.
const maxRequestIDLen = 64

type requestIDKey struct{}

// withRequestID returns ctx carrying id.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestIDOf is the request id ctx carries, or "".
func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID: 1 to 64 printable ASCII characters without spaces, so an
// id never breaks a log line or smuggles in a field.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID is 16 random hex digits: unique enough among one delta's
// requests of a retention period, and short.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// incomingRequestID takes the request id a caller sent in its metadata,
// or makes one up when it sent none. A malformed one is refused.
func incomingRequestID(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, RequestIDHeader)
	if len(vals) == 0 {
		return newRequestID(), nil
	}
	if len(vals) > 1 || !validRequestID(vals[0]) {
		return "", errorf(ErrInvalid, "%s: want one id of 1 to %d printable characters without spaces", RequestIDHeader, maxRequestIDLen)
	}
	return vals[0], nil
}

// stampRequestID puts ctx's request id on rec unless it has one.
func stampRequestID(ctx context.Context, rec *yrdv1.AuditRecord) {
	if rec.RequestId == "" {
		rec.RequestId = requestIDOf(ctx)
	}
}

// outgoingRequestID passes ctx's request id on to the member node a call
// goes to; that node's fabric interceptor takes it up.
func outgoingRequestID(ctx context.Context) context.Context {
	if id := requestIDOf(ctx); id != "" {
		return metadata.AppendToOutgoingContext(ctx, RequestIDHeader, id)
	}
	return ctx
}

// requestIDUnaryClient and requestIDStreamClient are the peer clients'
// interceptors: every call to another node carries the request id.
func requestIDUnaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker,
	opts ...grpc.CallOption) error {
	return invoker(outgoingRequestID(ctx), method, req, reply, cc, opts...)
}

func requestIDStreamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer,
	opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(outgoingRequestID(ctx), desc, cc, method, opts...)
}

// requestIDHandler adds the request id of the context a line is logged
// with (the *Context methods of slog.Logger) to the line, so that every
// line of one request carries it without each call site naming it.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDOf(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// ctxStream is a server stream whose context an interceptor replaced.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }
