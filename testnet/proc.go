package testnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// BuildBinary compiles cmd/yrdnode into dir and returns its path. moduleDir
// is the repository root.
func BuildBinary(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "yrdnode")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/yrdnode")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// ProcCluster runs each city as its own yrdnode process, set up the way an
// operator would: init, serve, then cluster join with a token.
type ProcCluster struct {
	Binary  string
	DataDir string
	Cities  []string
	API     []string // client API address per city
	procs   []*exec.Cmd
	exited  []chan struct{}
	conns   []*grpc.ClientConn
	extra   []*grpc.ClientConn
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartProcs initialises and starts one process per city; the first
// bootstraps, the rest join as voters.
func StartProcs(ctx context.Context, binary, dataDir string, cities []string) (*ProcCluster, error) {
	return StartProcsWith(ctx, binary, dataDir, cities, nil)
}

// StartProcsWith is StartProcs with prepare called for each city between
// `yrdnode init` and its first start, with the city's data dir (e.g. to add
// local data to its node.json).
func StartProcsWith(ctx context.Context, binary, dataDir string, cities []string, prepare func(i int, dir string) error) (*ProcCluster, error) {
	c := &ProcCluster{Binary: binary, DataDir: dataDir, Cities: cities,
		API: make([]string, len(cities)), procs: make([]*exec.Cmd, len(cities)),
		exited: make([]chan struct{}, len(cities)), conns: make([]*grpc.ClientConn, len(cities))}
	for i, city := range cities {
		apiPort, err := freePort()
		if err != nil {
			return nil, err
		}
		fabricPort, err := freePort()
		if err != nil {
			return nil, err
		}
		c.API[i] = fmt.Sprintf("127.0.0.1:%d", apiPort)
		out, err := exec.CommandContext(ctx, binary, "init", "--data-dir", c.dir(i), "--city", city,
			"--api", c.API[i], "--fabric", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", fabricPort)).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("init %s: %v\n%s", city, err, out)
		}
		if prepare != nil {
			if err := prepare(i, c.dir(i)); err != nil {
				return nil, fmt.Errorf("prepare %s: %w", city, err)
			}
		}
	}
	if err := c.Start(0); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.WaitServing(ctx, 0); err != nil {
		c.Close()
		return nil, err
	}
	conn0, err := c.Conn(0)
	if err != nil {
		c.Close()
		return nil, err
	}
	admin := yrdv1grpc.NewClusterServiceClient(conn0)
	for i := 1; i < len(cities); i++ {
		tok, err := admin.IssueJoinToken(ctx, &yrdv1.IssueJoinTokenRequest{Ttl: durationpb.New(5 * time.Minute),
			Suffrage: yrdv1.Suffrage_SUFFRAGE_VOTER, City: cities[i]})
		if err != nil {
			c.Close()
			return nil, err
		}
		if err := c.start(i, "cluster", "join", "--via", c.API[0], "--token", tok.GetToken()); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := range cities {
		if err := c.WaitServing(ctx, i); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *ProcCluster) dir(i int) string { return filepath.Join(c.DataDir, c.Cities[i]) }

// CA is the path of city i's CA certificate (there once it has started).
func (c *ProcCluster) CA(i int) string { return node.CAPath(c.dir(i)) }

// OperatorKey is city i's bootstrap operator API key.
func (c *ProcCluster) OperatorKey(i int) (string, error) {
	data, err := os.ReadFile(node.OperatorKeyPath(c.dir(i)))
	return strings.TrimSpace(string(data)), err
}

// Conn is an operator connection to city i's API, over TLS verified with
// the city's CA. It exists once the city has started.
func (c *ProcCluster) Conn(i int) (*grpc.ClientConn, error) {
	if c.conns[i] != nil {
		return c.conns[i], nil
	}
	pem, err := os.ReadFile(c.CA(i))
	if err != nil {
		return nil, err
	}
	key, err := c.OperatorKey(i)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := grpc.NewClient(c.API[i], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})),
		grpc.WithPerRPCCredentials(bearer(key)))
	if err != nil {
		return nil, err
	}
	c.conns[i] = conn
	return conn, nil
}

