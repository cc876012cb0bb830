package diffcheck

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const k10 = 10

func wantOutcome(t *testing.T, out Outcome, whole bool, suppressed ...bool) {
	t.Helper()
	if out.Whole != whole || !slices.Equal(out.Suppressed, suppressed) {
		t.Fatalf("outcome %+v, want whole %v suppressed %v", out, whole, suppressed)
	}
	n := 0
	for _, s := range suppressed {
		if s {
			n++
		}
	}
	if out.GroupsSuppressed != n {
		t.Fatalf("GroupsSuppressed %d, want %d", out.GroupsSuppressed, n)
	}
}

func TestReleaseDifferencingPair(t *testing.T) {
	s, _ := openStore(t)
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 500)), false, false)
	wantOutcome(t, release(t, s, testScope, k10, t0.Add(time.Hour), group(k10, 0, 500, 42)), false, true)
	// The other way round, and with one person added instead.
	other := Scope{City: "shanghai", Org: "sh-analytics", Dataset: "other"}
	wantOutcome(t, release(t, s, other, k10, t0, group(k10, 0, 500, 42)), false, false)
	wantOutcome(t, release(t, s, other, k10, t0, group(k10, 0, 500)), false, true)
	wantOutcome(t, release(t, s, other, k10, t0, group(k10, 0, 509, 42)), false, true)  // 9 more
	wantOutcome(t, release(t, s, other, k10, t0, group(k10, 0, 510, 42)), false, false) // 10 more
	if n := stored(t, s); n != 3 {
		t.Fatalf("%d entries stored, want the 3 released groups", n)
	}
}

func TestReleaseScopesAreSeparate(t *testing.T) {
	s, _ := openStore(t)
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 500)), false, false)
	for _, sc := range []Scope{
		{City: "hangzhou", Org: testScope.Org, Dataset: testScope.Dataset},
		{City: testScope.City, Org: "other-org", Dataset: testScope.Dataset},
		{City: testScope.City, Org: testScope.Org, Dataset: "other"},
	} {
		wantOutcome(t, release(t, s, sc, k10, t0, group(k10, 0, 499)), false, false)
	}
}

func TestReleaseSameGroupTwice(t *testing.T) {
	s, _ := openStore(t)
	for i := range 3 {
		out := release(t, s, testScope, k10, t0.Add(time.Duration(i)*time.Hour), group(k10, 0, 500))
		wantOutcome(t, out, false, false)
		if i > 0 && (out.Refreshed != 1 || out.Remembered != 0) {
			t.Fatalf("asked again: %+v, want one entry refreshed", out)
		}
	}
	if n := stored(t, s); n != 1 {
		t.Fatalf("%d entries after the same group three times, want 1", n)
	}
	// A breakdown asked twice: its groups and union are stored once. Its
	// union is within k of its big group; asked again, the result still
	// leaves, because each of its entries is Identical to a remembered one.
	for i := range 2 {
		out := release(t, s, testScope, k10, t0, group(k10, 1000, 1400), group(k10, 2000, 2003))
		wantOutcome(t, out, false, false, false)
		if i == 1 && out.Refreshed != 3 {
			t.Fatalf("breakdown asked again: %+v, want its 3 entries refreshed", out)
		}
	}
	if n := stored(t, s); n != 4 {
		t.Fatalf("%d entries, want 4", n)
	}
}

func TestReleaseWithinOneResult(t *testing.T) {
	s, _ := openStore(t)
	out := release(t, s, testScope, k10, t0, group(k10, 0, 500), group(k10, 1000, 1200), group(k10, 0, 500, 7))
	wantOutcome(t, out, false, false, false, true)
	// The same group twice in one result leaves and is stored once.
	out = release(t, s, testScope, k10, t0, group(k10, 3000, 3100), group(k10, 3000, 3100))
	wantOutcome(t, out, false, false, false)
	if out.Remembered != 1 {
		t.Fatalf("%+v: want one entry for a group that is its own union", out)
	}
}

func TestReleaseTotalThenBreakdown(t *testing.T) {
	s, _ := openStore(t)
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 1000)), false, false)
	// Five districts that together lack 3 of the thousand: the total less
	// the districts would be those 3.
	out := release(t, s, testScope, k10, t0, group(k10, 0, 200), group(k10, 200, 400), group(k10, 400, 600),
		group(k10, 600, 800), group(k10, 800, 1000, 801, 802, 803))
	wantOutcome(t, out, true, true, true, true, true, true)
	if out.Remembered != 0 || out.Refreshed != 0 {
		t.Fatalf("%+v: a suppressed result must not be remembered", out)
	}
	// Districts covering everyone add up to the total: they leave.
	out = release(t, s, testScope, k10, t0, group(k10, 0, 200), group(k10, 200, 400), group(k10, 400, 600),
		group(k10, 600, 800), group(k10, 800, 1000))
	wantOutcome(t, out, false, false, false, false, false, false)
	if out.Remembered != 5 || out.Refreshed != 1 {
		t.Fatalf("%+v: want 5 districts remembered and the total refreshed as their union", out)
	}
	if n := stored(t, s); n != 6 {
		t.Fatalf("%d entries, want 6", n)
	}
}

