// Package devnet is the dev delta: yrdnode city nodes in one process, the
// first bootstrapping the cluster and the others joining it with join
// tokens, exactly as operators would. `yrdnode dev` runs it; the in-process
// test harness (package testnet), and through it the system tests and the
// benchmarks, builds on it. It is not test code: the yrdnode binary links
// it, and must not link the harness.
package devnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// Options describe a cluster.
type Options struct {
	// Cities, one node each; the first bootstraps. Default: shanghai,
	// hangzhou, nanjing.
	Cities []string
	// Voters is how many of the first cities vote; the rest are non-voters.
	// Default: all, up to consensus.MaxVoters.
	Voters int
	// DataDir is the root under which each city gets its own directory.
	DataDir string
	// APIAddrs and FabricAddrs per city; default loopback with port 0.
	APIAddrs    []string
	FabricAddrs []string
	// OutsideMainland marks cities whose nodes join as Lingang cross-border
	// trial partners outside the mainland.
	OutsideMainland map[string]bool
	// Raft settings; zero means FastRaft().
	Raft consensus.Config
	// Logger; default discards.
	Logger *slog.Logger
	// Configure, if set, adjusts city i's node config (e.g. its local
	// data, cfg.Data) once the defaults above are filled in, before the
	// node is first created; restarts reuse the adjusted config.
	Configure func(i int, cfg *node.Config)
}

// FastRaft is raft for in-process clusters. All cities share one process,
// which in tests runs under the race detector (several times slower) on
// machines busy with other tests: a pause of the whole process (GC,
// scheduling) stalls leader and followers alike, and with the 150 ms/100 ms
// timeouts used before, such pauses cost leadership mid-write. So its
// timeouts are longer than the default, not shorter: 1 s, 2.5× the
// production values, which keeps a failover in a test at 1–3 s. See
// consensus/DESIGN.md, "Timing".
func FastRaft() consensus.Config {
	c := consensus.DefaultConfig()
	c.HeartbeatTimeout = time.Second
	c.ElectionTimeout = time.Second
	c.LeaderLeaseTimeout = time.Second
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// Cluster is a running in-process delta.
type Cluster struct {
	opts    Options
	mu      sync.Mutex
	nodes   []*node.Node
	cfgs    []node.Config
	clients map[clientKey]*client
}

// Start brings up every city and waits until all are ready members.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if len(opts.Cities) == 0 {
		opts.Cities = []string{"shanghai", "hangzhou", "nanjing"}
	}
	if opts.Voters <= 0 {
		opts.Voters = min(len(opts.Cities), consensus.MaxVoters)
	}
	if opts.DataDir == "" {
		return nil, errors.New("devnet: DataDir is required")
	}
	if opts.Raft.HeartbeatTimeout == 0 {
		opts.Raft = FastRaft()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{opts: opts, nodes: make([]*node.Node, len(opts.Cities)),
		cfgs: make([]node.Config, len(opts.Cities)), clients: map[clientKey]*client{}}
	for i, city := range opts.Cities {
		cfg := node.DefaultConfig()
		cfg.DataDir = filepath.Join(opts.DataDir, city)
		cfg.City = city
		cfg.APIAddr, cfg.FabricAddrs = "127.0.0.1:0", []string{"/ip4/127.0.0.1/tcp/0"}
		if i < len(opts.APIAddrs) {
			cfg.APIAddr = opts.APIAddrs[i]
		}
		if i < len(opts.FabricAddrs) {
			cfg.FabricAddrs = []string{opts.FabricAddrs[i]}
		}
		cfg.Raft = opts.Raft
		cfg.Logger = opts.Logger
		cfg.AnchorInterval = 200 * time.Millisecond
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		c.cfgs[i] = cfg
	}
	if err := c.startAll(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) startAll(ctx context.Context) error {
	// Nodes with state from an earlier run resume together (alone, none of
	// them has a quorum). A fresh first city bootstraps; fresh others join
	// through it with tokens, as operators would.
	started := make([]bool, len(c.cfgs))
	for i := range c.cfgs {
		if node.HasState(c.cfgs[i].DataDir) || i == 0 {
			if err := c.startNode(ctx, i); err != nil {
				return err
			}
			started[i] = true
		}
	}
	if err := c.waitReady(ctx, 0); err != nil {
		return err
	}
	opConn, err := c.ConnAs(0, "", yrdv1.Role_ROLE_OPERATOR)
	if err != nil {
		return err
	}
	admin := yrdv1grpc.NewClusterServiceClient(opConn)
	for i := 1; i < len(c.cfgs); i++ {
		if started[i] {
			continue
		}
		suffrage := yrdv1.Suffrage_SUFFRAGE_NONVOTER
		if i < c.opts.Voters {
			suffrage = yrdv1.Suffrage_SUFFRAGE_VOTER
		}
		tok, err := admin.IssueJoinToken(ctx, &yrdv1.IssueJoinTokenRequest{
			Ttl: durationpb.New(10 * time.Minute), Suffrage: suffrage, City: c.cfgs[i].City,
			OutsideMainland: c.opts.OutsideMainland[c.cfgs[i].City]})
		if err != nil {
			return fmt.Errorf("devnet: join token for %s: %w", c.cfgs[i].City, err)
		}
		c.cfgs[i].JoinAddr, c.cfgs[i].JoinToken = c.nodes[0].APIAddr(), tok.GetToken()
		if err := c.startNode(ctx, i); err != nil {
			return err
		}
	}
	for i := range c.cfgs {
		if err := c.waitReady(ctx, i); err != nil {
			return err
		}
	}
	return c.WaitVoters(ctx, c.opts.Voters)
}

func (c *Cluster) startNode(ctx context.Context, i int) error {
	n, err := node.New(c.cfgs[i])
	if err != nil {
		return fmt.Errorf("devnet: %s: %w", c.cfgs[i].City, err)
	}
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("devnet: %s: %w", c.cfgs[i].City, err)
	}
	// Pin the ports it got, so a restart comes back on the same addresses.
	c.cfgs[i].APIAddr, c.cfgs[i].FabricAddrs = n.APIAddr(), n.FabricAddrs()
	c.cfgs[i].JoinAddr, c.cfgs[i].JoinToken = "", ""
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, i int) error {
	select {
	case <-c.Node(i).Ready():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("devnet: %s not ready: %w", c.cfgs[i].City, ctx.Err())
	}
}