// Start runs `yrdnode serve` for city i from its data dir.
func (c *ProcCluster) Start(i int) error { return c.start(i, "serve") }

func (c *ProcCluster) start(i int, args ...string) error {
	if c.procs[i] != nil {
		return fmt.Errorf("testnet: %s is running", c.Cities[i])
	}
	logf, err := os.OpenFile(filepath.Join(c.DataDir, c.Cities[i]+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	args = append(args, "--data-dir", c.dir(i), "--log-level", "warn")
	cmd := exec.Command(c.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { // owned by the process: ends when it exits
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	c.procs[i], c.exited[i] = cmd, done
	return nil
}

// WaitServing waits until city i's health check says SERVING, i.e. it is a
// ready member with a leader.
func (c *ProcCluster) WaitServing(ctx context.Context, i int) error {
	for {
		if conn, err := c.Conn(i); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
			cancel()
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testnet: %s not serving (log: %s): %w", c.Cities[i], c.LogTail(i), ctx.Err())
		case <-c.exited[i]:
			return fmt.Errorf("testnet: %s exited: %s", c.Cities[i], c.LogTail(i))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LogTail returns the end of city i's log, for error messages.
func (c *ProcCluster) LogTail(i int) string {
	data, _ := os.ReadFile(filepath.Join(c.DataDir, c.Cities[i]+".log"))
	s := string(data)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

// Kill sends SIGKILL to city i and waits for it to die.
func (c *ProcCluster) Kill(i int) error { return c.signal(i, syscall.SIGKILL) }

// Stop sends SIGTERM (a clean shutdown) to city i and waits for it to exit.
func (c *ProcCluster) Stop(i int) error { return c.signal(i, syscall.SIGTERM) }

func (c *ProcCluster) signal(i int, sig syscall.Signal) error {
	p := c.procs[i]
	if p == nil {
		return nil
	}
	if err := p.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.exited[i]:
	case <-time.After(15 * time.Second):
		p.Process.Kill()
		<-c.exited[i]
	}
	c.procs[i] = nil
	return nil
}

// Leader returns the index of the city whose node reports leading.
func (c *ProcCluster) Leader(ctx context.Context) (int, error) {
	for {
		for i := range c.Cities {
			if c.procs[i] == nil {
				continue
			}
			conn, err := c.Conn(i)
			if err != nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			st, err := yrdv1grpc.NewClusterServiceClient(conn).Status(cctx, &yrdv1.StatusRequest{})
			cancel()
			if err == nil && st.GetRaftState() == "Leader" {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("testnet: no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops every process cleanly and closes client connections.
func (c *ProcCluster) Close() error {
	var errs []error
	for i := range c.Cities {
		errs = append(errs, c.Stop(i))
		if c.conns[i] != nil {
			c.conns[i].Close()
		}
	}
	for _, conn := range c.extra {
		conn.Close()
	}
	return errors.Join(errs...)
}

// ConnAs creates an API key for a principal of org with role at city i and
// returns a connection that uses it. The caller closes nothing: Close does.
func (c *ProcCluster) ConnAs(i int, org string, role yrdv1.Role) (*grpc.ClientConn, error) {
	op, err := c.Conn(i)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := yrdv1grpc.NewAuthServiceClient(op).CreateAPIKey(ctx, &yrdv1.CreateAPIKeyRequest{Org: org, Role: role, Name: "procnet"})
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(c.CA(i))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := grpc.NewClient(c.API[i], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})),
		grpc.WithPerRPCCredentials(bearer(resp.GetToken())))
	if err != nil {
		return nil, err
	}
	c.extra = append(c.extra, conn)
	return conn, nil
}
