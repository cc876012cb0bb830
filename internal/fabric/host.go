package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Protocols spoken over the fabric.
const (
	ProtocolRaft protocol.ID = "/yrd/raft/1.0.0"
	ProtocolRPC  protocol.ID = "/yrd/rpc/1.0.0"
)

// ErrNotAdmitted is returned when dialing a peer the Gate does not admit.
var ErrNotAdmitted = errors.New("fabric: peer is not admitted")

// Host is this node's endpoint on the fabric. It is safe for concurrent use.
type Host struct {
	p2p     host.Host
	gate    Gate
	refused func(Refusal) // may be nil
	log     *slog.Logger
	notifee *network.NotifyBundle

	mu        sync.Mutex
	listeners map[protocol.ID]*listener
	closed    bool

	closeOnce sync.Once
	closeErr  error
}

// New starts a libp2p host as described by cfg. It listens at once; peers
// are dialed on demand once their addresses are known (SetPeerAddrs).
func New(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.logger()

	// Every option is spelled out so that libp2p's defaults (QUIC, WebRTC,
	// WebSocket, relays, wildcard listen addresses, Prometheus) never apply.
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionGater(&gater{gate: cfg.Gate, refused: cfg.Refused, log: log}),
		libp2p.DisableMetrics(),
	}
	if cfg.EnableRelay {
		opts = append(opts, libp2p.EnableRelay())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if cfg.EnableNATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if cfg.EnableHolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if cfg.EnableAutoNAT {
		opts = append(opts, libp2p.EnableNATService())
	} else {
		// Without this libp2p runs the AutoNAT client, which asks peers to
		// dial back our addresses to learn whether we are reachable. A city
		// node's addresses are configured, so reachability is a fact, not
		// something to probe for.
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	if !cfg.EnableNATPortMap && !cfg.EnableRelay && !cfg.EnableHolePunching && !cfg.EnableAutoNAT {
		// Without NAT traversal our addresses are exactly the listen
		// addresses; don't advertise what peers claim to observe.
		opts = append(opts, libp2p.DisableIdentifyAddressDiscovery())
	}

	p2p, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("fabric: start libp2p host: %w", err)
	}
	h := &Host{
		p2p:       p2p,
		gate:      cfg.Gate,
		refused:   cfg.Refused,
		log:       log,
		listeners: make(map[protocol.ID]*listener),
	}
	// Backstop for revocation: a connection can pass the gate just before a
	// member is removed and be registered just after ClosePeer ran. Checking
	// again once it is registered (before any of its streams are accepted)
	// closes that window.
	h.notifee = &network.NotifyBundle{ConnectedF: h.recheckConn}
	p2p.Network().Notify(h.notifee)
	return h, nil
}

func (h *Host) recheckConn(_ network.Network, c network.Conn) {
	if id := c.RemotePeer(); !h.gate.Admit(id) {
		h.log.Info("fabric: closing connection to peer no longer admitted", "peer", id)
		_ = c.Close()
	}
}

// ID returns this node's peer id.
func (h *Host) ID() peer.ID { return h.p2p.ID() }

// Addrs returns the addresses the host listens on, with actual ports (for
// a configured port 0) and without a /p2p suffix. A wildcard listen address
// is expanded to the addresses of the local interfaces.
func (h *Host) Addrs() []ma.Multiaddr {
	listen := h.p2p.Network().ListenAddresses()
	for _, a := range listen {
		if manet.IsIPUnspecified(a) {
			ifaces, err := manet.InterfaceMultiaddrs()
			if err != nil {
				break
			}
			if resolved, err := manet.ResolveUnspecifiedAddresses(listen, ifaces); err == nil {
				return resolved
			}
			break
		}
	}
	return listen
}

// AddrStrings returns Addrs as strings, the form kept in the member registry.
func (h *Host) AddrStrings() []string {
	addrs := h.Addrs()
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// SetPeerAddrs sets the addresses at which peer id is dialed, replacing any
// set before; they are kept until replaced. An address may carry a /p2p/<id>
// suffix if it names id. Setting this host's own addresses is a no-op, so a
// caller may pass every member of the registry.
func (h *Host) SetPeerAddrs(id peer.ID, addrs []string) error {
	if err := id.Validate(); err != nil {
		return fmt.Errorf("fabric: set peer addrs: invalid peer id: %w", err)
	}
	parsed := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("fabric: set peer addrs for %s: address %q: %w", id, s, err)
		}
		transport, suffix := peer.SplitAddr(a)
		if transport == nil {
			return fmt.Errorf("fabric: set peer addrs for %s: address %q has no transport part", id, s)
		}
		if suffix != "" && suffix != id {
			return fmt.Errorf("fabric: set peer addrs for %s: address %q names peer %s", id, s, suffix)
		}
		parsed = append(parsed, transport)
	}
	if id == h.ID() {
		return nil
	}

	ps := h.p2p.Peerstore()
	old := ps.Addrs(id)
	// Set the new addresses before dropping the old ones, so a concurrent
	// dial never finds none.
	ps.SetAddrs(id, parsed, peerstore.PermanentAddrTTL)
	for _, a := range old {
		if !containsAddr(parsed, a) {
			ps.SetAddr(id, a, 0)
		}
	}
	return nil
}

