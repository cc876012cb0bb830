package node

import (
	"context"
	"errors"
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
		grpc.WithTransportCredentials(insecure.NewCredentials()))
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
		return nil, storageUnavailable(err)
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
				return nil, errorf(ErrUnavailable, "no leader accepted the write before the deadline (last: %v); leader: %q", err, n.leaderAPIAddr())
			}
		}
		if errors.Is(err, consensus.ErrStorageFailed) {
			return nil, storageUnavailable(err)
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
func storageUnavailable(err error) error {
	return errorf(ErrUnavailable, "this node takes no writes: %v; it needs a restart, which recovers from its disk; "+
		"send writes to another member meanwhile", err)
}

func (n *Node) proposeOnce(ctx context.Context, cmd *yrdv1.Command) (*yrdv1.CommandResult, error) {
	if n.raft.IsLeader() {
		return n.raft.Apply(ctx, cmd)
	}
	if n.raft.Leader() == "" {
		return nil, errNoLeaderYet
	}
	client, err := n.leaderPeer()
	if err != nil {
		return nil, err
	}
	resp, err := client.Apply(ctx, &yrdv1grpc.ApplyRequest{Command: cmd})
	if status.Code(err) == codes.Unavailable {
		// Tell the client where the leader is, so it can go there itself.
		return nil, errorf(ErrUnavailable, "the leader (%s) cannot be reached from %s: %s; its API is at %s",
			n.raft.Leader(), n.cfg.City, status.Convert(err).Message(), n.leaderAPIAddr())
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