func TestReleaseBreakdownThenTotal(t *testing.T) {
	s, _ := openStore(t)
	out := release(t, s, testScope, k10, t0, group(k10, 0, 300), group(k10, 300, 600), group(k10, 600, 1000))
	wantOutcome(t, out, false, false, false, false)
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 1000, 5, 500)), false, true)
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 1000)), false, false)
	// A breakdown of another grouping whose union misses one person: its
	// groups are far from the first breakdown's, its union is not.
	out = release(t, s, testScope, k10, t0, group(k10, 0, 500), group(k10, 500, 1000, 999))
	wantOutcome(t, out, true, true, true)
}

func TestReleaseWindow(t *testing.T) {
	s, _ := openStore(t)
	window := DefaultOptions().Window
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 500)), false, false)
	wantOutcome(t, release(t, s, testScope, k10, t0.Add(window), group(k10, 0, 500, 1)), false, true)
	wantOutcome(t, release(t, s, testScope, k10, t0.Add(window+time.Nanosecond), group(k10, 0, 500, 1)), false, false)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(window + time.Hour)
	if n, err := s.Prune(later); err != nil || n != 1 {
		t.Fatalf("Prune: %d, %v; want the first group deleted", n, err)
	}
	if n := stored(t, s); n != 1 {
		t.Fatalf("%d entries after Prune, want 1", n)
	}
	// A refreshed entry lives a window from its refresh.
	wantOutcome(t, release(t, s, testScope, k10, later, group(k10, 0, 500, 1)), false, false)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(t0.Add(2*window + time.Minute)); err != nil || n != 0 {
		t.Fatalf("Prune: %d, %v; want the refreshed entry kept", n, err)
	}
	if n := stored(t, s); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

func TestReleaseSchemeMismatchIsConservative(t *testing.T) {
	s, _ := openStore(t)
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 0, 500)), false, false)
	groups := func(gs ...*Sketch) []*Sketch { return gs }
	for _, tc := range []struct {
		g    *Sketch
		want bool
	}{
		{group(k10, 0, 500), true},        // the same persons: it cannot tell
		{group(k10, 5000, 5509), true},    // other persons, sizes within k−1
		{group(k10, 10000, 10510), false}, // sizes k apart
	} {
		out, err := s.Release(testScope, "pg-hashtextextended", k10, groups(tc.g), t0)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcome(t, out, false, tc.want)
	}
	// A new k means a new sketch size: the same conservative rule.
	wantOutcome(t, release(t, s, testScope, 11, t0, group(11, 0, 490)), false, true)
	wantOutcome(t, release(t, s, testScope, 11, t0, group(11, 0, 480)), false, false)
}

func TestReleasePersistsAcrossReopen(t *testing.T) {
	s, path := openStore(t)
	for i := range 50 { // many results, none flushed explicitly
		release(t, s, testScope, k10, t0, group(k10, i*1000, i*1000+100+i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	defer s.Close()
	if n := stored(t, s); n != 50 {
		t.Fatalf("%d entries after reopening, want 50: Close must flush", n)
	}
	wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 7000, 7107, 7050)), false, true)
	out := release(t, s, testScope, k10, t0, group(k10, 7000, 7107))
	if out.Refreshed != 1 {
		t.Fatalf("%+v: the reopened store must recognise the group", out)
	}
	// New keys after a reopen must not overwrite old ones.
	release(t, s, testScope, k10, t0, group(k10, 100000, 100100))
	if n := stored(t, s); n != 51 {
		t.Fatalf("%d entries, want 51", n)
	}
}

