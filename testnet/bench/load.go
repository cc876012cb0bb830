package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation of a load: client is the worker running it, i its
// sequence number in the whole load.
type Op func(ctx context.Context, client, i int) error

// Load runs count operations by clients concurrent workers, each taking
// the next sequence number until count are taken, and measures them. A
// load is bounded by count and by ctx: when ctx ends, Load returns the
// point of the operations done so far with ctx's error; when an operation
// fails first, it returns that error and no point.
func Load(parent context.Context, clients, count int, op Op) (Point, error) {
	if clients < 1 || count < 1 {
		return Point{}, fmt.Errorf("bench: load of %d operations by %d clients", count, clients)
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				t0 := time.Now()
				if err := op(ctx, c, i); err != nil {
					if parent.Err() == nil {
						cancel(fmt.Errorf("operation %d: %w", i, err))
					}
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	p := summarise(clients, slices.Concat(lat...), elapsed)
	if err := parent.Err(); err != nil {
		return p, err
	}
	if err := context.Cause(ctx); err != nil {
		return Point{}, err
	}
	return p, nil
}

// summarise is the Point of latencies lat measured over elapsed.
func summarise(clients int, lat []time.Duration, elapsed time.Duration) Point {
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1)+0.5)]
	}
	return Point{Clients: clients, Ops: len(lat), Elapsed: elapsed, P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: pct(1)}
}
