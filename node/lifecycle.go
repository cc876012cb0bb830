package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/yrd-exchange/yrdnode/consensus"
)

// livenessWindow is how long the membership loop (every 250 ms, each
// round bounded by 5 s) may go without finishing a round before the node
// counts as wedged.
const livenessWindow = 30 * time.Second

// Live reports why the node's own machinery does not work, or nil: its
// storage failed (a restart recovers from what is on disk), or its
// membership loop, which keeps health current, has stalled. It does not
// depend on the cluster: a node without a quorum or a removed one is live,
// since restarting it would not help. A supervisor's watchdog (systemd's)
// restarts the daemon when this fails.
func (n *Node) Live() error {
	if n.raft == nil {
		return errors.New("not started")
	}
	if err := n.raft.StorageErr(); err != nil {
		return err
	}
	if last := time.Unix(0, n.lastRound.Load()); time.Since(last) > livenessWindow {
		return fmt.Errorf("membership loop stalled: last round %s ago", time.Since(last).Round(time.Second))
	}
	return nil
}

// cancelGrace is how long a drain waits for queries it cancelled at its
// deadline to unwind before it stops the node anyway.
const cancelGrace = 5 * time.Second

// Drain begins a clean stop: health turns NOT_SERVING at once, new queries
// are refused (UNAVAILABLE, "draining"), the running ones get until
// Config.DrainTimeout (or ctx's end, if sooner) to finish and are then
// cancelled with a status that says why, and a leader hands leadership to
// another voter so the cluster does not wait out an election timeout.
// Close drains first if Drain was not called; calling Drain first lets a
// caller (the serve command) cut the wait short, e.g. on a second signal.
func (n *Node) Drain(ctx context.Context) {
	n.drainOnce.Do(func() { n.drainNow(ctx) })
}

