package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/yrd-exchange/yrdnode/consensus"
)

// A status whose ErrorInfo carries this metadata key refused the call
// because no leader can be elected from where it was asked: retrying
// before an operator brings voters back only runs the client's deadline
// down (internal/cli does not retry it).
const (
	MetaQuorum     = "quorum"
	MetaQuorumLost = "lost"
)

// reachTimeout bounds one probe of a voter. A stopped peer refuses at
// once and a partitioned one is refused by the gate; only a silent
// network costs the full bound.
const reachTimeout = time.Second

// voterReach is this node's current view of the voters: how many there
// are and the cities (or peer ids) of those it cannot reach now.
type voterReach struct {
	voters int
	down   []string
}

func (v voterReach) quorumLost() bool { return v.voters > 0 && v.voters-len(v.down) <= v.voters/2 }

// String is the reason there is no leader, as an operator reads it.
func (v voterReach) String() string {
	s := fmt.Sprintf("no leader: %d of %d voters unreachable", len(v.down), v.voters)
	if len(v.down) > 0 {
		s += " (" + strings.Join(v.down, ", ") + ")"
	}
	if v.quorumLost() {
		return s + fmt.Sprintf("; electing one needs %d reachable voters", v.voters/2+1)
	}
	return s + "; an election is under way"
}

// reachVoters probes every voter of the raft configuration over the
// fabric, concurrently. A connection opened now counts, not a cached
// verdict, so a voter that just came back counts as reachable.
func (n *Node) reachVoters(ctx context.Context) (voterReach, error) {
	servers, err := n.raft.Servers()
	if err != nil {
		return voterReach{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
		v  voterReach
	)
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		v.voters++
		if s.ID == n.id.String() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.reach(ctx, s.ID) != nil {
				mu.Lock()
				v.down = append(v.down, n.memberName(s.ID))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return v, nil
}

func (n *Node) reach(ctx context.Context, id string) error {
	pid, err := peer.Decode(id)
	if err != nil {
		return err
	}
	return n.host.Reach(ctx, pid)
}

// memberName is a member's city, or its peer id if the registry has none.
func (n *Node) memberName(id string) string {
	if m, ok := n.catalog.Member(id); ok && m.GetCity() != "" {
		return m.GetCity()
	}
	return id
}

// quorumLoss returns the error for a write or linearizable read on a node
// that knows no leader and cannot reach a majority of the voters: no
// election can succeed until voters come back, so waiting for the
// client's deadline would only hide the cause. It returns nil while a
// leader is known or an election can still succeed.
func (n *Node) quorumLoss(ctx context.Context) error {
	if n.raft.Leader() != "" {
		return nil
	}
	v, err := n.reachVoters(ctx)
	if err != nil || !v.quorumLost() {
		return nil
	}
	return &domainError{kind: consensus.ErrNoLeader, msg: v.String(), outcome: ReasonNotApplied,
		meta: map[string]string{MetaQuorum: MetaQuorumLost}}
}

// noLeaderReason is what cluster status shows in place of a leader.
func (n *Node) noLeaderReason(ctx context.Context) string {
	v, err := n.reachVoters(ctx)
	if err != nil {
		return "no leader: " + err.Error()
	}
	return v.String()
}
