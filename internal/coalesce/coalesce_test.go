package coalesce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCallerNeverJoinsARoundInFlight: a call made while a round runs gets
// the result of a later round, never of the one already running.
func TestCallerNeverJoinsARoundInFlight(t *testing.T) {
	var r Rounds[int]
	var runs atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	run := func() (int, error) {
		n := int(runs.Add(1))
		if n == 1 {
			close(started)
			<-release
		}
		return n, nil
	}
	first := make(chan int)
	go func() {
		v, _ := r.Do(context.Background(), run)
		first <- v
	}()
	<-started // round 1 is in flight
	second := make(chan int)
	go func() {
		v, _ := r.Do(context.Background(), run)
		second <- v
	}()
	close(release)
	if v := <-first; v != 1 {
		t.Fatalf("first caller got round %d, want 1", v)
	}
	if v := <-second; v != 2 {
		t.Fatalf("a caller that arrived while round 1 ran got round %d, want 2", v)
	}
}

// TestWaitingCallersShareOneRound: callers that arrive while a round runs
// all share the next one, so the number of runs stays far below the number
// of calls.
func TestWaitingCallersShareOneRound(t *testing.T) {
	var r Rounds[int]
	var runs atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	run := func() (int, error) {
		n := int(runs.Add(1))
		if n == 1 {
			close(started)
			<-release
		}
		return n, nil
	}
	go r.Do(context.Background(), run)
	<-started
	const callers = 50
	var joined sync.WaitGroup
	results := make(chan int, callers)
	for range callers {
		joined.Add(1)
		go func() {
			defer joined.Done()
			v, err := r.Do(context.Background(), run)
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	// Every caller is queued for round 2 once all have called Do; wait for
	// that by polling the queue under its lock (an event, not a time).
	for !r.queued(callers) {
		waitABit()
	}
	close(release)
	joined.Wait()
	close(results)
	for v := range results {
		if v != 2 {
			t.Fatalf("a waiting caller got round %d, want 2 (the one round after the first)", v)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs for %d calls, want 2", n, callers+1)
	}
}

// TestErrorReachesEveryCallerOfItsRound and a cancelled caller stops
// waiting without failing the others.
func TestErrorReachesEveryCallerOfItsRound(t *testing.T) {
	var r Rounds[int]
	boom := errors.New("not leader")
	if _, err := r.Do(context.Background(), func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	if _, err := r.Do(ctx, func() (int, error) { <-release; return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
	}
}
