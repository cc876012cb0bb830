package audit

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	// DefaultSummaryWindow is the span over which a Summariser counts the
	// refusals of one source: the first is recorded at once, the rest in
	// one summary record when the window closes.
	DefaultSummaryWindow = time.Minute
	// DefaultMaxSources bounds the sources a Summariser tells apart in one
	// window; refusals from further sources are counted together.
	DefaultMaxSources = 10000
	// OtherSources is the source of the summary of refusals from sources
	// past the table bound.
	OtherSources = "other sources"
)

// Enqueuer is where a Summariser writes its records (a *Log).
type Enqueuer interface {
	Enqueue(ctx context.Context, rec *yrdv1.AuditRecord) error
}

// SummaryOptions tune a Summariser; zero fields take the defaults.
type SummaryOptions struct {
	Window     time.Duration
	MaxSources int
	// Clock places refusals in windows; time.Now if nil.
	Clock func() time.Time
	// Logger hears of records that could not be written; nil discards.
	Logger *slog.Logger
}

// Summariser puts on record refusals that anyone can cause without
// credentials (failed authentication, refused fabric peers, bad join
// tokens), without letting a flood of them fill the disk or slow the
// node. Per source, rule and window, the first refusal is recorded at
// once; the others are only counted in memory and written as one summary
// record (Count = how many) when the window closes or at Close. Note
// never waits for the disk: its goroutine writes. Memory is bounded by
// MaxSources entries per window; refusals from sources past it are counted
// under OtherSources, per rule.
//
// The owner calls Close, which writes what is pending and stops the
// goroutine; it must run before the Log it writes to is closed.
type Summariser struct {
	out        Enqueuer
	window     time.Duration
	maxSources int
	clock      func() time.Time
	log        *slog.Logger

	mu      sync.Mutex
	cur     *summaryWindow
	pending []*yrdv1.AuditRecord // to write, in order
	closed  bool

	wake      chan struct{}      // buffered 1: something is pending
	flushes   chan chan struct{} // Flush's requests, closed when done
	closing   chan struct{}
	exited    chan struct{}
	closeOnce sync.Once
}

type summaryKey struct {
	source, rule string
	other        bool // the entry of sources past the table bound
}

type summaryEntry struct {
	action yrdv1.AuditAction
	more   uint64 // refusals not recorded singly
}

type summaryWindow struct {
	start   time.Time
	entries map[summaryKey]*summaryEntry
	sources int // entries of real sources, bounded by maxSources
}

// NewSummariser starts a Summariser writing to out.
func NewSummariser(out Enqueuer, opts SummaryOptions) *Summariser {
	s := &Summariser{out: out, window: opts.Window, maxSources: opts.MaxSources, clock: opts.Clock, log: opts.Logger,
		wake: make(chan struct{}, 1), flushes: make(chan chan struct{}), closing: make(chan struct{}), exited: make(chan struct{})}
	if s.window <= 0 {
		s.window = DefaultSummaryWindow
	}
	if s.maxSources <= 0 {
		s.maxSources = DefaultMaxSources
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	go s.run()
	return s
}

// Note counts one refusal of source under rule. rec describes it (action,
// detail, requester if known) and becomes the Summariser's: if it is the
// first of its source and rule in the window it is queued for writing with
// Source, RuleIds and a DENY decision filled in; otherwise it is dropped
// and only counted. After Close, Note does nothing.
func (s *Summariser) Note(source, rule string, rec *yrdv1.AuditRecord) {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.roll(now)
	if s.cur == nil {
		s.cur = &summaryWindow{start: now.Truncate(s.window), entries: map[summaryKey]*summaryEntry{}}
	}
	k := summaryKey{source: source, rule: rule}
	e := s.cur.entries[k]
	if e == nil && s.cur.sources >= s.maxSources {
		k = summaryKey{rule: rule, other: true}
		e = s.cur.entries[k]
	}
	if e != nil {
		e.more++
		return
	}
	e = &summaryEntry{action: rec.GetAction()}
	s.cur.entries[k] = e
	if k.other {
		e.more++
		return
	}
	s.cur.sources++
	rec.Source, rec.RuleIds, rec.Decision = source, []string{rule}, yrdv1.Effect_EFFECT_DENY
	s.pending = append(s.pending, rec)
	s.kick()
}

func (s *Summariser) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// roll closes the current window if now is past it. Called with mu held.
func (s *Summariser) roll(now time.Time) {
	if s.cur != nil && !now.Before(s.cur.start.Add(s.window)) {
		s.closeWindow()
	}
}

// closeWindow queues the summaries of the current window. Called with mu
// held.
func (s *Summariser) closeWindow() {
	w := s.cur
	s.cur = nil
	if w == nil {
		return
	}
	keys := make([]summaryKey, 0, len(w.entries))
	for k, e := range w.entries {
		if e.more > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b summaryKey) int {
		return cmp.Or(cmp.Compare(a.rule, b.rule), cmp.Compare(a.source, b.source))
	})
	for _, k := range keys {
		s.pending = append(s.pending, s.summary(w, k, w.entries[k]))
	}
	if len(keys) > 0 {
		s.kick()
	}
}

