// Package procnet runs a delta of yrdnode processes, one per city, set up
// the way an operator would: `yrdnode init`, `serve`, then `cluster join`
// with a token. `yrdnode testnet` (through testnet/chaos) and the process
// tests build on it. It lives apart from the in-process test harness
// (package testnet) so that the yrdnode binary does not link that harness.
// Its errors keep the "testnet:" prefix that users of `yrdnode testnet` see.
package procnet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Default ports of a process testnet. Every city listens on its own IP
// address (a 127.x loopback address or its network namespace's address),
// so the ports can be the same for all and fixed: nothing picks a port by
// binding and closing a socket, which races with every other process.
const (
	ProcAPIPort    = 7401
	ProcFabricPort = 7411
)

// ProcOptions describe a process testnet.
type ProcOptions struct {
	Cities []string
	// Voters is how many of the first Cities join as voters; the rest join
	// as non-voters. 0 means all are voters.
	Voters int
	// Hosts is the IP address each city listens on; empty means distinct
	// loopback addresses (LoopbackHosts).
	Hosts []string
	// Wrap, if set, turns the argv of a city's process into the argv to run,
	// e.g. prefixing "ip netns exec NS".
	Wrap func(i int, argv []string) []string
	// Env is added to every process's environment.
	Env []string
	// Detach puts each process in its own process group, so that it
	// outlives a Ctrl-C to the command that started it.
	Detach bool
	// Prepare is called for each city between `yrdnode init` and its first
	// start, with the city's data dir (e.g. to add local data to yrdnode.toml).
	Prepare func(i int, dir string) error
	// Started is called after each process starts (e.g. to record its pid).
	Started func(i int, pid int)
}

var (
	buildMu   sync.Mutex
	buildPath string
	buildErr  error
	built     bool
)

// BuildBinaryOnce is BuildBinary into a new temporary dir, done once per
// process (a test binary's tests share it); later calls return the first
// call's result.
func BuildBinaryOnce(moduleDir string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if !built {
		built = true
		dir, err := os.MkdirTemp("", "yrdnode-bin-")
		if err != nil {
			buildErr = err
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildPath, buildErr = BuildBinary(ctx, moduleDir, dir)
	}
	return buildPath, buildErr
}

// ProcCluster runs each city as its own yrdnode process, set up the way an
// operator would: init, serve, then cluster join with a token.
type ProcCluster struct {
	Binary  string
	DataDir string
	Cities  []string
	API     []string // client API address per city
	Fabric  []string // fabric multiaddr per city
	opts    ProcOptions
	procs   []*proc
	conns   []*grpc.ClientConn
	extra   []*grpc.ClientConn
}

// proc is one city's process: a child of ours (cmd and exited set) or one
// found by pid from an earlier run (attached).
type proc struct {
	pid    int
	cmd    *exec.Cmd
	exited chan struct{}
}

var loopbackSeq atomic.Uint32

// LoopbackHosts returns n distinct loopback addresses 127.A.B.1..n in a
// /24 of the loopback /8 chosen at random per call, so that concurrent
// runs (other tests, other engineers) do not meet on an address.
func LoopbackHosts(n int) []string {
	r, _ := rand.Int(rand.Reader, big.NewInt(200*256))
	v := int(r.Int64()) + int(loopbackSeq.Add(1))*251
	a, b := 20+(v/256)%200, v%256
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("127.%d.%d.%d", a, b, i+1)
	}
	return hosts
}

// StartProcs initialises and starts one process per city on distinct
// loopback addresses; the first bootstraps, the rest join as voters.
func StartProcs(ctx context.Context, binary, dataDir string, cities []string) (*ProcCluster, error) {
	return StartProcsWith(ctx, binary, dataDir, cities, nil)
}

// StartProcsWith is StartProcs with prepare called for each city between
// `yrdnode init` and its first start, with the city's data dir (e.g. to add
// local data to its yrdnode.toml).
func StartProcsWith(ctx context.Context, binary, dataDir string, cities []string, prepare func(i int, dir string) error) (*ProcCluster, error) {
	return StartProcsOpts(ctx, binary, dataDir, ProcOptions{Cities: cities, Prepare: prepare})
}

func newProcCluster(binary, dataDir string, o ProcOptions) *ProcCluster {
	if len(o.Hosts) == 0 {
		o.Hosts = LoopbackHosts(len(o.Cities))
	}
	if o.Voters <= 0 || o.Voters > len(o.Cities) {
		o.Voters = len(o.Cities)
	}
	n := len(o.Cities)
	c := &ProcCluster{Binary: binary, DataDir: dataDir, Cities: o.Cities, opts: o,
		API: make([]string, n), Fabric: make([]string, n), procs: make([]*proc, n), conns: make([]*grpc.ClientConn, n)}
	for i, h := range o.Hosts {
		c.API[i] = net.JoinHostPort(h, strconv.Itoa(ProcAPIPort))
		c.Fabric[i] = fmt.Sprintf("/ip4/%s/tcp/%d", h, ProcFabricPort)
	}
	return c
}

