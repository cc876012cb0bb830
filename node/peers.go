package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// peerClients caches one gRPC connection per member over the fabric.
// Noise already encrypts and authenticates the stream, so gRPC runs
// without TLS of its own there.
type peerClients struct {
	host  *fabric.Host
	mu    sync.Mutex
	conns map[peer.ID]*grpc.ClientConn
}

func newPeerClients(h *fabric.Host) *peerClients {
	return &peerClients{host: h, conns: map[peer.ID]*grpc.ClientConn{}}
}

func (p *peerClients) get(id peer.ID) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[id]; ok {
		return c, nil
	}
	c, err := grpc.NewClient("passthrough:///"+id.String(),
		grpc.WithContextDialer(p.host.Dialer(fabric.ProtocolRPC)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(requestIDUnaryClient),
		grpc.WithChainStreamInterceptor(requestIDStreamClient))
	if err != nil {
		return nil, err
	}
	p.conns[id] = c
	return c, nil
}

func (p *peerClients) drop(id peer.ID) {
	p.mu.Lock()
	c := p.conns[id]
	delete(p.conns, id)
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (p *peerClients) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, c := range p.conns {
		c.Close()
		delete(p.conns, id)
	}
}

// withDefaultTimeout gives a forwarded call a deadline if the client set none.
func (n *Node) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ForwardTimeout)
}

// propose applies cmd through the leader, wherever it is, and turns the
// command's domain outcome into an error.
func (n *Node) propose(ctx context.Context, cmd *yrdv1.Command) (*yrdv1.CommandResult, error) {
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	if cmd.Time == nil {
		cmd.Time = timestamppb.Now()
	}
	// The leader replaces this with what it authenticated when the command
	// arrives over the fabric (peerService.Apply).
	cmd.OriginPeer, cmd.OriginCity = n.id.String(), n.cfg.City
	if err := n.raft.StorageErr(); err != nil {
		return nil, storageUnavailable(err, false)
	}
	for {
		res, err := n.proposeOnce(ctx, cmd)
		// Retry only what surely did not enter the log: no leader known, or
		// a node that was not the leader when asked.
		if errors.Is(err, consensus.ErrNotLeader) || errors.Is(err, consensus.ErrNoLeader) || errors.Is(err, errNoLeaderYet) {
			if qerr := n.quorumLoss(ctx); qerr != nil {
				return nil, qerr
			}
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
				// Every attempt so far surely stayed out of the log.
				return nil, notApplied("no leader accepted the write before the deadline (last: %v); leader: %q", err, n.leaderAPIAddr())
			}
		}
		if errors.Is(err, consensus.ErrStorageFailed) {
			return nil, storageUnavailable(err, true)
		}
		if err != nil {
			return nil, err
		}
		return res, resultError(res)
	}
}

var errNoLeaderYet = errors.New("no leader elected yet")

// storageUnavailable is what a client is told when this node's storage
// failed: the write was not acknowledged here, and where to go instead.
// Refused before it was proposed, the write surely did not apply; failed
// while in flight, it may have committed elsewhere (a catalog that could
// not apply a committed entry), so its outcome is unknown.
func storageUnavailable(err error, proposed bool) error {
	mark := notApplied
	if proposed {
		mark = outcomeUnknown
	}
	return mark("this node takes no writes: %v; it needs a restart, which recovers from its disk; "+
		"send writes to another member meanwhile", err)
}

// applyLocal applies cmd through this node's raft. A raft that is already
// shut down refuses before anything enters its log, which the caller may
// safely retry elsewhere; one that shuts down while the command is in
// flight leaves the outcome unknown (consensus.ErrClosed, unmarked).
func (n *Node) applyLocal(ctx context.Context, cmd *yrdv1.Command) (*yrdv1.CommandResult, error) {
	if n.raft.State() == "Shutdown" {
		return nil, notApplied("%s is shutting down: %v", n.cfg.City, consensus.ErrClosed)
	}
	return n.raft.Apply(ctx, cmd)
}

// hopFailed is the error for a call this node forwarded over the fabric
// (to the leader, or to another city's node) that failed. When the
// transport failed, not the node at the other end, it names that hop: the
// client's own node is healthy, and told "cannot reach node" the operator
// would look in the wrong place. It is marked with whether the call may
// have arrived: a failed dial sent nothing, a broken connection may have
// delivered it. Anything else is the remote node's verdict, passed on.
func (n *Node) hopFailed(role, id string, err error) error {
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || statusOutcome(st) != "" || !isTransportFailure(st) {
		return fromStatus(err)
	}
	mark := outcomeUnknown
	if isDialFailure(st) {
		mark = notApplied
	}
	msg := fmt.Sprintf("forwarding from %s to %s %s (peer %s) failed: %s", n.cfg.City, role, n.memberName(id), id, st.Message())
	if m, ok := n.catalog.Member(id); ok && m.GetApiAddr() != "" {
		msg += "; its API is at " + m.GetApiAddr()
	}
	return mark("%s", msg)
}

