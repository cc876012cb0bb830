// Package fabric is the node-to-node network of yrdnode.
//
// Every connection between city nodes runs over go-libp2p: TCP, secured with
// Noise and multiplexed with yamux. Noise proves each side holds the ed25519
// key behind its peer id, so a peer id is both the node's address and its
// authenticated identity. A [Gate] (backed by the replicated member registry)
// decides which peer ids may connect at all; it is consulted for every new
// connection, inbound and outbound, once the handshake has proved the key.
//
// On top of that the package offers plain [net.Conn] and [net.Listener]
// adapters per protocol, so that hashicorp/raft ([Host.RaftLayer]) and gRPC
// ([Host.Listen], [Host.Dialer]) run over the fabric unchanged. Servers learn
// the authenticated caller with [PeerIDFromAddr].
//
// The libp2p host is configured explicitly rather than from libp2p's
// defaults: TCP only, listening only on the configured addresses, and no
// discovery (no mDNS, no DHT, no bootstrap peers). It dials only admitted
// peers, at the addresses given with [Host.SetPeerAddrs] or announced by
// those peers themselves over identify once connected. NAT port mapping,
// relays, hole punching and the AutoNAT service stay off unless enabled in
// [Config].
package fabric
