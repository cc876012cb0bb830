package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/coalesce"
	"github.com/yrd-exchange/yrdnode/internal/console"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/internal/owner"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

// Node is one running city node.
type Node struct {
	cfg Config
	log *slog.Logger
	key crypto.PrivKey
	id  peer.ID

	// The web console and its in-memory way into the client API.
	console     *console.Console
	consoleLis  *consoleListener
	consoleConn *grpc.ClientConn

	catalog  *store.Catalog
	creds    *auth.Store
	auditLog *audit.Log
	refusals *audit.Summariser // refusals without credentials, summarised
	host     *fabric.Host
	raft     *consensus.Raft
	peers    *peerClients
	health   *health.Server
	data     *localData
	queries  *queryLimiter
	owner    *owner.Executor // the owner's side of queries

	leaderReads coalesce.Rounds[uint64] // a follower's read-index requests, shared by concurrent reads

	metrics     *nodeMetrics
	admin       *adminServer  // nil when AdminAddr is ""
	anchoredSeq atomic.Uint64 // the audit seq of the last anchor this node recorded
	anchoredAt  atomic.Int64  // and its time, in Unix nanoseconds; 0 before the first

	api, fabricRPC       *grpc.Server
	apiLis               net.Listener
	apiAddr              string
	seedMu               sync.RWMutex
	seeds                map[peer.ID]bool // admitted until ready, before the registry names them
	savedPeers           []*yrdv1.Member  // last registry written to the member cache; membership loop only
	peerFilter           atomic.Pointer[func(peer.ID) bool]
	reconcileCh          chan struct{}
	ready                chan struct{}
	readyOnce, closeOnce sync.Once
	drain                *queryDrain // running queries, refused and awaited on stop
	drainOnce            sync.Once
	stopping             atomic.Bool  // Drain began: health stays NOT_SERVING
	lastRound            atomic.Int64 // unix ns when the membership loop last finished a round (Live)
	removal              removal
	base                 context.Context // ends when Close begins; owns background work
	cancelBase           context.CancelFunc
	wg                   sync.WaitGroup
	closeErr             error
}

// New checks cfg and loads (or creates) the node's identity. It opens
// nothing else; Start does.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	key, _, err := fabric.LoadOrCreateKey(cfg.keyPath())
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg,
		// Lines logged with a request's context carry its request id.
		log:         slog.New(requestIDHandler{cfg.Logger.Handler()}).With("city", cfg.City),
		key:         key,
		id:          id,
		metrics:     newNodeMetrics(),
		seeds:       map[peer.ID]bool{},
		reconcileCh: make(chan struct{}, 1),
		ready:       make(chan struct{}),
		drain:       newQueryDrain(),
		base:        base,
		cancelBase:  cancel,
	}
	n.metrics.reg.MustRegister(stateCollector{n})
	return n, nil
}

// PeerID is the node's libp2p identity, which is also its raft id.
func (n *Node) PeerID() peer.ID { return n.id }

// City is the city this node serves.
func (n *Node) City() string { return n.cfg.City }

// APIAddr is the address the client API listens on (resolved after Start,
// so a configured port 0 shows the real port).
func (n *Node) APIAddr() string {
	if n.apiAddr != "" {
		return n.apiAddr
	}
	return n.cfg.APIAddr
}

// FabricAddrs are the libp2p addresses the node listens on.
func (n *Node) FabricAddrs() []string {
	if n.host == nil {
		return n.cfg.FabricAddrs
	}
	return n.host.AddrStrings()
}

// Ready is closed once the node is a member of a cluster with a leader.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Raft exposes consensus state for tests and the testnet.
func (n *Node) Raft() *consensus.Raft { return n.raft }

// Catalog exposes the local replica for tests and the testnet.
func (n *Node) Catalog() *store.Catalog { return n.catalog }

// Run starts the node and serves until ctx ends, then closes it.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// Start opens storage, the fabric and raft, serves the API, and bootstraps
// or joins a cluster if the node has no state yet. It returns once the
// node is serving; Ready tells when it is a working member.
func (n *Node) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if unsafeStaleReads() {
		n.log.Warn("TEST-ONLY BROKEN MODE: as a follower this node answers linearizable reads from its own replica, which may be stale",
			"env", UnsafeStaleReadsEnv)
	}
	if err := n.installRaftLibraryMetrics(); err != nil {
		return err
	}
	if err := n.openLocal(ctx); err != nil {
		return err
	}
	if err := n.openFabric(); err != nil {
		return err
	}
	if err := n.openRaft(); err != nil {
		return err
	}
	n.serveFabricRPC()
	if err := n.serveAPI(); err != nil {
		return err
	}
	if err := n.openConsole(); err != nil {
		return err
	}
	if err := n.joinOrBootstrap(ctx); err != nil {
		return err
	}
	n.lastRound.Store(time.Now().UnixNano())
	n.goLoop(n.membershipLoop)
	n.goLoop(n.membershipProbeLoop)
	n.goLoop(n.anchorLoop)
	n.goLoop(n.recheckLoop)
	n.goLoop(n.pruneLoop)
	if err := n.serveAdmin(); err != nil {
		return err
	}
	n.log.Info("node started", "peer_id", n.id, "api", n.apiAddr, "fabric", n.host.AddrStrings(), "admin", n.AdminAddr())
	return nil
}

