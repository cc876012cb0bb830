package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// sink is an Enqueuer that keeps what it is given and can hold the writer
// (as a full log queue would) until released.
type sink struct {
	mu      sync.Mutex
	recs    []*yrdv1.AuditRecord
	arrived chan struct{} // one token per record
	hold    chan struct{} // while open, Enqueue waits
}

func newSink() *sink {
	return &sink{arrived: make(chan struct{}, 100000), hold: make(chan struct{})}
}

func (s *sink) release() { close(s.hold) }

func (s *sink) Enqueue(_ context.Context, rec *yrdv1.AuditRecord) error {
	<-s.hold
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	s.mu.Unlock()
	s.arrived <- struct{}{}
	return nil
}

func (s *sink) records() []*yrdv1.AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*yrdv1.AuditRecord(nil), s.recs...)
}

// waitFor waits until n records have arrived in all.
func (s *sink) waitFor(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for len(s.records()) < n {
		select {
		case <-s.arrived:
		case <-timeout:
			t.Fatalf("%d records arrived, want %d", len(s.records()), n)
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func refusal(detail string) *yrdv1.AuditRecord {
	return &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE, Detail: detail}
}

// total is how many refusals of rule from source the records stand for.
func total(recs []*yrdv1.AuditRecord, source, rule string) uint64 {
	var n uint64
	for _, r := range recs {
		if r.GetSource() == source && len(r.GetRuleIds()) == 1 && r.GetRuleIds()[0] == rule {
			n += max(r.GetCount(), 1)
		}
	}
	return n
}

func newTestSummariser(t *testing.T, out Enqueuer, opts SummaryOptions) (*Summariser, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)}
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	s := NewSummariser(out, opts)
	t.Cleanup(func() { s.Close() })
	return s, clock
}

// A flood from one source within a window is two records: the first
// refusal, at once, and a summary with the count of the others at Close.
func TestSummariserFloodIsTwoRecords(t *testing.T) {
	out := newSink()
	out.release()
	s, _ := newTestSummariser(t, out, SummaryOptions{})
	for i := 0; i < 5000; i++ {
		s.Note("10.0.0.7", "auth.bad-key", refusal(fmt.Sprintf("attempt %d", i)))
	}
	// Flush hands over the first refusal; the summary waits for the window.
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(out.records()); n != 1 {
		t.Fatalf("%d records after Flush, want the first refusal only", n)
	}
	first := out.records()[0]
	if first.GetDetail() != "attempt 0" || first.GetSource() != "10.0.0.7" || first.GetCount() != 0 ||
		first.GetDecision() != yrdv1.Effect_EFFECT_DENY || first.GetRuleIds()[0] != "auth.bad-key" {
		t.Fatalf("first record %v", first)
	}
	s.Close()
	recs := out.records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2: %v", len(recs), recs)
	}
	sum := recs[1]
	if sum.GetCount() != 4999 || sum.GetAction() != yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE ||
		!strings.Contains(sum.GetDetail(), "4999 more refusals from 10.0.0.7 in the minute from 2026-03-01T10:15:00Z, rule auth.bad-key") {
		t.Fatalf("summary %v", sum)
	}
	if n := total(recs, "10.0.0.7", "auth.bad-key"); n != 5000 {
		t.Fatalf("records stand for %d refusals, want 5000", n)
	}
	// Closed: later refusals are dropped, a second Close is harmless.
	s.Note("10.0.0.7", "auth.bad-key", refusal("late"))
	s.Close()
	if err := s.Flush(context.Background()); err != nil || len(out.records()) != 2 {
		t.Fatalf("after Close: Flush %v, %d records; want nil and no new record", err, len(out.records()))
	}
}

