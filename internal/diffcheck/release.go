package diffcheck

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Outcome is what Release decided for one aggregate result.
type Outcome struct {
	// Suppressed is, per group in result order, whether it must not
	// leave: too close to a remembered group or union, or to an earlier
	// group of this result. All true when Whole.
	Suppressed []bool
	// Whole: every group is suppressed because the union of the groups
	// that would otherwise leave is too close to a remembered group or
	// union.
	Whole bool
	// GroupsSuppressed counts the true values in Suppressed.
	GroupsSuppressed int
	// Remembered counts the entries added; Refreshed the remembered
	// entries that this result asked for again and whose time moved to
	// now instead.
	Remembered, Refreshed int
}

// Release decides, for the candidate groups of one aggregate result (in
// result order), which may leave, and remembers what does. scheme names
// the engine's person-hash scheme; k is the threshold: two groups whose
// persons differ by 1..k−1 must not both leave. Every group must have
// CellsFor(k) cells. Release keeps no reference to groups.
//
// For each group in order: it is compared with the scope's remembered
// entries within the window whose size is within k−1 of its own (others
// are Far by size alone), then with the groups of this result accepted so
// far; Near to any suppresses it. A group Identical to a remembered entry
// has left before: it is accepted without further checks (it reveals
// nothing new) and that entry's time is refreshed. If two or more groups
// are accepted, their union (Merge; see there for overlapping groups) is
// compared with the remembered entries alone; Near suppresses the whole
// result and nothing is remembered. Otherwise every accepted group and the
// union are remembered, each once: Identical ones refresh the entry they
// match, and a result's one accepted group is its own union.
//
// Release calls are serialised, so two releases of one scope are always
// compared with each other. A remembered entry that cannot be decoded
// makes Release fail (and so the query with it) rather than skip it; so
// does an earlier failed commit.
func (s *Store) Release(scope Scope, scheme string, k uint32, groups []*Sketch, now time.Time) (Outcome, error) {
	if err := validateRelease(scope, scheme, k, groups, now); err != nil {
		return Outcome{}, err
	}
	out, queued, err := s.release(scope, scheme, k, groups, now)
	if queued {
		s.signal() // after unlocking: the writer's first step is to lock
	}
	return out, err
}

// release is Release under the lock; queued says it remembered something.
func (s *Store) release(scope Scope, scheme string, k uint32, groups []*Sketch, now time.Time) (Outcome, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Outcome{}, false, ErrClosed
	case s.failed != nil:
		return Outcome{}, false, fmt.Errorf("diffcheck: an earlier write failed; refusing until reopened: %w", s.failed)
	}
	// The read transaction starts under mu: every record the writer has
	// dropped from memory is committed, so visible to it.
	tx, err := s.db.Begin(false)
	if err != nil {
		return Outcome{}, false, fmt.Errorf("diffcheck: %w", err)
	}
	defer tx.Rollback()
	r := &releaser{s: s, tx: tx, id: scope.id(), scheme: scheme, k: k,
		now: now.UnixNano(), cutoff: now.Add(-s.window).UnixNano()}
	out, err := r.decide(groups)
	if err != nil {
		return Outcome{}, false, err
	}
	if out.Remembered+out.Refreshed == 0 {
		return out, false, nil
	}
	s.queued++
	r.apply(s.queued)
	return out, true, nil
}

func validateRelease(scope Scope, scheme string, k uint32, groups []*Sketch, now time.Time) error {
	if err := scope.validate(); err != nil {
		return err
	}
	switch {
	case scheme == "":
		return fmt.Errorf("diffcheck: scheme is empty")
	case len(scheme) > maxScheme:
		return fmt.Errorf("diffcheck: scheme is %d bytes, at most %d", len(scheme), maxScheme)
	case k == 0:
		return fmt.Errorf("diffcheck: k must be at least 1")
	}
	m := CellsFor(k)
	for i, g := range groups {
		switch {
		case g == nil:
			return fmt.Errorf("diffcheck: groups[%d] is nil", i)
		case g.M() != m:
			return fmt.Errorf("diffcheck: groups[%d] has %d cells, want %d for k = %d", i, g.M(), m, k)
		}
	}
	return checkNow(now)
}

// releaser holds one Release's state; it runs under Store.mu.
type releaser struct {
	s       *Store
	tx      *bolt.Tx
	id      scopeID
	scheme  string
	k       uint32
	now     int64
	cutoff  int64
	adds    []*Sketch // new entries to remember
	refresh []*record // remembered entries asked for again
}

// decide fills the outcome and the releaser's adds and refreshes.
func (r *releaser) decide(groups []*Sketch) (Outcome, error) {
	out := Outcome{Suppressed: make([]bool, len(groups))}
	var accepted []*Sketch
	for i, g := range groups {
		ok, dup, err := r.admit(g, accepted)
		if err != nil {
			return Outcome{}, fmt.Errorf("diffcheck: groups[%d]: %w", i, err)
		}
		if !ok {
			out.Suppressed[i] = true
			out.GroupsSuppressed++
			continue
		}
		if !dup { // a repeated group would count its persons twice in the union
			accepted = append(accepted, g)
		}
	}
	if len(accepted) >= 2 {
		union := accepted[0].Clone()
		for _, g := range accepted[1:] {
			if err := union.Merge(g); err != nil {
				return Outcome{}, err
			}
		}
		ok, _, err := r.admit(union, nil)
		if err != nil {
			return Outcome{}, fmt.Errorf("diffcheck: union: %w", err)
		}
		if !ok {
			for i := range out.Suppressed {
				out.Suppressed[i] = true
			}
			r.adds, r.refresh = nil, nil
			return Outcome{Suppressed: out.Suppressed, Whole: true, GroupsSuppressed: len(groups)}, nil
		}
	}
	out.Remembered, out.Refreshed = len(r.adds), len(r.refresh)
	return out, nil
}

