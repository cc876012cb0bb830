package node

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reports, at scrape time, what the node's parts keep as
// state rather than as events: raft's state, term and indexes, and the
// audit chain's length and last anchor. Reading them when scraped costs
// nothing between scrapes and is never stale.
type stateCollector struct{ n *Node }

var (
	raftStateDesc = prometheus.NewDesc("yrd_raft_state",
		"1 for this node's current raft state (follower, candidate, leader, shutdown), 0 for the others.", []string{"state"}, nil)
	raftHasLeaderDesc = prometheus.NewDesc("yrd_raft_has_leader", "1 while this node knows a leader, 0 without (quorum lost).", nil, nil)
	raftTermDesc      = prometheus.NewDesc("yrd_raft_term", "This node's current raft term.", nil, nil)
	raftCommitDesc    = prometheus.NewDesc("yrd_raft_commit_index", "The latest raft index this node knows committed.", nil, nil)
	raftAppliedDesc   = prometheus.NewDesc("yrd_raft_applied_index", "The latest raft index applied to this node's catalog.", nil, nil)
	raftLastDesc      = prometheus.NewDesc("yrd_raft_last_log_index", "The index of the last entry in this node's raft log.", nil, nil)
	auditLengthDesc   = prometheus.NewDesc("yrd_audit_chain_length", "Records in this node's audit chain (the sequence number of its head).", nil, nil)
	anchorAgeDesc     = prometheus.NewDesc("yrd_audit_last_anchor_age_seconds",
		"Seconds since this node last recorded its audit chain head in the catalog (absent until it has, since it started).", nil, nil)
	unanchoredDesc = prometheus.NewDesc("yrd_audit_unanchored_records",
		"Audit records written since the last anchor this node recorded (since it started): a cut tail would lose these undetected.", nil, nil)
)

var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftStateDesc, raftHasLeaderDesc, raftTermDesc, raftCommitDesc, raftAppliedDesc, raftLastDesc,
		auditLengthDesc, anchorAgeDesc, unanchoredDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if r := c.n.raft; r != nil {
		state := r.State()
		for _, s := range raftStates {
			gauge(raftStateDesc, boolValue(s == state), strings.ToLower(s))
		}
		gauge(raftHasLeaderDesc, boolValue(r.Leader() != ""))
		gauge(raftTermDesc, float64(r.Term()))
		gauge(raftCommitDesc, float64(r.CommitIndex()))
		gauge(raftAppliedDesc, float64(r.AppliedIndex()))
		gauge(raftLastDesc, float64(r.LastIndex()))
	}
	if l := c.n.auditLog; l != nil {
		seq, _ := l.Head()
		gauge(auditLengthDesc, float64(seq))
		if at := c.n.anchoredAt.Load(); at != 0 {
			gauge(anchorAgeDesc, time.Since(time.Unix(0, at)).Seconds())
			gauge(unanchoredDesc, float64(seq-min(seq, c.n.anchoredSeq.Load())))
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