// WaitVoters waits until the raft configuration has want voters.
func (c *Cluster) WaitVoters(ctx context.Context, want int) error {
	for {
		if n := c.AnyNode(); n != nil {
			if servers, err := n.Raft().Servers(); err == nil {
				voters := 0
				for _, s := range servers {
					if s.Voter {
						voters++
					}
				}
				if voters >= want {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devnet: waiting for %d voters: %w", want, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Len is the number of cities.
func (c *Cluster) Len() int { return len(c.cfgs) }

// Node returns city i's node, or nil while it is stopped.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// AnyNode returns some running node.
func (c *Cluster) AnyNode() *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n != nil {
			return n
		}
	}
	return nil
}

// Config returns city i's node config (with its pinned addresses).
func (c *Cluster) Config(i int) node.Config { return c.cfgs[i] }

// Stop closes city i's node, as a clean shutdown. Its data dir stays.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.Close()
}

// Restart starts city i again from its data dir and waits until it is
// ready, which needs a quorum of voters running.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if err := c.StartNode(ctx, i); err != nil {
		return err
	}
	return c.waitReady(ctx, i)
}

// StartNode starts a stopped city i from its data dir without waiting.
func (c *Cluster) StartNode(ctx context.Context, i int) error {
	if c.Node(i) != nil {
		return fmt.Errorf("devnet: %s is running", c.cfgs[i].City)
	}
	return c.startNode(ctx, i)
}

// WaitReady waits until every running node is a ready member.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for i := range c.cfgs {
		if c.Node(i) == nil {
			continue
		}
		if err := c.waitReady(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every node and closes the client connections.
func (c *Cluster) Close() error {
	var errs []error
	for i := range c.cfgs {
		errs = append(errs, c.Stop(i))
	}
	c.closeClients()
	return errors.Join(errs...)
}