// openLocal opens what the node keeps on its own disk: the catalog
// replica, the credentials and audit log, the local data, and the owner's
// query pipeline over them.
func (n *Node) openLocal(ctx context.Context) (err error) {
	if n.catalog, err = n.openCatalog(); err != nil {
		return fmt.Errorf("open catalog: %w", err)
	}
	if err := n.openAccess(); err != nil {
		return err
	}
	if err := n.openData(ctx); err != nil {
		return fmt.Errorf("local data: %w", err)
	}
	n.openOwner()
	n.queries = newQueryLimiter(n.cfg.MaxQueriesPerRequester)
	return nil
}

// openFabric starts the libp2p host and tells it the addresses of the
// members and of the cached peers.
func (n *Node) openFabric() (err error) {
	n.host, err = fabric.New(fabric.Config{
		Key:                n.key,
		ListenAddrs:        n.cfg.FabricAddrs,
		Gate:               fabric.GateFunc(n.admit),
		Refused:            n.noteFabricRefusal,
		EnableNATPortMap:   n.cfg.EnableNATPortMap,
		EnableRelay:        n.cfg.EnableRelay,
		EnableHolePunching: n.cfg.EnableHolePunching,
		EnableAutoNAT:      n.cfg.EnableAutoNAT,
		Logger:             n.log,
	})
	if err != nil {
		return fmt.Errorf("fabric: %w", err)
	}
	for _, m := range n.catalog.Members() {
		n.learnAddrs(m)
	}
	cached, err := loadMemberCache(n.cfg)
	if err != nil {
		return fmt.Errorf("member cache %s: %w", n.cfg.peersPath(), err)
	}
	for _, m := range cached {
		n.addSeed(m)
	}
	n.peers = newPeerClients(n.host)
	return nil
}

// openRaft opens consensus over the fabric, applying to the catalog.
func (n *Node) openRaft() (err error) {
	rc := n.cfg.Raft
	rc.ID, rc.Dir, rc.Logger = n.id.String(), n.cfg.raftDir(), n.log
	ropts := []consensus.Option{consensus.WithMetrics(n.metrics)}
	if n.cfg.WALFS != nil {
		ropts = append(ropts, consensus.WithWALFS(n.cfg.WALFS))
	}
	n.raft, err = consensus.Open(rc, n.catalog, n.host.RaftLayer(), n.observe, ropts...)
	return err
}

// serveFabricRPC serves the members' services over the fabric.
func (n *Node) serveFabricRPC() {
	n.health = health.NewServer()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.fabricRPC = grpc.NewServer(grpc.ChainUnaryInterceptor(n.observeUnary(serverFabric), statusInterceptor),
		grpc.ChainStreamInterceptor(n.observeStream(serverFabric), statusStreamInterceptor))
	yrdv1grpc.RegisterPeerServiceServer(n.fabricRPC, &peerService{n: n})
	yrdv1grpc.RegisterClusterServiceServer(n.fabricRPC, &fabricCluster{n: n})
	n.serve(n.fabricRPC, n.host.Listen(fabric.ProtocolRPC))
}

// serveAPI serves the client API over TLS with the node's CA.
func (n *Node) serveAPI() (err error) {
	if n.apiLis, err = net.Listen("tcp", n.cfg.APIAddr); err != nil {
		return fmt.Errorf("client API: %w", err)
	}
	n.apiAddr = n.apiLis.Addr().String()
	tlsCfg, err := n.creds.CA().ServerTLS(certHosts(n.apiAddr))
	if err != nil {
		return err
	}
	n.api = grpc.NewServer(
		grpc.Creds(refusingTLS{credentials.NewTLS(tlsCfg), n}),
		grpc.ChainUnaryInterceptor(n.observeUnary(serverAPI), n.removedUnary, n.authUnary),
		grpc.ChainStreamInterceptor(n.observeStream(serverAPI), n.removedStream, n.authStream),
	)
	yrdv1grpc.RegisterCatalogServiceServer(n.api, &catalogService{n: n})
	yrdv1grpc.RegisterClusterServiceServer(n.api, &clusterService{n: n})
	yrdv1grpc.RegisterAuthServiceServer(n.api, &authService{n: n})
	yrdv1grpc.RegisterGrantServiceServer(n.api, &grantService{n: n})
	yrdv1grpc.RegisterPolicyServiceServer(n.api, &policyService{n: n})
	yrdv1grpc.RegisterAuditServiceServer(n.api, &auditService{n: n})
	yrdv1grpc.RegisterQueryServiceServer(n.api, &queryService{n: n})
	healthpb.RegisterHealthServer(n.api, n.health)
	reflection.Register(n.api)
	n.serve(n.api, n.apiLis)
	return nil
}

