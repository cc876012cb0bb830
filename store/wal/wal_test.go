package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openTest(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func storeRange(t testing.TB, s raft.LogStore, from, to uint64) {
	t.Helper()
	var batch []*raft.Log
	for i := from; i <= to; i++ {
		batch = append(batch, testLog(i))
	}
	if err := s.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
}

func checkRange(t *testing.T, s raft.LogStore, from, to uint64) {
	t.Helper()
	checkBounds(t, s, from, to)
	for i := from; i <= to; i++ {
		checkLog(t, s, testLog(i))
	}
	checkMissing(t, s, from-1, to+1)
}

func checkMissing(t *testing.T, s raft.LogStore, indexes ...uint64) {
	t.Helper()
	for _, i := range indexes {
		var l raft.Log
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) = %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// The raft.LogStore contract: appends, reads, bounds, the deletes raft
// makes, and all of it surviving a reopen.
func TestLogStoreContract(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, Options{})
	checkContractAppends(t, w)
	checkContractDeletes(t, w)
	checkContractClose(t, w)

	// Reopen: the same log, including the compacted first index.
	w = openTest(t, dir, Options{})
	checkRange(t, w, 13, 43)
	if r := w.Recovery(); r.Path != "" {
		t.Fatalf("clean reopen cut a tail: %+v", r)
	}
	storeRange(t, w, 44, 50)

	// Delete everything (raft after installing a snapshot); the next
	// append may start anywhere, also below the old first index.
	if err := w.DeleteRange(13, 50); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, w, 0, 0)
	checkMissing(t, w, 13, 50)
	if got := segFiles(t, dir); len(got) != 0 {
		t.Fatalf("segments left after deleting everything: %v", got)
	}
	storeRange(t, w, 5, 8)
	checkRange(t, w, 5, 8)
	w.Close()
	w = openTest(t, dir, Options{})
	defer w.Close()
	checkRange(t, w, 5, 8)
	if !w.IsMonotonic() {
		t.Fatal("IsMonotonic = false")
	}
}

// checkContractAppends appends 1..40 to an empty log, one entry and one
// batch at a time, and checks that only the next index may follow.
func checkContractAppends(t *testing.T, w *Log) {
	t.Helper()
	checkBounds(t, w, 0, 0)
	checkMissing(t, w, 0, 1, 2)
	if err := w.StoreLogs(nil); err != nil {
		t.Fatal(err)
	}

	for i := uint64(1); i <= 10; i++ {
		if err := w.StoreLog(testLog(i)); err != nil {
			t.Fatal(err)
		}
	}
	storeRange(t, w, 11, 40)
	checkRange(t, w, 1, 40)

	// Only the next index may be appended, as one run.
	for _, batch := range [][]*raft.Log{
		{testLog(42)},              // gap
		{testLog(40)},              // overwrite
		{testLog(1)},               // far back
		{testLog(41), testLog(43)}, // hole inside the batch
		{testLog(41), testLog(41)},
	} {
		if err := w.StoreLogs(batch); !errors.Is(err, ErrOutOfOrder) {
			t.Fatalf("StoreLogs(%d..) = %v, want ErrOutOfOrder", batch[0].Index, err)
		}
	}
	checkRange(t, w, 1, 40)
}

// checkContractDeletes takes the log of checkContractAppends (1..40)
// through the deletes raft makes, leaving 13..43.
func checkContractDeletes(t *testing.T, w *Log) {
	t.Helper()
	// Compaction after a snapshot: a prefix.
	if err := w.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	checkRange(t, w, 11, 40)
	// A follower dropping a conflicting suffix, then taking the leader's
	// entries in its place.
	if err := w.DeleteRange(31, 40); err != nil {
		t.Fatal(err)
	}
	checkRange(t, w, 11, 30)
	conflict := &raft.Log{Index: 31, Term: 99, Type: raft.LogCommand, Data: []byte("new leader")}
	if err := w.StoreLogs([]*raft.Log{conflict}); err != nil {
		t.Fatal(err)
	}
	checkLog(t, w, conflict)
	if err := w.DeleteRange(31, 31); err != nil {
		t.Fatal(err)
	}
	storeRange(t, w, 31, 45)
	checkRange(t, w, 11, 45)

	// A hole is refused; ranges beyond the log are trimmed or ignored.
	if err := w.DeleteRange(20, 30); !errors.Is(err, ErrRange) {
		t.Fatalf("DeleteRange(20, 30) = %v, want ErrRange", err)
	}
	for _, r := range [][2]uint64{{1, 5}, {46, 100}, {30, 20}} {
		if err := w.DeleteRange(r[0], r[1]); err != nil {
			t.Fatalf("DeleteRange(%d, %d) = %v", r[0], r[1], err)
		}
	}
	if err := w.DeleteRange(0, 12); err != nil { // below first: a prefix
		t.Fatal(err)
	}
	if err := w.DeleteRange(44, 1000); err != nil { // past last: a suffix
		t.Fatal(err)
	}
	checkRange(t, w, 13, 43)
}