// admit decides whether c may leave: Identical to a remembered entry (which
// it refreshes), or Far from every remembered entry and from every sketch
// in earlier. If it may, it is queued to be remembered unless Identical to
// one already queued (dup).
func (r *releaser) admit(c *Sketch, earlier []*Sketch) (ok, dup bool, err error) {
	near, same, err := r.remembered(c)
	switch {
	case err != nil:
		return false, false, err
	case same != nil:
		return true, !r.refreshOnce(same), nil
	case near:
		return false, false, nil
	}
	for _, e := range earlier {
		if v, _ := compareCells(c, e, r.k, uint64(r.k)); v == Near {
			return false, false, nil
		}
	}
	for _, a := range r.adds {
		if a.n == c.n {
			if v, _ := compareCells(c, a, r.k, 1); v == Identical {
				return true, true, nil
			}
		}
	}
	r.adds = append(r.adds, c)
	return true, false, nil
}

// refreshOnce queues rec's refresh; false if it already was.
func (r *releaser) refreshOnce(rec *record) bool {
	for _, x := range r.refresh {
		if x.key == rec.key {
			return false
		}
	}
	r.refresh = append(r.refresh, rec)
	return true
}

// remembered compares c with the scope's remembered entries in the window
// whose size is within k−1 of c's: pending ones from memory, the others
// from the file. It returns whether one is Near and the first Identical
// one (after which it stops: c has left before).
func (r *releaser) remembered(c *Sketch) (near bool, same *record, err error) {
	lo, hi := max(c.n-int64(r.k)+1, 0), c.n+int64(r.k)-1
	pending := r.s.pending[r.id]
	for _, rec := range pending {
		if n := rec.sk.n; n < lo || n > hi || rec.time < r.cutoff {
			continue
		}
		switch r.verdict(c, rec.sk, rec.scheme == r.scheme) {
		case Identical:
			return false, rec, nil
		case Near:
			near = true
		}
	}
	b := r.tx.Bucket(bucketEntries)
	if b == nil {
		return false, nil, errNoBucket
	}
	cur := b.Cursor()
	from, to := makeKey(r.id, lo, 0), makeKey(r.id, hi, ^uint64(0))
	k, v := cur.Seek(from[:])
	for k != nil && bytes.Compare(k, to[:]) <= 0 {
		if len(k) != len(entryKey{}) {
			return false, nil, fmt.Errorf("stored entry key of %d bytes, want %d", len(k), len(entryKey{}))
		}
		key := entryKey(k)
		if _, ok := pending[key]; ok {
			k, v = cur.Next()
			continue // memory holds its newer state
		}
		e, err := decodeEntry(v, r.s.scratchFor)
		if err != nil {
			return false, nil, fmt.Errorf("entry %x: %w", k, err)
		}
		if e.sk.n != key.n() {
			return false, nil, fmt.Errorf("entry %x: N %d, key says %d", k, e.sk.n, key.n())
		}
		if e.time >= r.cutoff {
			switch r.verdict(c, e.sk, string(e.scheme) == r.scheme) {
			case Identical:
				rec := &record{key: key, scheme: string(e.scheme), sk: e.sk.Clone()}
				return false, rec, nil
			case Near:
				if !near {
					// c is suppressed now unless an Identical entry exists,
					// and that has exactly c's size: look only there.
					near, to = true, makeKey(r.id, c.n, ^uint64(0))
					if key.n() < c.n {
						exact := makeKey(r.id, c.n, 0)
						k, v = cur.Seek(exact[:])
						continue
					}
				}
			}
		}
		k, v = cur.Next()
	}
	return near, nil, nil
}

// verdict compares the candidate with a remembered sketch, stopping once
// the bound reaches k. Sketches of another scheme or size get Compare's
// conservative size rule.
func (r *releaser) verdict(c, b *Sketch, sameScheme bool) Verdict {
	if !sameScheme || b.M() != c.M() {
		if absDiff(c.n, b.n) < uint64(r.k) {
			return Near
		}
		return Far
	}
	v, _ := compareCells(c, b, r.k, uint64(r.k))
	return v
}

// scratchFor returns the decode buffer for m cells; only under mu.
func (s *Store) scratchFor(m int) *Sketch {
	sk := s.scratch[m]
	if sk == nil {
		sk = newSketch(m)
		s.scratch[m] = sk
	}
	return sk
}

// apply puts the decided changes into memory, for the writer and for the
// next Release: new entries get keys, refreshed ones the new time.
func (r *releaser) apply(gen uint64) {
	s := r.s
	recs := s.pending[r.id]
	if recs == nil {
		recs = map[entryKey]*record{}
		s.pending[r.id] = recs
	}
	for _, rec := range r.refresh {
		rec.time, rec.gen = r.now, gen
		recs[rec.key] = rec // already there if it was pending
	}
	for _, sk := range r.adds {
		s.seq++
		key := makeKey(r.id, sk.n, s.seq)
		recs[key] = &record{key: key, scheme: r.scheme, sk: sk.Clone(), time: r.now, gen: gen}
	}
}