// joinOrBootstrap makes a node without raft state a member: it joins the
// cluster at JoinAddr, or with none founds a cluster of one.
func (n *Node) joinOrBootstrap(ctx context.Context) error {
	if n.raft.HasState() {
		return nil
	}
	if n.cfg.JoinAddr != "" {
		if err := n.join(ctx); err != nil {
			return fmt.Errorf("join via %s: %w", n.cfg.JoinAddr, err)
		}
		return nil
	}
	if err := n.raft.Bootstrap(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

func (n *Node) serve(s *grpc.Server, lis net.Listener) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := s.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("grpc server stopped", "err", err)
		}
	}()
}

func (n *Node) goLoop(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close stops serving and releases everything, in reverse order of Start,
// after a Drain (within Config.DrainTimeout) if the caller did not drain.
// Safe to call more than once and after a failed Start.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.Drain(context.Background())
		n.cancelBase()
		if n.health != nil {
			n.health.Shutdown()
		}
		var errs []error
		errs = append(errs, n.admin.close(), n.closeConsole())
		stopGracefully(n.api, 2*time.Second)
		if n.raft != nil {
			errs = append(errs, n.raft.Close())
		}
		stopGracefully(n.fabricRPC, time.Second)
		if n.peers != nil {
			n.peers.close()
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
		n.wg.Wait()
		errs = append(errs, n.data.close())
		if n.refusals != nil {
			// Before the log: it writes the open minute's summaries there.
			errs = append(errs, n.refusals.Close())
		}
		if n.auditLog != nil {
			errs = append(errs, n.auditLog.Close())
		}
		if n.creds != nil {
			errs = append(errs, n.creds.Close())
		}
		if n.catalog != nil {
			err := n.catalog.Close()
			if err == nil {
				err = markClean(n.cfg.cleanPath())
			}
			errs = append(errs, err)
		}
		n.uninstallRaftLibraryMetrics()
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped")
	})
	return n.closeErr
}

// stopGracefully lets in-flight RPCs finish, up to d.
func stopGracefully(s *grpc.Server, d time.Duration) {
	if s == nil {
		return
	}
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
		<-done
	}
}

// admit is the fabric's gate: registry members, plus the seeds of a join
// in progress.
func (n *Node) admit(id peer.ID) bool {
	if f := n.peerFilter.Load(); f != nil && !(*f)(id) {
		return false
	}
	if n.catalog != nil {
		if _, ok := n.catalog.Member(id.String()); ok {
			return true
		}
	}
	n.seedMu.RLock()
	defer n.seedMu.RUnlock()
	return n.seeds[id]
}

// SetPeerFilter narrows the gate to peers for which allow returns true, and
// cuts open connections to the others; nil lifts the filter. It is fault
// injection for tests (network partitions), not access control: the
// registry is that.
func (n *Node) SetPeerFilter(allow func(peer.ID) bool) {
	if allow == nil {
		n.peerFilter.Store(nil)
		return
	}
	n.peerFilter.Store(&allow)
	for _, m := range n.catalog.Members() {
		if id, err := peer.Decode(m.GetPeerId()); err == nil && id != n.id && !allow(id) {
			n.peers.drop(id)
			n.host.ClosePeer(id)
		}
	}
}

func (n *Node) addSeed(m *yrdv1.Member) {
	id, err := peer.Decode(m.GetPeerId())
	if err != nil {
		return
	}
	n.seedMu.Lock()
	n.seeds[id] = true
	n.seedMu.Unlock()
	n.learnAddrs(m)
}

func (n *Node) learnAddrs(m *yrdv1.Member) {
	id, err := peer.Decode(m.GetPeerId())
	if err != nil || id == n.id {
		return
	}
	if err := n.host.SetPeerAddrs(id, m.GetFabricAddrs()); err != nil {
		n.log.Warn("member has unusable fabric addresses", "peer_id", id, "err", err)
	}
}

// observe runs on the FSM goroutine after each applied command.
func (n *Node) observe(cmd *yrdv1.Command, res *yrdv1.CommandResult) {
	if res.GetErrorCode() != yrdv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
		return
	}
	switch cmd.Op.(type) {
	case *yrdv1.Command_PublishDataset, *yrdv1.Command_UpdateDataset, *yrdv1.Command_RetireDataset:
		n.dataChanged(res.GetDataset().GetId())
	case *yrdv1.Command_PutMember, *yrdv1.Command_RedeemJoinToken:
		n.learnAddrs(res.GetMember())
		n.kickReconcile()
	case *yrdv1.Command_RemoveMember:
		// The gate already refuses the peer (the registry no longer has
		// it); cutting its open connections makes the removal complete.
		if id, err := peer.Decode(res.GetMember().GetPeerId()); err == nil {
			n.peerRemoved(id)
		}
		n.kickReconcile()
	}
}

func (n *Node) kickReconcile() {
	select {
	case n.reconcileCh <- struct{}{}:
	default:
	}
}