// checkContractClose closes the log twice and checks that a closed log
// refuses reads and writes.
func checkContractClose(t *testing.T, w *Log) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var l raft.Log
	if err := w.GetLog(20, &l); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetLog after Close = %v, want ErrClosed", err)
	}
	if err := w.StoreLogs([]*raft.Log{testLog(44)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLogs after Close = %v, want ErrClosed", err)
	}
}

// Many entries roll over into many segments named by their first index;
// compaction removes whole segments only, a suffix delete across segments
// removes the later ones, and a reopen sees the same log.
func TestSegmentRollover(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 4 << 10}
	w := openTest(t, dir, opts)
	next := uint64(1)
	for next <= 3000 {
		n := 1 + next%37
		storeRange(t, w, next, next+n-1)
		next += n
	}
	last := next - 1
	checkRange(t, w, 1, last)
	files := segFiles(t, dir)
	if len(files) < 20 {
		t.Fatalf("%d entries made only %d segments", last, len(files))
	}
	for i, s := range w.segs {
		if files[i] != segmentName(s.start) {
			t.Fatalf("segment %d is %s, want %s", i, files[i], segmentName(s.start))
		}
		fi, _ := os.Stat(s.path)
		if fi.Size() != s.end() {
			t.Fatalf("%s is %d bytes, index says %d", s.path, fi.Size(), s.end())
		}
		if i > 0 && w.segs[i-1].end() < opts.SegmentSize {
			t.Fatalf("segment %d rolled over at %d bytes", i-1, w.segs[i-1].end())
		}
	}

	// Compact to the middle of a segment: the ones wholly below go.
	mid := w.segs[5].start + 3
	if err := w.DeleteRange(1, mid-1); err != nil {
		t.Fatal(err)
	}
	if got := segFiles(t, dir); len(got) != len(files)-5 || got[0] != files[5] {
		t.Fatalf("after compaction to %d: %d segments from %s, want %d from %s", mid, len(got), got[0], len(files)-5, files[5])
	}
	checkRange(t, w, mid, last)

	// Drop a suffix spanning several segments, and append past it.
	cut := w.segs[len(w.segs)-4].start + 2
	if err := w.DeleteRange(cut, last); err != nil {
		t.Fatal(err)
	}
	checkRange(t, w, mid, cut-1)
	storeRange(t, w, cut, cut+500)
	w.Close()

	w = openTest(t, dir, opts)
	defer w.Close()
	checkRange(t, w, mid, cut+500)
	if got := segFiles(t, dir); got[0] != files[5] {
		t.Fatalf("first segment after reopen is %s", got[0])
	}
}

// After a failed write the WAL takes no more writes until reopened, and
// the reopened log holds what was durable before.
func TestFailedWriteIsSticky(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, Options{})
	storeRange(t, w, 1, 3)
	w.segs[0].f.Close() // the next write fails
	if err := w.StoreLogs([]*raft.Log{testLog(4)}); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	if err := w.StoreLogs([]*raft.Log{testLog(4)}); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after a failure = %v, want ErrFailed", err)
	}
	if err := w.DeleteRange(1, 1); !errors.Is(err, ErrFailed) {
		t.Fatalf("delete after a failure = %v, want ErrFailed", err)
	}
	checkBounds(t, w, 1, 3)
	w.Close()
	w = openTest(t, dir, Options{})
	defer w.Close()
	checkRange(t, w, 1, 3)
	storeRange(t, w, 4, 4)
}

// Raft reads entries from its replication goroutines while its main loop
// appends and its snapshot goroutine compacts.
func TestConcurrentReadsDuringAppendsAndCompaction(t *testing.T) {
	w := openTest(t, t.TempDir(), Options{NoSync: true, SegmentSize: 8 << 10})
	defer w.Close()
	storeRange(t, w, 1, 10)
	const total = 4000
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() { // appender
		defer wg.Done()
		defer done.Store(true)
		for next := uint64(11); next <= total; {
			n := min(1+next%17, total-next+1)
			batch := make([]*raft.Log, n)
			for i := range batch {
				batch[i] = testLog(next + uint64(i))
			}
			if err := w.StoreLogs(batch); err != nil {
				errs <- err
				return
			}
			next += n
		}
	}()
	wg.Add(1)
	go func() { // compactor
		defer wg.Done()
		for !done.Load() {
			last, _ := w.LastIndex()
			first, _ := w.FirstIndex()
			if last > first+500 {
				if err := w.DeleteRange(first, last-400); err != nil {
					errs <- err
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for r := range 4 {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for !done.Load() {
				first, _ := w.FirstIndex()
				last, _ := w.LastIndex()
				i := first + rng.Uint64N(last-first+1)
				var l raft.Log
				err := w.GetLog(i, &l)
				if errors.Is(err, raft.ErrLogNotFound) {
					if f, _ := w.FirstIndex(); f > i {
						continue // compacted meanwhile
					}
				}
				if err != nil {
					errs <- fmt.Errorf("GetLog(%d) in %d-%d: %w", i, first, last, err)
					return
				}
				if want := testLog(i); l.Index != i || string(l.Data) != string(want.Data) {
					errs <- fmt.Errorf("GetLog(%d) = %+v", i, l)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if last, _ := w.LastIndex(); last != total {
		t.Fatalf("LastIndex = %d, want %d", last, total)
	}
}
