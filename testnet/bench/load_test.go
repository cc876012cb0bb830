package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadRunsEachOperationOnce: every sequence number runs once, by at
// most clients workers at a time, and the point counts them all.
func TestLoadRunsEachOperationOnce(t *testing.T) {
	const count, clients = 1000, 8
	var seen [count]atomic.Int32
	var running, most atomic.Int32
	p, err := Load(context.Background(), clients, count, func(_ context.Context, c, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if c < 0 || c >= clients {
			t.Errorf("client %d", c)
		}
		seen[i].Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Fatalf("operation %d ran %d times", i, seen[i].Load())
		}
	}
	if p.Ops != count || p.Clients != clients || most.Load() > clients || p.P50 > p.P99 || p.P99 > p.Max {
		t.Fatalf("point %+v, at most %d at once", p, most.Load())
	}
}

// TestLoadStopsAtTheFirstError: a failed operation ends the load with
// its error, and the load does not run to its count.
func TestLoadStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	_, err := Load(context.Background(), 4, 1_000_000, func(ctx context.Context, _, i int) error {
		ran.Add(1)
		switch {
		case i < 10:
			return nil
		case i == 10:
			return boom
		}
		<-ctx.Done() // later operations wait for the load to end
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if ran.Load() > 1000 {
		t.Fatalf("%d operations ran after the failure", ran.Load())
	}
}

// TestSummarisePercentiles: percentiles of 1..100 ms.
func TestSummarisePercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	p := summarise(1, lat, time.Second)
	if p.P50 != 51*time.Millisecond && p.P50 != 50*time.Millisecond || p.P99 != 99*time.Millisecond || p.Max != 100*time.Millisecond || p.OpsPerSec() != 100 {
		t.Fatalf("%+v", p)
	}
}

// TestLoadEndsWithItsContext: when ctx ends, the load returns what it
// did by then, and ctx's error.
func TestLoadEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Load(ctx, 2, 1_000_000, func(ctx context.Context, _, i int) error {
		if i == 100 {
			cancel()
		}
		if i >= 100 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || p.Ops < 99 || p.Ops > 100 {
		t.Fatalf("point %+v, error %v: want the operations before the cancel and context.Canceled", p, err)
	}
}