func TestReleaseConcurrentPairReleasesOne(t *testing.T) {
	s, _ := openStore(t)
	for round := range 20 {
		scope := Scope{City: "suzhou", Org: "sz-analytics", Dataset: strings.Repeat("d", round+1)}
		start := make(chan struct{})
		var wg sync.WaitGroup
		outs := make([]Outcome, 2)
		errs := make([]error, 2)
		for i, g := range []*Sketch{group(k10, 0, 500), group(k10, 0, 500, 250)} {
			wg.Go(func() {
				<-start
				outs[i], errs[i] = s.Release(scope, testScheme, k10, []*Sketch{g}, t0)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if outs[0].Suppressed[0] == outs[1].Suppressed[0] {
			t.Fatalf("round %d: suppressed %v and %v; want exactly one released", round, outs[0].Suppressed, outs[1].Suppressed)
		}
	}
}

// corrupt replaces the value of the scope's first stored entry.
func corrupt(t *testing.T, s *Store, f func(v []byte) []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		k, v := b.Cursor().First()
		return b.Put(slices.Clone(k), f(slices.Clone(v)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReleaseFailsClosedOnMalformedEntry(t *testing.T) {
	for name, f := range map[string]func(v []byte) []byte{
		"truncated": func(v []byte) []byte { return v[:len(v)-3] },
		"version":   func(v []byte) []byte { v[0] = 9; return v },
		"N":         func(v []byte) []byte { return appendEntry(nil, t0.UnixNano(), testScheme, group(k10, 0, 499)) },
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := openStore(t)
			release(t, s, testScope, k10, t0, group(k10, 0, 500))
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			corrupt(t, s, f)
			if out, err := s.Release(testScope, testScheme, k10, []*Sketch{group(k10, 5000, 5495)}, t0); err == nil {
				t.Fatalf("Release over a malformed entry: %+v, want an error", out)
			}
			// Sizes out of range never read it.
			wantOutcome(t, release(t, s, testScope, k10, t0, group(k10, 5000, 5100)), false, false)
		})
	}
}

func TestReleaseRefusesBadArguments(t *testing.T) {
	s, _ := openStore(t)
	g := group(k10, 0, 10)
	for name, call := range map[string]func() error{
		"City": func() error {
			_, err := s.Release(Scope{Org: "o", Dataset: "d"}, testScheme, k10, []*Sketch{g}, t0)
			return err
		},
		"scheme": func() error { _, err := s.Release(testScope, "", k10, []*Sketch{g}, t0); return err },
		"k":      func() error { _, err := s.Release(testScope, testScheme, 0, []*Sketch{g}, t0); return err },
		"groups[1]": func() error {
			_, err := s.Release(testScope, testScheme, k10, []*Sketch{g, nil}, t0)
			return err
		},
		"groups[0] has 16 cells": func() error {
			_, err := s.Release(testScope, testScheme, k10, []*Sketch{group(2, 0, 3)}, t0)
			return err
		},
		"now": func() error { _, err := s.Release(testScope, testScheme, k10, []*Sketch{g}, time.Time{}); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming it", name, err)
		}
	}
	if out := release(t, s, testScope, k10, t0); len(out.Suppressed) != 0 || out.Whole {
		t.Fatalf("empty result: %+v", out)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := openStore(t)
	release(t, s, testScope, k10, t0, group(k10, 0, 10))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("the writer goroutine outlived Close")
	}
	if _, err := s.Release(testScope, testScheme, k10, []*Sketch{group(k10, 0, 10)}, t0); err != ErrClosed {
		t.Fatalf("Release after Close: %v", err)
	}
	if _, err := s.Prune(t0); err != ErrClosed {
		t.Fatalf("Prune after Close: %v", err)
	}
	if err := s.Close(); err != ErrClosed {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err == nil || !strings.Contains(err.Error(), "Logger") {
		t.Fatalf("default options without a logger: %v", err)
	}
	o := testOptions()
	o.Window = 0
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "Window") {
		t.Fatalf("zero window: %v", err)
	}
	if _, err := Open(t.TempDir()+"/x.db", o); err == nil {
		t.Fatal("Open with a zero window succeeded")
	}
}

// TestFailedCommitFailsClosed: once a commit has failed, Flush and Close
// report it and Release refuses, rather than deciding against a file that
// lacks what it released.
func TestFailedCommitFailsClosed(t *testing.T) {
	s, _ := openStore(t)
	release(t, s, testScope, k10, t0, group(k10, 0, 10))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Break the file behind the store's back: the next commit fails.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketByTime) }); err != nil {
		t.Fatal(err)
	}
	release(t, s, testScope, k10, t0, group(k10, 100, 200))
	if err := s.Flush(); err == nil {
		t.Fatal("Flush after a failed commit succeeded")
	}
	if _, err := s.Release(testScope, testScheme, k10, []*Sketch{group(k10, 1000, 1100)}, t0); err == nil {
		t.Fatal("Release after a failed commit succeeded")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close after a failed commit succeeded")
	}
}
