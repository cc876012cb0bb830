package consensus

import (
	"time"

	"github.com/hashicorp/raft"
)

// Metrics receives what raft does on this node, for the node's own
// Prometheus registry. hashicorp/raft reports its timings through
// go-metrics' process-global sink, which cannot tell apart the nodes of
// one process (the tests run several); these are measured per node, here.
// Calls come from raft's goroutines and must not block.
type Metrics interface {
	// ObserveApply is how long a command proposed on this node took from
	// Apply to its result (commit and apply here), whatever the outcome.
	ObserveApply(d time.Duration)
	// ObserveLogStore is how long one batch took to be appended to the
	// raft log, its fdatasync included.
	ObserveLogStore(d time.Duration)
	// LeaderChanged: this node saw the cluster's leader change, to another
	// node or to none.
	LeaderChanged()
}

// WithMetrics reports this node's raft timings and leader changes to m.
func WithMetrics(m Metrics) Option { return func(o *options) { o.metrics = m } }

// noMetrics is Metrics when none were asked for.
type noMetrics struct{}

func (noMetrics) ObserveApply(time.Duration)    {}
func (noMetrics) ObserveLogStore(time.Duration) {}
func (noMetrics) LeaderChanged()                {}

// watchLeader reports every leader change raft observes until Close. The
// observer does not block raft: an observation that finds the channel
// full is dropped by raft, so a burst may be undercounted, never stall.
func (r *Raft) watchLeader(m Metrics) {
	defer r.watching.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.raft.RegisterObserver(obs)
	defer r.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			m.LeaderChanged()
		case <-r.stop:
			return
		}
	}
}
