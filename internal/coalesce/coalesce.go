// Package coalesce lets concurrent callers share one run of an expensive
// check, such as raft's leadership confirmation or a follower's read-index
// request to its leader, without ever sharing a run that began before they
// arrived.
package coalesce

import (
	"context"
	"sync"
)

// Rounds coalesces calls into rounds. A caller joins the round that has not
// started yet, never one already in flight: a round that began before the
// caller arrived could not prove anything about a time after the caller
// began. So every answer a caller gets was computed wholly after its call.
//
// At most one round runs at a time; the goroutine that runs them ends as
// soon as no caller waits. The zero value is ready to use.
type Rounds[T any] struct {
	mu      sync.Mutex
	next    *round[T]
	running bool
}

type round[T any] struct {
	done   chan struct{}
	joined int // callers sharing this round
	value  T
	err    error
}

// Do runs run in the next round, or joins that round if another caller has
// already asked for it, and returns its result. Callers of one round share
// the run of whichever of them arrived first, so every run passed for the
// same Rounds must compute the same thing. run must return in bounded time
// (its own deadline): a caller whose ctx ends stops waiting, but the round
// still finishes for the others.
func (r *Rounds[T]) Do(ctx context.Context, run func() (T, error)) (T, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &round[T]{done: make(chan struct{})}
	}
	rd := r.next
	rd.joined++
	if !r.running {
		r.running = true
		go r.loop(run)
	}
	r.mu.Unlock()
	select {
	case <-rd.done:
		return rd.value, rd.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (r *Rounds[T]) loop(run func() (T, error)) {
	for {
		r.mu.Lock()
		rd := r.next
		r.next = nil
		if rd == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		rd.value, rd.err = run()
		close(rd.done)
	}
}
