package consensus

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countingMetrics counts what a node reports; leaderChanged receives
// one value per reported leader change, for a test to wait on.
type countingMetrics struct {
	applies, stores atomic.Int64
	leaderChanged   chan struct{}
}

func (m *countingMetrics) ObserveApply(time.Duration)    { m.applies.Add(1) }
func (m *countingMetrics) ObserveLogStore(time.Duration) { m.stores.Add(1) }
func (m *countingMetrics) LeaderChanged() {
	select {
	case m.leaderChanged <- struct{}{}:
	default: // the test waits for the first one only
	}
}

// A node with WithMetrics reports its election, its log appends and each
// command it applies; none of it leaks into another node's counts.
func TestMetricsReportApplyStoreAndLeader(t *testing.T) {
	dir := t.TempDir()
	catalog := openTestCatalog(t, dir)
	defer catalog.Close()
	m := &countingMetrics{leaderChanged: make(chan struct{}, 1)}
	r, err := Open(testConfig(dir), catalog, newTCPLayer(t), nil, WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, r.IsLeader)
	storesBefore := m.stores.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := r.Apply(ctx, samplePublish(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.applies.Load(); got != 3 {
		t.Errorf("applies reported: %d, want 3", got)
	}
	if m.stores.Load() <= storesBefore {
		t.Errorf("no raft log append reported after 3 commands")
	}
	select {
	case <-m.leaderChanged:
	case <-ctx.Done():
		t.Fatal("no leader change reported for the node's own election")
	}
	if r.LastIndex() < r.AppliedIndex() || r.AppliedIndex() == 0 {
		t.Errorf("last index %d, applied %d", r.LastIndex(), r.AppliedIndex())
	}
}
