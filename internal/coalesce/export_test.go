package coalesce

import "runtime"

// queued reports whether at least n callers wait for the next round.
func (r *Rounds[T]) queued(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next != nil && r.next.joined >= n
}

func waitABit() { runtime.Gosched() }