func (s *Summariser) summary(w *summaryWindow, k summaryKey, e *summaryEntry) *yrdv1.AuditRecord {
	span := s.window.String()
	if s.window == time.Minute {
		span = "minute"
	}
	when := w.start.UTC().Format(time.RFC3339Nano)
	rec := &yrdv1.AuditRecord{Action: e.action, Decision: yrdv1.Effect_EFFECT_DENY, RuleIds: []string{k.rule},
		Source: k.source, Count: e.more,
		Detail: fmt.Sprintf("%d more refusals from %s in the %s from %s, rule %s", e.more, k.source, span, when, k.rule)}
	if k.other {
		rec.Source = OtherSources
		rec.Detail = fmt.Sprintf("%d refusals from other sources (past the %d sources told apart) in the %s from %s, rule %s",
			e.more, s.maxSources, span, when, k.rule)
	}
	return rec
}

// take returns what is ready to write, closing the current window if its
// time is up, or in any case when final.
func (s *Summariser) take(final bool) []*yrdv1.AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if final {
		s.closeWindow()
		s.closed = true
	} else {
		s.roll(s.clock())
	}
	out := s.pending
	s.pending = nil
	return out
}

// run writes pending records and closes each window when its time is up.
func (s *Summariser) run() {
	defer close(s.exited)
	t := time.NewTimer(s.untilNextWindow())
	defer t.Stop()
	for {
		select {
		case <-s.wake:
		case done := <-s.flushes:
			s.write(s.take(false))
			close(done)
			continue
		case <-t.C:
			t.Reset(s.untilNextWindow())
		case <-s.closing:
			s.write(s.take(true))
			return
		}
		s.write(s.take(false))
	}
}

// Flush returns once every record ready before it (first refusals, and
// the summaries of windows already closed) is handed to the log, so a
// reader who then flushes the log sees them. The open window's summaries
// wait for it to close.
func (s *Summariser) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case s.flushes <- done:
	case <-s.exited:
		return nil // Close wrote everything
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// untilNextWindow is the time to the next window boundary, a little past
// it so the clock reads the new window.
func (s *Summariser) untilNextWindow() time.Duration {
	now := s.clock()
	return max(now.Truncate(s.window).Add(s.window).Sub(now), 0) + time.Millisecond
}

// write hands records to the log; this may wait for the log's queue, but
// only here, never on the path of the refused call.
func (s *Summariser) write(recs []*yrdv1.AuditRecord) {
	for _, rec := range recs {
		if err := s.out.Enqueue(context.Background(), rec); err != nil {
			s.log.Error("audit: a refusal record could not be written", "rule", rec.GetRuleIds(), "source", rec.GetSource(), "err", err)
		}
	}
}

// Close writes the open window's summaries and everything pending, then
// stops the goroutine. Later Notes are dropped. Safe to call more than once.
func (s *Summariser) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.exited
	})
	return nil
}
