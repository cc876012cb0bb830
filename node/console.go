package node

import (
	"context"
	"crypto/tls"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/console"
)

// openConsole makes the web console (internal/console), served on the
// admin listener. It reaches the client API over an in-memory listener
// that the API's own server also serves, so every page goes through the
// same TLS, interceptors, role table and audit trail as a CLI call.
func (n *Node) openConsole() error {
	n.consoleLis = newConsoleListener()
	n.serve(n.api, n.consoleLis)
	conn, err := grpc.NewClient("passthrough:///console",
		grpc.WithContextDialer(n.consoleLis.dial),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: n.creds.CA().Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13})))
	if err != nil {
		return err
	}
	n.consoleConn = conn
	cfg := console.DefaultConfig(conn, n.cfg.City, n.log.With("component", "console"))
	if n.cfg.ConsoleSessionTTL > 0 {
		cfg.SessionTTL = n.cfg.ConsoleSessionTTL
	}
	if n.cfg.ConsoleIdleTTL > 0 {
		cfg.IdleTTL = n.cfg.ConsoleIdleTTL
	}
	cfg.Now = n.cfg.ConsoleClock
	n.console, err = console.New(cfg)
	return err
}

// consoleListener is an in-memory net.Listener: each dial is one end of a
// net.Pipe and Accept returns the other. Its connections' addresses are of
// auth.ConsoleNetwork, which no socket has, so the API can tell the
// console's calls from a remote client's.
type consoleListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConsoleListener() *consoleListener {
	return &consoleListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *consoleListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *consoleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *consoleListener) Addr() net.Addr { return consoleAddr{} }

func (l *consoleListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- consoleConn{server}:
		return consoleConn{client}, nil
	case <-l.done:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, net.ErrClosed
}

type consoleAddr struct{}

func (consoleAddr) Network() string { return auth.ConsoleNetwork }
func (consoleAddr) String() string  { return "console" }

// consoleConn is a pipe end that names its addresses as the console's.
type consoleConn struct{ net.Conn }

func (consoleConn) LocalAddr() net.Addr  { return consoleAddr{} }
func (consoleConn) RemoteAddr() net.Addr { return consoleAddr{} }

// closeConsole closes the console's connection to the API; the API's
// server closes the listener when it stops.
func (n *Node) closeConsole() error {
	if n.consoleConn == nil {
		return nil
	}
	return n.consoleConn.Close()
}