func (n *Node) drainNow(ctx context.Context) {
	n.stopping.Store(true)
	if n.health != nil {
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
	running := n.drain.start()
	n.log.Info("draining: health NOT_SERVING, new queries refused", "running_queries", running, "deadline", n.cfg.DrainTimeout)
	if !n.drain.wait(ctx, n.cfg.DrainTimeout) {
		left := n.drain.cancelAll()
		n.log.Warn("drain deadline passed: cancelling the queries still running", "queries", left)
		if !n.drain.wait(context.Background(), cancelGrace) {
			n.log.Warn("cancelled queries did not end in time; stopping anyway", "grace", cancelGrace)
		}
	}
	n.handOffLeadership()
}

// handOffLeadership transfers leadership to another voter if this node
// leads one that has any.
func (n *Node) handOffLeadership() {
	if n.raft == nil || !n.raft.IsLeader() || n.removedReason() != "" {
		return
	}
	servers, err := n.raft.Servers()
	if err != nil {
		return
	}
	// A voter this node is connected to: raft's own choice (the most
	// up-to-date) may be a stopped one, and waiting for it to take over
	// would cost an election timeout.
	i := slices.IndexFunc(servers, func(s consensus.Server) bool {
		id, err := peer.Decode(s.ID)
		return s.Voter && err == nil && id != n.id && n.host.Connected(id)
	})
	if i < 0 {
		n.log.Info("no other voter reachable to hand leadership to before stopping")
		return
	}
	if err := n.raft.TransferLeadership(servers[i].ID); err != nil {
		n.log.Info("leadership transfer before stopping failed; the other voters elect a leader after the election timeout", "err", err)
		return
	}
	n.log.Info("handed leadership over before stopping", "to", servers[i].ID)
}

// setServing reports SERVING unless the node is stopping or was removed,
// which no later membership round may undo.
func (n *Node) setServing() {
	down := func() bool { return n.stopping.Load() || n.removedReason() != "" }
	if down() {
		return
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	// Drain may have begun between the check and the write: it flips the
	// flag before the status, so checking again cannot miss it.
	if down() {
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// removal is what this node knows of its own removal from the cluster.
type removal struct {
	mu       sync.Mutex
	reason   string               // why this node counts itself removed; "" while a member
	inConfig bool                 // this process has seen itself in the raft configuration
	handled  bool                 // raft is stopped and the removal logged
	cuts     map[peer.ID]cutState // as leader: removed peers whose connections are still open
}

// cutState is a removed peer the leader has not cut off yet.
type cutState struct{ goneSince time.Time } // zero until raft no longer lists it

func (n *Node) removedReason() string {
	n.removal.mu.Lock()
	defer n.removal.mu.Unlock()
	return n.removal.reason
}

// markRemoved records that this node was removed; the membership loop
// acts on it (observe, on raft's FSM goroutine, may not stop raft).
func (n *Node) markRemoved(reason string) {
	n.removal.mu.Lock()
	if n.removal.reason == "" {
		n.removal.reason = reason
	}
	n.removal.mu.Unlock()
	n.kickReconcile()
}

// checkRemoved notices a removal from the raft configuration and, once,
// stops raft, turns health NOT_SERVING and says so in the log. It reports
// whether the node is removed.
func (n *Node) checkRemoved() bool {
	servers, err := n.raft.Servers()
	n.removal.mu.Lock()
	if err == nil && len(servers) > 0 {
		if slices.ContainsFunc(servers, func(s consensus.Server) bool { return s.ID == n.id.String() }) {
			n.removal.inConfig = true
		} else if n.removal.inConfig && n.removal.reason == "" {
			// Seen in this process first: a node that joins is not yet in
			// the configuration a snapshot from before its join carries.
			n.removal.reason = "the raft configuration no longer contains it"
		}
	}
	reason, first := n.removal.reason, n.removal.reason != "" && !n.removal.handled
	if first {
		n.removal.handled = true
	}
	n.removal.mu.Unlock()
	if reason == "" {
		return false
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if first {
		n.log.Warn("this node was removed from the cluster: it stopped taking part in raft and serves nothing but its health (NOT_SERVING); "+
			"stop it, and to bring the city back wipe its data dir and join again with a new token", "reason", reason)
		if err := n.raft.Close(); err != nil {
			n.log.Warn("stopping raft after removal", "err", err)
		}
	}
	return true
}

// removedErr is the refusal of every API call but the health check on a
// removed node.
func (n *Node) removedErr(reason string) error {
	return errorf(ErrFailedPrecondition, "node %s (%s) was removed from the cluster (%s) and serves nothing; wipe its data dir and join again with a new token to bring the city back",
		n.cfg.City, n.id, reason)
}

// isHealthCheck says whether method is the gRPC health service's, which a
// removed or stopping node still answers.
func isHealthCheck(method string) bool { return strings.HasPrefix(method, "/grpc.health.v1.Health/") }

// removedUnary refuses API calls on a removed node.
func (n *Node) removedUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if reason := n.removedReason(); reason != "" && !isHealthCheck(info.FullMethod) {
		return nil, toStatus(n.removedErr(reason))
	}
	return h(ctx, req)
}

// removedStream is removedUnary for streaming calls.
func (n *Node) removedStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if reason := n.removedReason(); reason != "" && !isHealthCheck(info.FullMethod) {
		return toStatus(n.removedErr(reason))
	}
	return h(srv, ss)
}

// peerRemoved cuts a removed peer off. A follower does it at once. The
// leader first lets raft replicate the configuration without the peer to
// it (raft's last best-effort append to a removed server), so the removed
// node learns it was removed instead of running on as a follower of
// nobody; the gate refuses the peer's new streams meanwhile and every
// member RPC checks the registry.
func (n *Node) peerRemoved(id peer.ID) {
	if id == n.id {
		n.markRemoved("the cluster removed it from its member registry")
		return
	}
	if !n.raft.IsLeader() {
		n.cutPeer(id)
		return
	}
	n.removal.mu.Lock()
	if n.removal.cuts == nil {
		n.removal.cuts = map[peer.ID]cutState{}
	}
	n.removal.cuts[id] = cutState{}
	n.removal.mu.Unlock()
	n.kickReconcile()
}

func (n *Node) cutPeer(id peer.ID) {
	n.peers.drop(id)
	n.host.ClosePeer(id)
}

// cutRemovedPeers cuts off the removed peers raft has stopped replicating
// to for a heartbeat timeout (the time its last append takes at most on a
// working link), and all of them once this node no longer leads.
func (n *Node) cutRemovedPeers() {
	n.removal.mu.Lock()
	if len(n.removal.cuts) == 0 {
		n.removal.mu.Unlock()
		return
	}
	servers, err := n.raft.Servers()
	leader := n.raft.IsLeader()
	var due []peer.ID
	for id, c := range n.removal.cuts {
		listed := err == nil && slices.ContainsFunc(servers, func(s consensus.Server) bool { return s.ID == id.String() })
		switch {
		case !leader || (!c.goneSince.IsZero() && time.Since(c.goneSince) >= n.cfg.Raft.HeartbeatTimeout):
			due = append(due, id)
			delete(n.removal.cuts, id)
		case !listed && c.goneSince.IsZero():
			n.removal.cuts[id] = cutState{goneSince: time.Now()}
		}
	}
	n.removal.mu.Unlock()
	for _, id := range due {
		n.cutPeer(id)
	}
}
