package diffcheck

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// t0 is the time of the first release in the store tests.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const testScheme = "duckdb-hash:00112233"

var testScope = Scope{City: "shanghai", Org: "sh-analytics", Dataset: "shanghai.civil-affairs.elderly-population"}

// person returns person i's hash: splitmix64, so distinct persons get
// distinct, well-spread hashes, as a keyed hash would give.
func person(i int) uint64 {
	z := uint64(i) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// group sketches persons from..to−1 for threshold k, leaving out skip.
func group(k uint32, from, to int, skip ...int) *Sketch {
	s := newSketch(CellsFor(k))
	for i := from; i < to; i++ {
		if !contains(skip, i) {
			s.Add(person(i))
		}
	}
	return s
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sketchOf(m int, hs []uint64) *Sketch {
	s := newSketch(m)
	for _, h := range hs {
		s.Add(h)
	}
	return s
}

// sub removes the person with hash h: the sketch of the set less h.
func (s *Sketch) sub(h uint64) {
	i := h & uint64(len(s.counts)-1)
	s.counts[i]--
	s.xors[i] ^= h
	s.n--
}

func testOptions() Options {
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openStore opens a fresh store in a temporary directory, closed at the
// end of the test; the path lets a test reopen it.
func openStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "diffcheck.db")
	s := openAt(t, path)
	t.Cleanup(func() { s.Close() })
	return s, path
}

func release(t testing.TB, s *Store, scope Scope, k uint32, now time.Time, groups ...*Sketch) Outcome {
	t.Helper()
	out, err := s.Release(scope, testScheme, k, groups, now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stored flushes and counts the entries in the file, checking that the
// time index has one key per entry.
func stored(t testing.TB, s *Store) int {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var n, idx int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketEntries).Stats().KeyN
		idx = tx.Bucket(bucketByTime).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != idx {
		t.Fatalf("%d entries but %d time index keys", n, idx)
	}
	return n
}

// logUniform returns an int in [lo, hi], log-uniformly: small sets are as
// common as large ones, scale for scale.
func logUniform(rng *rand.Rand, lo, hi int) int {
	f := float64(lo) * math.Pow(float64(hi+1)/float64(lo), rng.Float64())
	return min(int(f), hi)
}