// StartProcsOpts initialises and starts a process testnet as o says: the
// first city bootstraps, the others join with single-use tokens, the first
// o.Voters as voters and the rest as non-voters.
func StartProcsOpts(ctx context.Context, binary, dataDir string, o ProcOptions) (*ProcCluster, error) {
	c := newProcCluster(binary, dataDir, o)
	if len(c.opts.Hosts) != len(c.Cities) {
		return nil, fmt.Errorf("testnet: %d hosts for %d cities", len(c.opts.Hosts), len(c.Cities))
	}
	for i := range c.Cities {
		if err := c.initCity(ctx, i); err != nil {
			return nil, err
		}
	}
	if err := c.bootstrapAndJoin(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *ProcCluster) initCity(ctx context.Context, i int) error {
	out, err := exec.CommandContext(ctx, c.Binary, "init", "--data-dir", c.dir(i), "--city", c.Cities[i],
		"--api", c.API[i], "--fabric", c.Fabric[i]).CombinedOutput()
	if err != nil {
		return fmt.Errorf("init %s: %v\n%s", c.Cities[i], err, out)
	}
	if c.opts.Prepare != nil {
		if err := c.opts.Prepare(i, c.dir(i)); err != nil {
			return fmt.Errorf("prepare %s: %w", c.Cities[i], err)
		}
	}
	return nil
}

func (c *ProcCluster) bootstrapAndJoin(ctx context.Context) error {
	if err := c.Start(0); err != nil {
		return err
	}
	if err := c.WaitServing(ctx, 0); err != nil {
		return err
	}
	conn0, err := c.Conn(0)
	if err != nil {
		return err
	}
	admin := yrdv1grpc.NewClusterServiceClient(conn0)
	for i := 1; i < len(c.Cities); i++ {
		suffrage := yrdv1.Suffrage_SUFFRAGE_VOTER
		if i >= c.opts.Voters {
			suffrage = yrdv1.Suffrage_SUFFRAGE_NONVOTER
		}
		tok, err := admin.IssueJoinToken(ctx, &yrdv1.IssueJoinTokenRequest{Ttl: durationpb.New(5 * time.Minute),
			Suffrage: suffrage, City: c.Cities[i]})
		if err != nil {
			return err
		}
		if err := c.start(i, "cluster", "join", "--via", c.API[0], "--token", tok.GetToken()); err != nil {
			return err
		}
		// Joins one at a time: a membership change waits for the last.
		if err := c.WaitServing(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// AttachProcs returns a cluster of processes an earlier run started (e.g.
// `yrdnode testnet up`), found by pid; a pid of 0 is a stopped city. o must
// be the options they were started with (Hosts and Wrap at least).
func AttachProcs(binary, dataDir string, o ProcOptions, pids []int) *ProcCluster {
	c := newProcCluster(binary, dataDir, o)
	for i, pid := range pids {
		if pid > 0 && c.pidIsOurs(i, pid) {
			c.procs[i] = &proc{pid: pid}
		}
	}
	return c
}

// pidIsOurs says whether pid is alive and runs city i's node (its command
// line names the city's data dir), so a recycled pid is never signalled.
func (c *ProcCluster) pidIsOurs(i, pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), c.dir(i)) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	if k := strings.LastIndexByte(s, ')'); k >= 0 && k+2 < len(s) {
		return s[k+2] != 'Z' && s[k+2] != 'X'
	}
	return false
}

func (c *ProcCluster) dir(i int) string { return filepath.Join(c.DataDir, c.Cities[i]) }

// Dir is city i's data dir.
func (c *ProcCluster) Dir(i int) string { return c.dir(i) }

// CA is the path of city i's CA certificate (there once it has started).
func (c *ProcCluster) CA(i int) string { return node.CAPath(c.dir(i)) }

// OperatorKey is city i's bootstrap operator API key.
func (c *ProcCluster) OperatorKey(i int) (string, error) {
	data, err := os.ReadFile(node.OperatorKeyPath(c.dir(i)))
	return strings.TrimSpace(string(data)), err
}

func (c *ProcCluster) dial(i int, key string) (*grpc.ClientConn, error) {
	pem, err := os.ReadFile(c.CA(i))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return grpc.NewClient(c.API[i], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})),
		grpc.WithPerRPCCredentials(bearer(key)))
}

