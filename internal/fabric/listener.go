package fabric

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// listener hands inbound streams of one protocol to Accept. It owns no
// goroutine: libp2p runs the stream handler on its own per-stream goroutine,
// which waits here until Accept takes the stream or the listener closes.
type listener struct {
	h     *Host
	proto protocol.ID
	conns chan *Conn
	done  chan struct{}
	once  sync.Once
}

var _ net.Listener = (*listener)(nil)

func newListener(h *Host, proto protocol.ID) *listener {
	return &listener{
		h:     h,
		proto: proto,
		conns: make(chan *Conn),
		done:  make(chan struct{}),
	}
}

// handle is the libp2p stream handler.
func (l *listener) handle(s network.Stream) {
	// The connection was admitted when it was opened, but the member may have
	// been removed since; refuse its new streams even before ClosePeer runs.
	if id := s.Conn().RemotePeer(); !l.h.gate.Admit(id) {
		_ = s.Reset()
		if l.h.refused != nil {
			l.h.refused(Refusal{Peer: id, Remote: s.Conn().RemoteMultiaddr(), Stream: true})
		}
		return
	}
	select {
	case l.conns <- newConn(s):
	case <-l.done:
		_ = s.Reset()
	}
}

// Accept waits for the next inbound stream. After Close it returns an error
// wrapping net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, l.closedErr()
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.closedErr()
	}
}

func (l *listener) closedErr() error {
	return &net.OpError{Op: "accept", Net: "libp2p", Addr: l.Addr(), Err: net.ErrClosed}
}

// Close removes the stream handler, so peers can no longer open streams of
// this protocol, and unblocks Accept. Streams not yet accepted are reset.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.h.removeListener(l)
	})
	return nil
}

// Addr returns this host's peer id as an Addr.
func (l *listener) Addr() net.Addr { return Addr{ID: l.h.ID()} }

// raftLayer is a raft.StreamLayer over ProtocolRaft. Raft addresses are peer
// id strings.
type raftLayer struct {
	*listener
}

var _ raft.StreamLayer = raftLayer{}

// Dial opens a raft stream to the peer whose id is address.
func (r raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("fabric: raft address %q is not a peer id: %w", address, err)
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return r.h.Dial(ctx, id, ProtocolRaft)
}
