package fabric

import (
	"log/slog"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gate decides which peers may talk to this node; in yrdnode it is backed by
// the replicated member registry.
//
// Admit is consulted on every new connection, inbound and outbound. For
// inbound connections it runs after the Noise handshake, so the peer id it
// is asked about is proven: the remote holds that id's private key. It is
// also consulted before dialing a peer, before opening a stream on an
// existing connection ([Host.Dial]) and before handing an inbound stream to a
// [Host.Listen] listener.
//
// Admit is called on libp2p's connection paths: it must be fast (no network
// or disk I/O) and safe for concurrent use.
//
// Revoking a peer only affects new connections and streams; call
// [Host.ClosePeer] to cut the ones it already has.
type Gate interface {
	Admit(peer.ID) bool
}

// GateFunc adapts a function to a Gate.
type GateFunc func(peer.ID) bool

// Admit calls f(id).
func (f GateFunc) Admit(id peer.ID) bool { return f(id) }

// Refusal is an inbound connection, or a stream on one, that the Gate
// refused: what Config.Refused hears of.
type Refusal struct {
	// Peer is the refused peer's id, proven by the Noise handshake.
	Peer peer.ID
	// Remote is the address the peer came from; nil if unknown.
	Remote ma.Multiaddr
	// Stream: a stream refused on a connection opened before the peer
	// stopped being admitted (it is cut soon after).
	Stream bool
}

// gater applies a Gate to libp2p connections. Only peer-level decisions go
// through the Gate; address-level hooks allow everything, because the
// address of a member is not a credential, its key is.
type gater struct {
	gate    Gate
	refused func(Refusal) // may be nil
	log     *slog.Logger
}

var _ connmgr.ConnectionGater = (*gater)(nil)

func (g *gater) InterceptPeerDial(id peer.ID) bool {
	if g.gate.Admit(id) {
		return true
	}
	g.log.Debug("fabric: refused outbound dial to non-member", "peer", id)
	return false
}

func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptAccept allows every inbound socket: before the handshake the peer
// is unknown, and the decision is made in InterceptSecured.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *gater) InterceptSecured(dir network.Direction, id peer.ID, addrs network.ConnMultiaddrs) bool {
	if g.gate.Admit(id) {
		return true
	}
	g.log.Debug("fabric: refused connection from non-member",
		"peer", id, "direction", dir.String(), "remote", addrs.RemoteMultiaddr().String())
	// Outbound, the refusal is this node's own choice, not an attempt.
	if dir == network.DirInbound && g.refused != nil {
		g.refused(Refusal{Peer: id, Remote: addrs.RemoteMultiaddr()})
	}
	return false
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