// bearer sends an API key with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// Conn is an operator connection to city i's API, over TLS verified with
// the city's CA. It exists once the city has started.
func (c *ProcCluster) Conn(i int) (*grpc.ClientConn, error) {
	if c.conns[i] != nil {
		return c.conns[i], nil
	}
	key, err := c.OperatorKey(i)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("testnet: %s: the operator key file is empty", c.Cities[i])
	}
	conn, err := c.dial(i, key)
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
	logf, err := os.OpenFile(c.LogPath(i), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	argv := append([]string{c.Binary}, args...)
	argv = append(argv, "--data-dir", c.dir(i), "--log-level", "warn")
	if c.opts.Wrap != nil {
		argv = c.opts.Wrap(i, argv)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), c.opts.Env...)
	if c.opts.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
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
	c.procs[i] = &proc{pid: cmd.Process.Pid, cmd: cmd, exited: done}
	if c.opts.Started != nil {
		c.opts.Started(i, cmd.Process.Pid)
	}
	return nil
}

// Pid is city i's process id, 0 if it is not running.
func (c *ProcCluster) Pid(i int) int {
	if p := c.procs[i]; p != nil && !c.hasExited(i) {
		return p.pid
	}
	return 0
}

// hasExited says whether city i's process has ended.
func (c *ProcCluster) hasExited(i int) bool {
	p := c.procs[i]
	if p == nil {
		return true
	}
	if p.exited != nil {
		select {
		case <-p.exited:
			return true
		default:
			return false
		}
	}
	return !c.pidIsOurs(i, p.pid)
}

// LogPath is where city i's process writes its log.
func (c *ProcCluster) LogPath(i int) string { return filepath.Join(c.DataDir, c.Cities[i]+".log") }

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
		if c.hasExited(i) {
			return fmt.Errorf("testnet: %s exited: %s", c.Cities[i], c.LogTail(i))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testnet: %s not serving (log: %s): %w", c.Cities[i], c.LogTail(i), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LogTail returns the end of city i's log, for error messages.
func (c *ProcCluster) LogTail(i int) string {
	data, _ := os.ReadFile(c.LogPath(i))
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

// Pause freezes city i with SIGSTOP: its sockets stay open, it answers
// nothing, as a node stuck in a long GC pause or a frozen VM.
func (c *ProcCluster) Pause(i int) error { return c.send(i, syscall.SIGSTOP) }

// Resume lets a paused city i run again (SIGCONT).
func (c *ProcCluster) Resume(i int) error { return c.send(i, syscall.SIGCONT) }

func (c *ProcCluster) send(i int, sig syscall.Signal) error {
	p := c.procs[i]
	if p == nil || c.hasExited(i) {
		return fmt.Errorf("testnet: %s is not running", c.Cities[i])
	}
	return syscall.Kill(p.pid, sig)
}

func (c *ProcCluster) signal(i int, sig syscall.Signal) error {
	p := c.procs[i]
	if p == nil {
		return nil
	}
	if !c.hasExited(i) {
		// A stopped process takes no signal but SIGKILL; let it go on.
		syscall.Kill(p.pid, syscall.SIGCONT)
		if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	if !c.waitExit(i, 15*time.Second) {
		syscall.Kill(p.pid, syscall.SIGKILL)
		c.waitExit(i, 15*time.Second)
	}
	c.procs[i] = nil
	return nil
}

// waitExit waits up to d for city i's process to end.
func (c *ProcCluster) waitExit(i int, d time.Duration) bool {
	p := c.procs[i]
	if p.exited != nil {
		select {
		case <-p.exited:
			return true
		case <-time.After(d):
			return false
		}
	}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if c.hasExited(i) {
			return true
		}
		time.Sleep(10 * time.Millisecond) // polling an attached pid: nothing to wait on
	}
	return c.hasExited(i)
}

// Status asks city i for its raft status, with a short deadline.
func (c *ProcCluster) Status(ctx context.Context, i int) (*yrdv1.StatusResponse, error) {
	conn, err := c.Conn(i)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	return yrdv1grpc.NewClusterServiceClient(conn).Status(cctx, &yrdv1.StatusRequest{})
}

// Leader returns the index of the city whose node reports leading.
func (c *ProcCluster) Leader(ctx context.Context) (int, error) {
	for {
		for i := range c.Cities {
			if c.procs[i] == nil {
				continue
			}
			st, err := c.Status(ctx, i)
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
	}
	c.Release()
	return errors.Join(errs...)
}

// Release closes client connections and leaves the processes running
// (for a command that starts a testnet and exits).
func (c *ProcCluster) Release() {
	for i, conn := range c.conns {
		if conn != nil {
			conn.Close()
			c.conns[i] = nil
		}
	}
	for _, conn := range c.extra {
		conn.Close()
	}
	c.extra = nil
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
	conn, err := c.dial(i, resp.GetToken())
	if err != nil {
		return nil, err
	}
	c.extra = append(c.extra, conn)
	return conn, nil
}
