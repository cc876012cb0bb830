package fabric

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
)

// Config configures a Host.
type Config struct {
	// Key is the node's ed25519 identity (see LoadOrCreateKey).
	Key crypto.PrivKey
	// ListenAddrs are TCP multiaddrs to listen on, e.g.
	// /ip4/127.0.0.1/tcp/7411. The host listens on these and nothing else.
	ListenAddrs []string
	// Gate admits peers; see Gate.
	Gate Gate
	// Refused, if set, is told of every inbound connection and stream the
	// Gate refuses, so the node can put the attempt on record. It runs on
	// libp2p's connection paths, like Gate.Admit: it must be fast and
	// must not block.
	Refused func(Refusal)

	// The following let libp2p reach outside the configured peers and are
	// off by default.

	// EnableNATPortMap asks the local router (UPnP / NAT-PMP) to map the
	// listen ports.
	EnableNATPortMap bool
	// EnableRelay lets the host dial and be dialed through circuit relays.
	EnableRelay bool
	// EnableHolePunching enables DCUtR hole punching.
	EnableHolePunching bool
	// EnableAutoNAT runs the AutoNAT service, dialing peers back on request
	// to tell them whether they are reachable.
	EnableAutoNAT bool

	// Logger receives the fabric's own log messages; nil discards them.
	Logger *slog.Logger
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.Key == nil {
		return errors.New("fabric: config: Key is required")
	}
	if c.Key.Type() != crypto.Ed25519 {
		return fmt.Errorf("fabric: config: Key is a %s key, want Ed25519", c.Key.Type())
	}
	if c.Gate == nil {
		return errors.New("fabric: config: Gate is required")
	}
	if len(c.ListenAddrs) == 0 {
		return errors.New("fabric: config: at least one listen address is required")
	}
	for _, s := range c.ListenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("fabric: config: listen address %q: %w", s, err)
		}
		// Only the TCP transport is enabled, and a listen address names an IP.
		ps := a.Protocols()
		if len(ps) != 2 || (ps[0].Code != ma.P_IP4 && ps[0].Code != ma.P_IP6) || ps[1].Code != ma.P_TCP {
			return fmt.Errorf("fabric: config: listen address %q is not of the form /ip4|ip6/<ip>/tcp/<port>", s)
		}
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}
