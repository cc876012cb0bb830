package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestQueryDrain: once draining, no query begins; the running ones are
// awaited, and those left at the deadline are cancelled with
// errDrainDeadline as the cause.
func TestQueryDrain(t *testing.T) {
	d := newQueryDrain()
	ctxA, endA, ok := d.begin(context.Background())
	if !ok {
		t.Fatal("a query was refused before the drain")
	}
	ctxB, endB, _ := d.begin(context.Background())
	if got := d.start(); got != 2 {
		t.Fatalf("start reports %d running, want 2", got)
	}
	if _, _, ok := d.begin(context.Background()); ok {
		t.Fatal("a query began while draining")
	}
	endA()
	if ctxA.Err() == nil {
		t.Fatal("an ended query's context is still live")
	}
	if d.wait(context.Background(), 10*time.Millisecond) {
		t.Fatal("the drain finished with a query running")
	}
	if got := d.cancelAll(); got != 1 {
		t.Fatalf("cancelled %d, want 1", got)
	}
	if !errors.Is(context.Cause(ctxB), errDrainDeadline) {
		t.Fatalf("cause %v, want errDrainDeadline", context.Cause(ctxB))
	}
	endB()
	if !d.wait(context.Background(), 10*time.Second) {
		t.Fatal("the drain did not finish once nothing ran")
	}
}

// TestQueryDrainIdleAtOnce: a node with nothing running drains at once.
func TestQueryDrainIdleAtOnce(t *testing.T) {
	d := newQueryDrain()
	_, end, _ := d.begin(context.Background())
	end()
	if d.start() != 0 || !d.wait(context.Background(), 10*time.Second) {
		t.Fatal("an idle drain waited")
	}
}
