package fabric

import (
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Addr is the net.Addr of a fabric connection end: the peer id, which Noise
// has authenticated for the remote end.
type Addr struct {
	ID peer.ID
}

// Network returns "libp2p".
func (a Addr) Network() string { return "libp2p" }

// String returns the peer id in its usual text form.
func (a Addr) String() string { return a.ID.String() }

// PeerIDFromAddr returns the peer id carried by a fabric address, e.g. the
// RemoteAddr of an accepted connection or grpc's peer.FromContext(ctx).Addr.
// ok is false for any other kind of address.
func PeerIDFromAddr(a net.Addr) (peer.ID, bool) {
	switch a := a.(type) {
	case Addr:
		return a.ID, a.ID != ""
	case *Addr:
		if a == nil {
			return "", false
		}
		return a.ID, a.ID != ""
	}
	return "", false
}

// Conn is a libp2p stream presented as a net.Conn.
type Conn struct {
	s      network.Stream
	local  Addr
	remote Addr
}

var _ net.Conn = (*Conn)(nil)

func newConn(s network.Stream) *Conn {
	c := s.Conn()
	return &Conn{
		s:      s,
		local:  Addr{ID: c.LocalPeer()},
		remote: Addr{ID: c.RemotePeer()},
	}
}

// Read reads from the stream; it returns io.EOF once the peer closed its side.
func (c *Conn) Read(b []byte) (int, error) { return c.s.Read(b) }

// Write writes to the stream.
func (c *Conn) Write(b []byte) (int, error) { return c.s.Write(b) }

// Close closes both directions of the stream; the peer reads io.EOF.
func (c *Conn) Close() error { return c.s.Close() }

// CloseWrite half-closes the stream: the peer reads io.EOF, but this side
// can still read what the peer sends.
func (c *Conn) CloseWrite() error { return c.s.CloseWrite() }

// CloseRead stops reading; the peer's further writes fail.
func (c *Conn) CloseRead() error { return c.s.CloseRead() }

// Reset aborts the stream in both directions; both sides see an error rather
// than io.EOF.
func (c *Conn) Reset() error { return c.s.Reset() }

// LocalAddr returns this node's peer id as an Addr.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the authenticated remote peer id as an Addr.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// RemotePeer returns the authenticated remote peer id.
func (c *Conn) RemotePeer() peer.ID { return c.remote.ID }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }
