package fabric

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// memberGate is a Gate over a mutable member set that records refusals.
type memberGate struct {
	mu      sync.Mutex
	members map[peer.ID]bool
	refused map[peer.ID]int
	all     bool // admit everyone (an outsider's permissive gate)
}

func newMemberGate() *memberGate {
	return &memberGate{members: map[peer.ID]bool{}, refused: map[peer.ID]int{}}
}

func openGate() *memberGate {
	g := newMemberGate()
	g.all = true
	return g
}

func (g *memberGate) Admit(id peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all || g.members[id] {
		return true
	}
	g.refused[id]++
	return false
}

func (g *memberGate) add(ids ...peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		g.members[id] = true
	}
}

func (g *memberGate) remove(id peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.members, id)
}

func (g *memberGate) refusals(id peer.ID) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused[id]
}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestHost starts a host on an ephemeral loopback port, closed at cleanup.
func newTestHost(t testing.TB, gate Gate) *Host {
	t.Helper()
	h, err := New(Config{
		Key:         newKey(t),
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Gate:        gate,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// introduce tells each host the others' addresses.
func introduce(t testing.TB, hosts ...*Host) {
	t.Helper()
	for _, a := range hosts {
		for _, b := range hosts {
			if a == b {
				continue
			}
			if err := a.SetPeerAddrs(b.ID(), b.AddrStrings()); err != nil {
				t.Fatalf("SetPeerAddrs: %v", err)
			}
		}
	}
}

// members returns two hosts that admit each other.
func memberPair(t testing.TB) (a, b *Host, ga, gb *memberGate) {
	t.Helper()
	ga, gb = newMemberGate(), newMemberGate()
	a, b = newTestHost(t, ga), newTestHost(t, gb)
	ga.add(b.ID())
	gb.add(a.ID())
	introduce(t, a, b)
	return a, b, ga, gb
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
