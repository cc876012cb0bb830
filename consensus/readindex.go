package consensus

import (
	"context"
	"sync"
)

// readBatcher coalesces concurrent leadership checks. A caller joins the
// round that has not started yet, never one already in flight: a round
// that began before the caller arrived could not prove leadership at a
// time after the caller's read began.
type readBatcher struct {
	mu      sync.Mutex
	next    *readRound
	running bool
}

type readRound struct {
	done  chan struct{}
	index uint64
	err   error
}

func (b *readBatcher) do(ctx context.Context, round func() (uint64, error)) (uint64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &readRound{done: make(chan struct{})}
	}
	rd := b.next
	if !b.running {
		b.running = true
		// The goroutine ends as soon as no round is waiting; each round
		// finishes because raft answers every VerifyLeader, also on shutdown.
		go b.loop(round)
	}
	b.mu.Unlock()
	select {
	case <-rd.done:
		return rd.index, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *readBatcher) loop(round func() (uint64, error)) {
	for {
		b.mu.Lock()
		rd := b.next
		b.next = nil
		if rd == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		rd.index, rd.err = round()
		close(rd.done)
	}
}