// isTransportFailure reports whether an UNAVAILABLE status was made by
// grpc-go's client for a connection that failed (see isDialFailure) or
// broke, rather than sent by the server.
func isTransportFailure(st *status.Status) bool {
	if isDialFailure(st) {
		return true
	}
	for _, p := range []string{"error reading from server", "closing transport", "transport is closing", "connection closed"} {
		if strings.HasPrefix(st.Message(), p) {
			return true
		}
	}
	return false
}

// isDialFailure reports whether an UNAVAILABLE status from a gRPC client
// means no connection was made, so the request was never sent. grpc-go
// fails a call on a channel that could not connect (dial or handshake)
// with that error, worded "connection error: desc = ..."; a call that was
// under way when its connection broke says otherwise ("error reading from
// server", "closing transport due to ...").
func isDialFailure(st *status.Status) bool {
	return st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), "connection error: desc = ")
}

func (n *Node) proposeOnce(ctx context.Context, cmd *yrdv1.Command) (*yrdv1.CommandResult, error) {
	if n.raft.IsLeader() {
		return n.applyLocal(ctx, cmd)
	}
	if n.raft.Leader() == "" {
		return nil, errNoLeaderYet
	}
	client, err := n.leaderPeer()
	if err != nil {
		return nil, err
	}
	resp, err := client.Apply(ctx, &yrdv1grpc.ApplyRequest{Command: cmd})
	if err != nil {
		// The leader's own verdict (not leader, leadership lost) comes
		// with its outcome and passes on as it is; a failed hop says so,
		// with the leader's API, so the client can go there itself.
		return nil, n.hopFailed("the leader", n.raft.Leader(), err)
	}
	if resp.GetResult().GetErrorCode() == yrdv1.ErrorCode_ERROR_CODE_NOT_LEADER {
		return nil, consensus.ErrNotLeader // leadership moved on; the entry never entered the log
	}
	return resp.GetResult(), nil
}

// readBarrier makes the local replica at least as new as the leader's
// commit index when the read began, so a read is linearizable. A stale read
// skips it and serves whatever this replica has.
func (n *Node) readBarrier(ctx context.Context, c yrdv1.ReadConsistency) error {
	if c == yrdv1.ReadConsistency_READ_CONSISTENCY_STALE || (unsafeStaleReads() && !n.raft.IsLeader()) {
		return nil // the second case is a test-only broken mode (unsafe_stale_reads.go)
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	for {
		index, err := n.readIndexOnce(ctx)
		if errors.Is(err, consensus.ErrNotLeader) || errors.Is(err, errNoLeaderYet) {
			if qerr := n.quorumLoss(ctx); qerr != nil {
				return qerr
			}
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
				return errorf(ErrUnavailable, "no leader confirmed the read before the deadline: %v", err)
			}
		}
		if err != nil {
			return err
		}
		return n.raft.WaitApplied(ctx, index)
	}
}

func (n *Node) readIndexOnce(ctx context.Context) (uint64, error) {
	if n.raft.IsLeader() {
		return n.raft.ReadIndex(ctx)
	}
	if n.raft.Leader() == "" {
		return 0, errNoLeaderYet
	}
	return n.leaderReads.Do(ctx, n.askLeaderReadIndex)
}

// askLeaderReadIndex asks the leader for its read index on behalf of every
// read that joined the round, so concurrent reads on a follower cost one
// request to the leader rather than one each. Its deadline is its own: the
// round serves callers whose contexts differ.
func (n *Node) askLeaderReadIndex() (uint64, error) {
	ctx, cancel := context.WithTimeout(n.base, n.cfg.ForwardTimeout)
	defer cancel()
	client, err := n.leaderPeer()
	if err != nil {
		return 0, err
	}
	resp, err := client.ReadIndex(ctx, &yrdv1grpc.ReadIndexRequest{})
	if status.Code(err) == codes.Unavailable {
		// Reads are safe to retry; if none succeeds, the client learns
		// which hop failed.
		reason := n.hopFailed("the leader", n.raft.Leader(), err).Error()
		return 0, &domainError{kind: consensus.ErrNotLeader, msg: reason}
	} else if err != nil {
		return 0, fromStatus(err)
	}
	return resp.GetIndex(), nil
}
