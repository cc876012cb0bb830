// Package testnet is the in-process test harness: a dev delta (package
// devnet) of yrdnode city nodes in one process, with what only tests need
// on top: finding the leader, partitioning the fabric, and setting the
// policy for exact answers. The system tests and the benchmarks build their
// clusters with it; the yrdnode binary never links it (internal/archtest
// checks that).
package testnet

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/devnet"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// Options describe a cluster; see devnet.Options.
type Options = devnet.Options

// FastRaft is raft for in-process clusters; see devnet.FastRaft.
func FastRaft() consensus.Config { return devnet.FastRaft() }

// Cluster is a running in-process delta with the harness's controls.
type Cluster struct {
	*devnet.Cluster
}

// Start brings up every city and waits until all are ready members.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := devnet.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Cluster{c}, nil
}

// Leader waits for a leader among the running nodes and returns its index.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	for {
		for i := range c.Len() {
			if n := c.Node(i); n != nil && n.Raft().IsLeader() {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("testnet: no leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Partition splits the running nodes into groups that cannot reach each
// other; nodes in no group are cut off from everyone. Heal undoes it.
func (c *Cluster) Partition(groups ...[]int) {
	side := make(map[string]int) // peer id → group
	for g, members := range groups {
		for _, i := range members {
			if n := c.Node(i); n != nil {
				side[n.PeerID().String()] = g + 1
			}
		}
	}
	for i := range c.Len() {
		n := c.Node(i)
		if n == nil {
			continue
		}
		mine := side[n.PeerID().String()]
		n.SetPeerFilter(func(id peer.ID) bool { return mine != 0 && side[id.String()] == mine })
	}
}

// Heal lifts every partition.
func (c *Cluster) Heal() {
	for i := range c.Len() {
		if n := c.Node(i); n != nil {
			n.SetPeerFilter(nil)
		}
	}
}

// UpdatePolicy changes the delta's policy parameters as city i's operator
// would: it reads the current ones, applies edit and proposes the result
// for the version it read.
func (c *Cluster) UpdatePolicy(ctx context.Context, i int, edit func(*yrdv1.PolicyParams)) error {
	ps := yrdv1grpc.NewPolicyServiceClient(c.Conn(i))
	cur, err := ps.GetPolicy(ctx, &yrdv1.GetPolicyRequest{})
	if err != nil {
		return err
	}
	params := cur.GetParams()
	edit(params)
	_, err = ps.UpdatePolicy(ctx, &yrdv1.UpdatePolicyRequest{Params: params, ExpectedVersion: cur.GetParams().GetVersion()})
	return err
}

// NoiseOff sets the per-query epsilon so high, and the budget with it,
// that calibrated noise rounds to nothing: what an operator who wants
// exact answers everywhere would have to do, and what tests of exact
// mechanics (merging, formats, receipts) do. Sums are still rounded to
// whole numbers, as every noisy sum is.
func NoiseOff(p *yrdv1.PolicyParams) {
	p.MaxQueryEpsilon, p.DefaultQueryEpsilon, p.PrivacyBudget = 1e12, 1e12, 1e300
}
