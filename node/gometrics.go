package node

import (
	"errors"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gometricsprom "github.com/hashicorp/go-metrics/prometheus"
)

// hashicorp/raft reports its own timings (commit, FSM apply, log store,
// replication) to go-metrics' global sink, one per process. The daemon
// runs one node per process and points that sink at its registry
// (Config.RaftLibraryMetrics); a process of several nodes (tests, the
// testnet) must not, as the numbers of all its nodes would mix under one
// name. What every node needs per node is measured by consensus itself
// (Metrics) and read from raft (stateCollector).
var (
	raftLibraryMu    sync.Mutex
	raftLibraryOwner *Node // the node whose registry the global sink feeds
)

// installRaftLibraryMetrics points go-metrics' global sink at n's
// registry, if n asks for it.
func (n *Node) installRaftLibraryMetrics() error {
	if !n.cfg.RaftLibraryMetrics {
		return nil
	}
	raftLibraryMu.Lock()
	defer raftLibraryMu.Unlock()
	if raftLibraryOwner != nil {
		return errors.New("config: RaftLibraryMetrics: another node of this process already exports hashicorp/raft's process-wide metrics")
	}
	// Expired series (a timer raft stopped reporting) go after a minute,
	// checked when scraped: the sink runs no goroutine of its own.
	sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: n.metrics.reg,
		Expiration: time.Minute, Name: "yrd_raft_library_sink"})
	if err != nil {
		return err
	}
	conf := gometrics.DefaultConfig("")
	// No hostname prefix (Prometheus labels the target), and no runtime
	// sampler goroutine: the Go collector reports the runtime already.
	conf.EnableHostname, conf.EnableRuntimeMetrics = false, false
	if _, err := gometrics.NewGlobal(conf, sink); err != nil {
		n.metrics.reg.Unregister(sink)
		return err
	}
	raftLibraryOwner = n
	return nil
}

// uninstallRaftLibraryMetrics discards raft's metrics again if n had
// them, so a closed node's registry is no longer fed.
func (n *Node) uninstallRaftLibraryMetrics() {
	raftLibraryMu.Lock()
	defer raftLibraryMu.Unlock()
	if raftLibraryOwner != n {
		return
	}
	conf := gometrics.DefaultConfig("")
	conf.EnableHostname, conf.EnableRuntimeMetrics = false, false
	_, _ = gometrics.NewGlobal(conf, &gometrics.BlackholeSink{})
	raftLibraryOwner = nil
}
