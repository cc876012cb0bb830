package node

import (
	"context"
	"errors"
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
	if st := status.Convert(err); st.Code() == codes.Unavailable {
		// The leader's own verdict (not leader, leadership lost) comes with
		// its outcome; pass it on as it is.
		if outcome := statusOutcome(st); outcome != "" {
			return nil, fromStatus(err)
		}
		// Otherwise the transport failed. Tell the client where the leader
		// is, so it can go there itself, and whether the write may have
		// reached it: a failed dial sent nothing, a broken connection may
		// have delivered it.
		mark := outcomeUnknown
		if isDialFailure(st) {
			mark = notApplied
		}
		return nil, mark("the leader (%s) cannot be reached from %s: %s; its API is at %s",
			n.raft.Leader(), n.cfg.City, st.Message(), n.leaderAPIAddr())
	} else if err != nil {
		return nil, fromStatus(err)
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
		return 0, consensus.ErrNotLeader // reads are safe to retry
	} else if err != nil {
		return 0, fromStatus(err)
	}
	return resp.GetIndex(), nil
}
