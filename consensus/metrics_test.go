package consensus

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countingMetrics counts what a node reports.
type countingMetrics struct {
	applies, stores, leaderChanges atomic.Int64
}

func (m *countingMetrics) ObserveApply(time.Duration)    { m.applies.Add(1) }
func (m *countingMetrics) ObserveLogStore(time.Duration) { m.stores.Add(1) }
func (m *countingMetrics) LeaderChanged()                { m.leaderChanges.Add(1) }

// A node with WithMetrics reports its election, its log appends and each
// command it applies; none of it leaks into another node's counts.
func TestMetricsReportApplyStoreAndLeader(t *testing.T) {
	dir := t.TempDir()
	catalog := openTestCatalog(t, dir)
	defer catalog.Close()
	m := &countingMetrics{}
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
	deadline := time.Now().Add(10 * time.Second)
	for m.leaderChanges.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no leader change reported for the node's own election")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.LastIndex() < r.AppliedIndex() || r.AppliedIndex() == 0 {
		t.Errorf("last index %d, applied %d", r.LastIndex(), r.AppliedIndex())
	}
}