func containsAddr(list []ma.Multiaddr, a ma.Multiaddr) bool {
	for _, b := range list {
		if a.Equal(b) {
			return true
		}
	}
	return false
}

// ClosePeer closes every connection to id, which resets all their streams.
// Call it after the Gate stops admitting id (a member was removed): the gate
// then refuses any reconnection, in either direction.
func (h *Host) ClosePeer(id peer.ID) {
	if err := h.p2p.Network().ClosePeer(id); err != nil {
		h.log.Warn("fabric: closing connections to peer", "peer", id, "err", err)
	}
}

// Connected reports whether the host has an open connection to id.
func (h *Host) Connected(id peer.ID) bool {
	return h.p2p.Network().Connectedness(id) == network.Connected
}

// Listen returns a listener for inbound streams of protocol, each accepted as
// a net.Conn whose RemoteAddr names the authenticated peer. Closing the
// listener stops accepting the protocol. Listening again on the same
// protocol replaces (and closes) the previous listener.
func (h *Host) Listen(protocol protocol.ID) net.Listener {
	return h.listen(protocol)
}

func (h *Host) listen(proto protocol.ID) *listener {
	l := newListener(h, proto)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = l.Close()
		return l
	}
	prev := h.listeners[proto]
	h.listeners[proto] = l
	h.p2p.SetStreamHandler(proto, l.handle)
	h.mu.Unlock()
	if prev != nil {
		_ = prev.Close() // no longer registered, so it leaves l's handler alone
	}
	return l
}

// removeListener drops l's stream handler unless l was already replaced.
func (h *Host) removeListener(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listeners[l.proto] == l {
		delete(h.listeners, l.proto)
		if !h.closed {
			h.p2p.RemoveStreamHandler(l.proto)
		}
	}
}

// Dial opens a stream of protocol to peer id, connecting first if needed.
// It fails with ErrNotAdmitted if the Gate does not admit id.
func (h *Host) Dial(ctx context.Context, id peer.ID, protocol protocol.ID) (net.Conn, error) {
	if id == h.ID() {
		return nil, errors.New("fabric: dial: cannot dial self")
	}
	// The connection gater only sees new connections; checking here also
	// stops new streams over a connection opened before a revocation.
	if !h.gate.Admit(id) {
		return nil, fmt.Errorf("fabric: dial %s: %w", id, ErrNotAdmitted)
	}
	s, err := h.p2p.NewStream(ctx, id, protocol)
	if err != nil {
		return nil, fmt.Errorf("fabric: dial %s %s: %w", id, protocol, err)
	}
	return newConn(s), nil
}

// Reach reports whether peer id can be reached now: nil if a connection
// is open, else the outcome of opening one within ctx. Unlike a cached
// verdict it is current: a peer that just came back is reached at once,
// past libp2p's dial backoff.
func (h *Host) Reach(ctx context.Context, id peer.ID) error {
	if !h.gate.Admit(id) {
		return fmt.Errorf("fabric: reach %s: %w", id, ErrNotAdmitted)
	}
	if h.p2p.Network().Connectedness(id) == network.Connected {
		return nil
	}
	ctx = network.WithForceDirectDial(ctx, "reachability probe")
	if err := h.p2p.Connect(ctx, peer.AddrInfo{ID: id}); err != nil {
		return fmt.Errorf("fabric: reach %s: %w", id, err)
	}
	return nil
}

// Dialer returns a dial function for protocol that takes a peer id string as
// the address, for grpc.WithContextDialer with a "passthrough:///<peer id>"
// target.
func (h *Host) Dialer(protocol protocol.ID) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		id, err := peer.Decode(addr)
		if err != nil {
			return nil, fmt.Errorf("fabric: dial: address %q is not a peer id: %w", addr, err)
		}
		return h.Dial(ctx, id, protocol)
	}
}

// RaftLayer returns a raft.StreamLayer over ProtocolRaft, for
// raft.NewNetworkTransport. Raft server addresses are peer id strings. Call
// it once: like Listen, a second call replaces the first layer's listener.
func (h *Host) RaftLayer() raft.StreamLayer {
	return raftLayer{listener: h.listen(ProtocolRaft)}
}

// Close closes all listeners and connections and stops the libp2p host.
// Calling it again returns the first result.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true // from now on Listen returns closed listeners
		ls := make([]*listener, 0, len(h.listeners))
		for _, l := range h.listeners {
			ls = append(ls, l)
		}
		h.mu.Unlock()
		for _, l := range ls {
			_ = l.Close()
		}
		h.p2p.Network().StopNotify(h.notifee)
		h.closeErr = h.p2p.Close()
	})
	return h.closeErr
}
