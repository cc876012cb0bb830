package node

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// nodeMetrics are one node's Prometheus metrics, in a registry of its own
// (never the global default one): a process may run several nodes (the
// tests, the testnet), and each is scraped for itself on its admin
// listener. Each fact is counted where it happens, through the ports of
// the parts that know it: the owner pipeline (decisions), consensus (raft
// timings), the budget and export ledger adapters, the audit funnels
// (denials), the gRPC interceptors; gauges are read at scrape time.
type nodeMetrics struct {
	reg *prometheus.Registry

	rpcs          *prometheus.CounterVec
	rpcSeconds    *prometheus.HistogramVec
	queries       *prometheus.CounterVec
	denials       *prometheus.CounterVec
	engineSeconds *prometheus.HistogramVec
	budgetSpent   *prometheus.CounterVec
	exported      *prometheus.CounterVec
	raftApply     prometheus.Histogram
	raftLogStore  prometheus.Histogram
	leaderChanges prometheus.Counter
}

// Latency buckets: from a fsync on a fast disk to a long federated query.
var secondsBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{reg: prometheus.NewRegistry()}
	m.rpcs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "yrd_grpc_requests_total",
		Help: "gRPC calls served, by server (api: the client API, fabric: the members' services), method and status code."},
		[]string{"server", "method", "code"})
	m.rpcSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "yrd_grpc_request_duration_seconds",
		Help: "How long gRPC calls took to serve, by server and method.", Buckets: secondsBuckets}, []string{"server", "method"})
	m.queries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "yrd_queries_total",
		Help: "Queries decided by this node as the data's owner, by final decision, the dataset's classification level and the requester's city."},
		[]string{"decision", "level", "requester_city"})
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "yrd_denials_total",
		Help: "Refusals put on this node's audit record, by rule id (a denied decision counts once for each of its rules)."}, []string{"rule"})
	m.engineSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "yrd_connector_query_duration_seconds",
		Help:    "How long a query of the local data took in its engine, from the call to the end of its rows (a row result's rows stream to the requester meanwhile), by dataset.",
		Buckets: secondsBuckets}, []string{"dataset"})
	m.budgetSpent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "yrd_privacy_budget_spent_epsilon_total",
		Help: "Privacy budget (epsilon) charged by this node as the data's owner, by requesting city and organisation."},
		[]string{"requester_city", "org"})
	m.exported = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "yrd_export_ledger_individuals_total",
		Help: "Individuals newly counted in this node's cross-border export ledger, by exporting organisation and kind (personal, sensitive)."},
		[]string{"org", "kind"})
	m.raftApply = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "yrd_raft_apply_duration_seconds",
		Help: "How long a command proposed on this node took to be committed and applied.", Buckets: secondsBuckets})
	m.raftLogStore = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "yrd_raft_log_store_duration_seconds",
		Help: "How long a batch of raft log entries took to be appended and fsynced.", Buckets: secondsBuckets})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "yrd_raft_leader_changes_total",
		Help: "Leader changes this node observed (to another node or to none)."})
	m.reg.MustRegister(m.rpcs, m.rpcSeconds, m.queries, m.denials, m.engineSeconds, m.budgetSpent, m.exported,
		m.raftApply, m.raftLogStore, m.leaderChanges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *nodeMetrics) observeRPC(server, method string, code codes.Code, d time.Duration) {
	m.rpcs.WithLabelValues(server, method, code.String()).Inc()
	m.rpcSeconds.WithLabelValues(server, method).Observe(d.Seconds())
}

// countDenial counts one refusal (n of them for a summary record) under
// each of its rules.
func (m *nodeMetrics) countDenial(rules []string, n uint64) {
	for _, r := range rules {
		m.denials.WithLabelValues(r).Add(float64(n))
	}
}

// Decided is owner.Metrics.
func (m *nodeMetrics) Decided(effect yrdv1.Effect, level yrdv1.ClassificationLevel, requesterCity string) {
	m.queries.WithLabelValues(effectName(effect), levelName(level), requesterCity).Inc()
}

// consensus.Metrics.
func (m *nodeMetrics) ObserveApply(d time.Duration)    { m.raftApply.Observe(d.Seconds()) }
func (m *nodeMetrics) ObserveLogStore(d time.Duration) { m.raftLogStore.Observe(d.Seconds()) }
func (m *nodeMetrics) LeaderChanged()                  { m.leaderChanges.Inc() }

// effectName and levelName are the short names the CLI uses.
func effectName(e yrdv1.Effect) string {
	switch e {
	case yrdv1.Effect_EFFECT_DENY:
		return "deny"
	case yrdv1.Effect_EFFECT_ALLOW_ROWS:
		return "allow_rows"
	case yrdv1.Effect_EFFECT_ALLOW_AGGREGATES:
		return "allow_aggregates"
	}
	return "unspecified"
}

func levelName(l yrdv1.ClassificationLevel) string {
	return strings.ToLower(strings.TrimPrefix(l.String(), "CLASSIFICATION_LEVEL_"))
}

// timedEngine is a dataset's engine with its queries timed.
type timedEngine struct {
	connector.Engine
	seconds prometheus.Observer
}

func (e timedEngine) Exec(ctx context.Context, st connector.Statement) (connector.ResultRows, error) {
	start := time.Now()
	rows, err := e.Engine.Exec(ctx, st)
	if err != nil {
		e.seconds.Observe(time.Since(start).Seconds())
		return nil, err
	}
	return &timedRows{ResultRows: rows, start: start, seconds: e.seconds}, nil
}

// timedRows observes the query's duration when its rows are closed.
type timedRows struct {
	connector.ResultRows
	start   time.Time
	seconds prometheus.Observer
	closed  bool
}

func (r *timedRows) Close() error {
	if !r.closed {
		r.closed = true
		r.seconds.Observe(time.Since(r.start).Seconds())
	}
	return r.ResultRows.Close()
}

// countingLedger is the export ledger with what it newly records counted.
type countingLedger struct {
	*ledger.Ledger
	exported *prometheus.CounterVec
}

func (l countingLedger) Record(org string, year int, k ledger.Kind, persons []string, limit uint64) (total, added uint64, err error) {
	total, added, err = l.Ledger.Record(org, year, k, persons, limit)
	if err == nil && added > 0 {
		l.exported.WithLabelValues(org, kindName(k)).Add(float64(added))
	}
	return total, added, err
}

func kindName(k ledger.Kind) string {
	if k == ledger.Sensitive {
		return "sensitive"
	}
	return "personal"
}
