package owner

import (
	"sync"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// decisionCounts is a Metrics that remembers what it was told.
type decisionCounts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *decisionCounts) Decided(effect yrdv1.Effect, level yrdv1.ClassificationLevel, city string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[effect.String()+" "+level.String()+" "+city]++
}

// Every decided query is counted once, by its final effect: a permitted
// one as allowed, a policy denial and a denial by the budget after the
// policy allowed as denied; a query refused before any decision is not.
func TestMetricsCountDecisions(t *testing.T) {
	f := newFixture(t)
	m := &decisionCounts{}
	f.e.ports.Metrics = m
	level := f.catalog.datasets[elderly].GetLevel().String()
	hz := analyst("hangzhou", "hz-lab")
	if _, err := f.run(t, request(t, hz, elderlyPurpose, "SELECT count(*) FROM "+elderly)); err != nil {
		t.Fatal(err)
	}
	_, _ = f.run(t, request(t, analyst("nanjing", "nj-lab"), elderlyPurpose, "SELECT district FROM "+elderly+" WHERE care_level >= 5"))
	f.budget.left = 0
	_, _ = f.run(t, request(t, hz, elderlyPurpose, "SELECT count(*) FROM "+elderly))
	_, _ = f.run(t, request(t, hz, elderlyPurpose, "SELECT count(*) FROM no.such-dataset"))
	want := map[string]int{
		"EFFECT_ALLOW_AGGREGATES " + level + " hangzhou": 1,
		"EFFECT_DENY " + level + " nanjing":              1,
		"EFFECT_DENY " + level + " hangzhou":             1,
	}
	if len(m.counts) != len(want) {
		t.Fatalf("counts %v, want %v", m.counts, want)
	}
	for k, n := range want {
		if m.counts[k] != n {
			t.Fatalf("counts %v, want %v", m.counts, want)
		}
	}
}
