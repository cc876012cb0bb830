package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// bearer sends the API key with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// dial connects lazily over TLS; errors surface on the first call, where
// callErr names the address.
func (cf *clientFlags) dial() (*grpc.ClientConn, error) {
	pemData, err := os.ReadFile(cf.ca)
	if err != nil {
		return nil, fmt.Errorf("--ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("--ca: %s holds no PEM certificate", cf.ca)
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if cf.cert != "" {
		pair, err := tls.LoadX509KeyPair(cf.cert, cf.certKey)
		if err != nil {
			return nil, fmt.Errorf("--cert/--cert-key: %v", err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithChainUnaryInterceptor(defaultRetry.interceptor)}
	if cf.key != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(strings.TrimSpace(cf.key))))
	}
	conn, err := grpc.NewClient(cf.node, opts...)
	if err != nil {
		return nil, fmt.Errorf("node address %q: %v", cf.node, err)
	}
	return conn, nil
}

// call runs f with a connection and the call's deadline.
func (cf *clientFlags) call(ctx context.Context, f func(context.Context, *grpc.ClientConn) error) error {
	if err := cf.check(); err != nil {
		return err
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	return f(ctx, conn)
}

// callErr turns an RPC error into a message for people.
func (cf *clientFlags) callErr(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		msg := st.Message()
		switch outcomeOf(st) {
		case reasonOutcomeUnknown:
			return fmt.Errorf("unavailable, and the change may or may not have been made (check before retrying): %s", msg)
		case reasonNotApplied:
			return fmt.Errorf("unavailable, nothing was changed (safe to retry): %s", msg)
		}
		if strings.Contains(msg, "connection refused") || strings.Contains(msg, "dial") || strings.Contains(msg, "no such host") {
			return fmt.Errorf("cannot reach node at %s (set --node or YRDNODE_NODE): %s", cf.node, msg)
		}
		return fmt.Errorf("unavailable: %s", msg)
	case codes.Unauthenticated:
		return fmt.Errorf("%s (give an API key with --key or YRDNODE_KEY, or a certificate with --cert/--cert-key)", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("node at %s did not answer within %v", cf.node, cf.timeout)
	}
	return fmt.Errorf("%s: %s", codeWords(st.Code()), st.Message())
}
