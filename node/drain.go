package node

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errDrainDeadline is the cause given to the context of a query still
// running when a stopping node's drain deadline passes.
var errDrainDeadline = errors.New("drain deadline passed")

// queryDrain tracks the queries running on this node (a client's query at
// its home node, a member's at the owner), so that a stopping node can
// refuse new ones, wait for those running, and cancel what is left at a
// deadline.
type queryDrain struct {
	mu       sync.Mutex
	draining bool
	running  map[*runningQuery]struct{}
	idle     chan struct{} // closed once draining and nothing runs
}

type runningQuery struct{ cancel context.CancelCauseFunc }

func newQueryDrain() *queryDrain {
	return &queryDrain{running: map[*runningQuery]struct{}{}, idle: make(chan struct{})}
}

// begin registers a query and returns its context, which the drain cancels
// at its deadline, and the func that ends it; ok is false once draining.
func (d *queryDrain) begin(ctx context.Context) (qctx context.Context, end func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return nil, nil, false
	}
	qctx, cancel := context.WithCancelCause(ctx)
	q := &runningQuery{cancel: cancel}
	d.running[q] = struct{}{}
	return qctx, func() {
		cancel(nil)
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.running, q)
		if d.draining && len(d.running) == 0 {
			close(d.idle)
		}
	}, true
}

// start refuses new queries from now on and returns how many are running.
func (d *queryDrain) start() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.draining {
		d.draining = true
		if len(d.running) == 0 {
			close(d.idle)
		}
	}
	return len(d.running)
}

// cancelAll cancels the running queries with errDrainDeadline and returns
// how many there were.
func (d *queryDrain) cancelAll() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for q := range d.running {
		q.cancel(errDrainDeadline)
	}
	return len(d.running)
}

// wait waits until nothing runs, ctx ends or d passes; it reports whether
// nothing runs.
func (d *queryDrain) wait(ctx context.Context, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.idle:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// drainable runs a query handler under the drain: refused with a clear
// UNAVAILABLE while the node drains, and if the drain deadline cancels it,
// failed with a status that says so rather than a bare "canceled".
func (n *Node) drainable(ctx context.Context, handle func(context.Context) error) error {
	qctx, end, ok := n.drain.begin(ctx)
	if !ok {
		return errorf(ErrUnavailable, "node %s is draining for shutdown and takes no new queries; ask another node, or retry once it has restarted", n.cfg.City)
	}
	defer end()
	err := handle(qctx)
	if err != nil && errors.Is(context.Cause(qctx), errDrainDeadline) {
		return errorf(ErrUnavailable, "query cancelled: node %s is shutting down and the query was still running at its %s drain deadline; run it again",
			n.cfg.City, n.cfg.DrainTimeout)
	}
	return err
}