// Sources and rules are told apart; each window is summed on its own and
// its summary is written when the window closes, without waiting for Close.
func TestSummariserWindowsSourcesAndRules(t *testing.T) {
	out := newSink()
	out.release()
	s, clock := newTestSummariser(t, out, SummaryOptions{})
	for i := 0; i < 3; i++ {
		s.Note("a", "auth.bad-key", refusal("a key"))
		s.Note("a", "auth.no-credentials", refusal("a none"))
		s.Note("b", "auth.bad-key", refusal("b key"))
	}
	out.waitFor(t, 3)
	clock.advance(time.Minute)
	s.Note("a", "auth.bad-key", refusal("a key, next minute"))
	// The window closed with that Note: three summaries, then the new first.
	out.waitFor(t, 7)
	recs := out.records()
	for i, want := range []struct {
		source, rule string
		count        uint64
	}{{"a", "auth.bad-key", 0}, {"a", "auth.no-credentials", 0}, {"b", "auth.bad-key", 0},
		{"a", "auth.bad-key", 2}, {"b", "auth.bad-key", 2}, {"a", "auth.no-credentials", 2}, {"a", "auth.bad-key", 0}} {
		r := recs[i]
		if r.GetSource() != want.source || r.GetRuleIds()[0] != want.rule || r.GetCount() != want.count {
			t.Fatalf("record %d: %v, want %+v", i, r, want)
		}
	}
	if recs[6].GetDetail() != "a key, next minute" {
		t.Fatalf("the next minute's first refusal: %v", recs[6])
	}
	// A window closes on the clock alone, with no further refusal.
	s.Note("a", "auth.bad-key", refusal("again"))
	clock.advance(time.Minute)
	s.kick() // what the goroutine's timer does at the boundary
	out.waitFor(t, 8)
	if r := out.records()[7]; r.GetCount() != 1 || r.GetSource() != "a" {
		t.Fatalf("summary of the quiet window: %v", r)
	}
}

// Past MaxSources, new sources are counted together under OtherSources;
// known sources keep their own counts.
func TestSummariserBoundsItsTable(t *testing.T) {
	out := newSink()
	out.release()
	s, _ := newTestSummariser(t, out, SummaryOptions{MaxSources: 3})
	for round := 0; round < 2; round++ {
		for i := 0; i < 5; i++ {
			s.Note(fmt.Sprintf("src-%d", i), "fabric.non-member", refusal("x"))
		}
	}
	s.Close()
	recs := out.records()
	if len(recs) != 3+3+1 {
		t.Fatalf("%d records, want 3 firsts, 3 summaries and 1 for other sources: %v", len(recs), recs)
	}
	if n := total(recs, OtherSources, "fabric.non-member"); n != 4 {
		t.Fatalf("other sources stand for %d refusals, want 4", n)
	}
	var all uint64
	for _, r := range recs {
		all += max(r.GetCount(), 1)
	}
	if all != 10 {
		t.Fatalf("records stand for %d refusals, want 10", all)
	}
}

// Note never waits for the writer: with the log's queue stuck, a flood
// from many sources is still counted at once, and written once it moves.
func TestSummariserNeverBlocksNote(t *testing.T) {
	out := newSink() // held
	s, _ := newTestSummariser(t, out, SummaryOptions{MaxSources: 100})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			s.Note(fmt.Sprintf("10.0.%d.%d", i/250, i%250), "auth.no-credentials", refusal("x"))
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Note blocked behind a stuck writer")
	}
	out.release()
	s.Close()
	var all uint64
	for _, r := range out.records() {
		all += max(r.GetCount(), 1)
	}
	if all != 20000 || len(out.records()) != 101 {
		t.Fatalf("%d records standing for %d refusals, want 101 for 20000", len(out.records()), all)
	}
}

// With the real clock and timer, a window's summary comes without Close.
func TestSummariserTimerClosesWindows(t *testing.T) {
	out := newSink()
	out.release()
	s := NewSummariser(out, SummaryOptions{Window: 50 * time.Millisecond})
	defer s.Close()
	for i := 0; i < 3; i++ {
		s.Note("a", "auth.bad-key", refusal("x"))
	}
	for {
		out.waitFor(t, len(out.records())+1)
		if total(out.records(), "a", "auth.bad-key") == 3 {
			return
		}
	}
}
