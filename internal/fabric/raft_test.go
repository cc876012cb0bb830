package fabric

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// listFSM records distinct applied entries in order. Duplicates are ignored
// so that the test may retry an entry whose outcome a leadership change left
// unknown.
type listFSM struct {
	mu      sync.Mutex
	entries []string
	seen    map[string]bool
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	if e := string(l.Data); !f.seen[e] {
		f.seen[e] = true
		f.entries = append(f.entries, e)
	}
	return len(f.entries)
}

func (f *listFSM) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.entries...)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }

func (f *listFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

func TestRaftClusterReplicatesOverFabric(t *testing.T) {
	const n = 3
	hosts, servers := fabricMembers(t, n)
	rafts := make([]*raft.Raft, n)
	fsms := make([]*listFSM, n)
	for i, h := range hosts {
		rafts[i], fsms[i] = startFabricRaft(t, h)
	}
	if err := rafts[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	const entries = 50
	applyThroughLeader(t, rafts, entries)
	for i, f := range fsms {
		eventually(t, 10*time.Second, fmt.Sprintf("node %d to apply %d entries", i, entries), func() bool {
			return len(f.snapshot()) >= entries
		})
		got := f.snapshot()
		if len(got) != entries {
			t.Fatalf("node %d applied %d entries, want %d", i, len(got), entries)
		}
		for j, e := range got {
			if want := fmt.Sprintf("entry-%02d", j); e != want {
				t.Fatalf("node %d entry %d = %q, want %q", i, j, e, want)
			}
		}
	}
}

// fabricMembers starts n hosts that admit each other and know each
// other's addresses, and returns them with their raft configuration.
func fabricMembers(t *testing.T, n int) ([]*Host, []raft.Server) {
	t.Helper()
	gates := make([]*memberGate, n)
	hosts := make([]*Host, n)
	for i := range hosts {
		gates[i] = newMemberGate()
		hosts[i] = newTestHost(t, gates[i])
	}
	var servers []raft.Server
	for i, h := range hosts {
		for j, other := range hosts {
			if i != j {
				gates[i].add(other.ID())
			}
		}
		servers = append(servers, raft.Server{
			ID:      raft.ServerID(h.ID().String()),
			Address: raft.ServerAddress(h.ID().String()),
		})
	}
	introduce(t, hosts...)
	return hosts, servers
}

// startFabricRaft starts a raft node on h whose transport is the fabric's
// raft layer, addressed by peer id.
func startFabricRaft(t *testing.T, h *Host) (*raft.Raft, *listFSM) {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(h.ID().String())
	// Fast, but with some room for -race on a busy machine.
	conf.HeartbeatTimeout = 500 * time.Millisecond
	conf.ElectionTimeout = 500 * time.Millisecond
	conf.LeaderLeaseTimeout = 250 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: io.Discard})

	trans := raft.NewNetworkTransport(h.RaftLayer(), 3, 2*time.Second, io.Discard)
	if got := string(trans.LocalAddr()); got != h.ID().String() {
		t.Fatalf("transport local address %q, want the peer id", got)
	}
	fsm := &listFSM{}
	r, err := raft.NewRaft(conf, fsm, raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	// Registered after the host's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Errorf("raft shutdown: %v", err)
		}
		_ = trans.Close()
	})
	return r, fsm
}

// applyThroughLeader applies entries "entry-00", "entry-01", ... in order
// through whichever raft leads.
func applyThroughLeader(t *testing.T, rafts []*raft.Raft, entries int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < entries; i++ {
		data := []byte(fmt.Sprintf("entry-%02d", i))
		// On a loaded machine (-race) the leader can change under us. Retry
		// with the new leader; the FSM ignores a duplicate if the first
		// attempt was committed after all, and raft keeps the order.
		for {
			err := waitForLeader(t, rafts).Apply(data, 5*time.Second).Error()
			if err == nil {
				break
			}
			if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
				t.Fatalf("apply %d: %v", i, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("apply %d: still failing after retries: %v", i, err)
			}
			t.Logf("apply %d: %v; retrying", i, err)
		}
	}
}

// waitForLeader returns the raft that leads, waiting for one.
func waitForLeader(t *testing.T, rafts []*raft.Raft) *raft.Raft {
	t.Helper()
	var l *raft.Raft
	eventually(t, 10*time.Second, "a leader", func() bool {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				l = r
				return true
			}
		}
		return false
	})
	return l
}
