package wal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// writeTestSegments writes entries 1..n, one StoreLogs each, into a WAL in
// dir and closes it.
func writeTestSegments(t *testing.T, dir string, opts Options, n uint64) {
	t.Helper()
	w := openTest(t, dir, opts)
	for i := uint64(1); i <= n; i++ {
		if err := w.StoreLog(testLog(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// lastRecordOffset is where the record of the WAL's last entry starts.
func lastRecordOffset(t *testing.T, dir string) (path string, off, size int64) {
	t.Helper()
	w := openTest(t, dir, Options{})
	defer w.Close()
	seg := w.segs[len(w.segs)-1]
	return seg.path, seg.offs[len(seg.offs)-2], seg.end()
}

// copyDir copies the WAL directory src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// A crash in the middle of an append leaves the last record cut short at
// any byte: the reopened log ends before it and takes appends again.
func TestTornTailAtEveryOffsetOfTheLastRecord(t *testing.T) {
	orig := t.TempDir()
	writeTestSegments(t, orig, Options{}, 5)
	path, off, size := lastRecordOffset(t, orig)
	for cut := off; cut < size; cut++ {
		dir := copyDir(t, orig)
		seg := filepath.Join(dir, filepath.Base(path))
		if err := os.Truncate(seg, cut); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		checkRange(t, w, 1, 4)
		r := w.Recovery()
		if cut > off && (r.Path != seg || r.Offset != off || r.Dropped != cut-off || r.Reason == "") {
			t.Fatalf("cut at %d: recovery = %+v, want %s cut at %d", cut, r, seg, off)
		}
		if fi, _ := os.Stat(seg); fi.Size() != off {
			t.Fatalf("cut at %d: segment is %d bytes after open, want %d", cut, fi.Size(), off)
		}
		storeRange(t, w, 5, 6)
		w.Close()
		w = openTest(t, dir, Options{})
		checkRange(t, w, 1, 6)
		w.Close()
	}
}

// A flipped bit anywhere in the last record (header or payload) fails its
// checksum: the record is dropped as a torn append would be.
func TestFlippedByteInLastRecordDropsIt(t *testing.T) {
	orig := t.TempDir()
	writeTestSegments(t, orig, Options{}, 5)
	path, off, size := lastRecordOffset(t, orig)
	for at := off; at < size; at++ {
		dir := copyDir(t, orig)
		seg := filepath.Join(dir, filepath.Base(path))
		flipByte(t, seg, at)
		w, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("flip at %d: %v", at, err)
		}
		checkRange(t, w, 1, 4)
		if r := w.Recovery(); r.Offset != off {
			t.Fatalf("flip at %d: recovery = %+v", at, r)
		}
		w.Close()
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x20
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Damage before the last segment cannot come from a crash during an
// append: the WAL refuses to open and names the file and offset.
func TestFlippedByteInEarlierSegmentRefusesToOpen(t *testing.T) {
	orig := t.TempDir()
	writeTestSegments(t, orig, Options{SegmentSize: 100}, 12)
	files := segFiles(t, orig)
	if len(files) < 3 {
		t.Fatalf("want several segments, got %v", files)
	}
	for _, name := range files[:len(files)-1] {
		fi, _ := os.Stat(filepath.Join(orig, name))
		for _, at := range []int64{0, 5, 9, fi.Size() / 2, fi.Size() - 1} {
			dir := copyDir(t, orig)
			flipByte(t, filepath.Join(dir, name), at)
			w, err := Open(dir, Options{SegmentSize: 100})
			if err == nil {
				w.Close()
				t.Fatalf("%s flipped at %d: open succeeded", name, at)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("%s flipped at %d: error %q does not name the file and offset", name, at, err)
			}
		}
	}
}

// In the last segment a bad record ends the log, wherever it is: a batch
// that a crash interrupted may have reached the disk in any order, so the
// first bad record is where the unsynced part may begin.
func TestBadRecordInLastSegmentCutsTheLogThere(t *testing.T) {
	dir := t.TempDir()
	writeTestSegments(t, dir, Options{}, 6)
	w := openTest(t, dir, Options{})
	seg := w.segs[0]
	path, third := seg.path, seg.offs[2]
	w.Close()
	flipByte(t, path, third+headerSize+1)
	w = openTest(t, dir, Options{})
	defer w.Close()
	checkRange(t, w, 1, 2)
}

// A record whose checksum holds but whose index is wrong, or a missing
// segment, is a gap in the log, not a torn write.
func TestGapsRefuseToOpen(t *testing.T) {
	orig := t.TempDir()
	writeTestSegments(t, orig, Options{SegmentSize: 100}, 12)
	files := segFiles(t, orig)

	dir := copyDir(t, orig)
	os.Remove(filepath.Join(dir, files[1]))
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "gap") || !strings.Contains(err.Error(), files[2]) {
		t.Fatalf("open with %s missing: %v", files[1], err)
	}

	// The last segment renamed one index on: its records do not match.
	dir = copyDir(t, orig)
	last := files[len(files)-1]
	var start uint64
	fmt.Sscanf(last, "%020d", &start)
	os.Rename(filepath.Join(dir, last), filepath.Join(dir, segmentName(start+1)))
	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "where index") {
		t.Fatalf("open with a misnamed last segment: %v", err)
	}

	dir = copyDir(t, orig)
	os.WriteFile(filepath.Join(dir, "12.seg"), nil, 0o600)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "12.seg") {
		t.Fatalf("open with a malformed segment name: %v", err)
	}

	dir = copyDir(t, orig)
	os.WriteFile(filepath.Join(dir, firstName), []byte("garbage"), 0o600)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a damaged first-index file: %v", err)
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

// A delete interrupted by a crash leaves a state the next open accepts.
func TestOpenAfterInterruptedDeletes(t *testing.T) {
	opts := Options{SegmentSize: 200}
	orig := t.TempDir()
	writeTestSegments(t, orig, opts, 30)
	files := segFiles(t, orig)
	starts, _ := listSegments(OS, orig)
	if len(files) < 4 {
		t.Fatalf("want several segments, got %v", files)
	}

	// Compaction wrote the new first index and crashed before removing
	// the segments below it.
	dir := copyDir(t, orig)
	first := starts[2] + 1
	(&Log{dir: dir, fs: OS}).writeFirst(first)
	w := openTest(t, dir, opts)
	checkRange(t, w, first, 30)
	w.Close()
	if got := segFiles(t, dir); len(got) != len(files)-2 {
		t.Fatalf("compacted segments left: %v", got)
	}

	// Deleting everything crashed after removing the oldest segments and
	// before the first-index file.
	dir = copyDir(t, orig)
	(&Log{dir: dir, fs: OS}).writeFirst(3)
	os.Remove(filepath.Join(dir, files[0]))
	os.Remove(filepath.Join(dir, files[1]))
	w = openTest(t, dir, opts)
	checkRange(t, w, starts[2], 30)
	w.Close()

	// ... or after removing every segment.
	dir = t.TempDir()
	(&Log{dir: dir, fs: OS}).writeFirst(17)
	w = openTest(t, dir, opts)
	checkBounds(t, w, 0, 0)
	storeRange(t, w, 3, 4)
	w.Close()
	w = openTest(t, dir, opts)
	checkRange(t, w, 3, 4)
	w.Close()

	// A first index past the end (the tail it pointed into was lost, which
	// NoSync allows) leaves an empty log.
	dir = copyDir(t, orig)
	(&Log{dir: dir, fs: OS}).writeFirst(31)
	w = openTest(t, dir, opts)
	checkBounds(t, w, 0, 0)
	w.Close()
	if got := segFiles(t, dir); len(got) != 0 {
		t.Fatalf("segments left: %v", got)
	}

	// A leftover temporary file is ignored and removed; so is an empty
	// last segment (created, then the crash came before any record).
	dir = copyDir(t, orig)
	os.WriteFile(filepath.Join(dir, firstName+".tmp"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, segmentName(31)), nil, 0o600)
	w = openTest(t, dir, opts)
	checkRange(t, w, 1, 30)
	storeRange(t, w, 31, 31)
	w.Close()
	if _, err := os.Stat(filepath.Join(dir, firstName+".tmp")); err == nil {
		t.Fatal("temporary file left")
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

// startRaft runs a single-node raft with the WAL (behind raft's log
// cache, as consensus does) as log store and a file-backed stable
// store, compacting often.
func startRaft(t *testing.T, dir string, bootstrap bool) (*raft.Raft, *Log, *fileStable, *countingFSM) {
	t.Helper()
	stable := stableStore(t, filepath.Join(dir, "raft.db"))
	wal := openTest(t, filepath.Join(dir, "wal"), Options{SegmentSize: 2 << 10})
	logs, err := raft.NewLogCache(16, wal)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr, trans := raft.NewInmemTransport("")
	conf := raft.DefaultConfig()
	conf.LocalID = "node-1"
	conf.LogOutput = io.Discard
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 40
	conf.TrailingLogs = 20
	conf.SnapshotInterval = 20 * time.Millisecond
	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(conf, logs, stable, snaps, trans, cfg); err != nil {
			t.Fatal(err)
		}
	}
	fsm := &countingFSM{}
	r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	return r, wal, stable, fsm
}

func TestUnderRealRaftWithCompactionAndRestart(t *testing.T) {
	dir := t.TempDir()
	r, wal, stable, fsm := startRaft(t, dir, true)
	waitLeader(t, r)
	for i := range 300 {
		if err := r.Apply([]byte(fmt.Sprintf("entry-%d", i)), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for a snapshot to compact the log.
	deadline := time.Now().Add(5 * time.Second)
	for first, _ := wal.FirstIndex(); first <= 1; first, _ = wal.FirstIndex() {
		if time.Now().After(deadline) {
			t.Fatal("raft never compacted the log")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fsm.count() < 300 {
		t.Fatalf("fsm applied %d", fsm.count())
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	first, _ := wal.FirstIndex()
	last, _ := wal.LastIndex()
	wal.Close()
	stable.Close()
	if last-first+1 < 20 {
		t.Fatalf("log %d-%d is shorter than TrailingLogs", first, last)
	}

	r2, wal2, stable2, _ := startRaft(t, dir, false)
	defer stable2.Close()
	defer wal2.Close()
	defer r2.Shutdown()
	checkBounds(t, wal2, first, last)
	waitLeader(t, r2)
	if err := r2.Apply([]byte("after restart"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if got, _ := wal2.LastIndex(); got <= last || wal2.GetLog(got, &l) != nil {
		t.Fatalf("after restart last index %d (was %d)", got, last)
	}
}

// walChildEnv makes the test binary run walChild instead of the tests.
const walChildEnv = "YRD_WAL_CRASH_CHILD_DIR"

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(walChildEnv)
	if dir == "" {
		t.Skip("helper process for TestSurvivesSIGKILLDuringAppends")
	}
	w, err := Open(dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	next, _ := w.LastIndex()
	next++
	for n := uint64(1); ; n++ {
		batch := make([]*raft.Log, 1+n%9)
		for i := range batch {
			batch[i] = testLog(next + uint64(i))
		}
		if err := w.StoreLogs(batch); err != nil {
			fmt.Println("append:", err)
			os.Exit(2)
		}
		next += uint64(len(batch))
		fmt.Printf("acked %d\n", next-1)
		if first, _ := w.FirstIndex(); n%50 == 0 && next-first > 300 {
			if err := w.DeleteRange(first, next-200); err != nil {
				fmt.Println("compact:", err)
				os.Exit(2)
			}
		}
	}
}

// Real processes appending with fsync on and compacting are SIGKILLed at
// random moments; every reopen finds every acknowledged entry, intact, in
// one run of indexes, and the next process carries on.
func TestSurvivesSIGKILLDuringAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	var acked uint64
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), walChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// The kill comes at a random moment after the child's first
		// acknowledgement (starting a race-enabled binary on a busy
		// machine can take longer than the window itself).
		var deadline <-chan time.Time
		startup := time.After(30 * time.Second)
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				var n uint64
				if _, err := fmt.Sscanf(line, "acked %d", &n); err != nil {
					t.Fatalf("round %d: child says %q", round, line)
				}
				acked = max(acked, n)
				if deadline == nil {
					deadline = time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond)
				}
			case <-deadline:
				break read
			case <-startup:
				t.Fatalf("round %d: the child acknowledged nothing in 30s", round)
			}
		}
		cmd.Process.Kill()
		for line := range lines { // acknowledgements already written
			var n uint64
			if _, err := fmt.Sscanf(line, "acked %d", &n); err == nil {
				acked = max(acked, n)
			}
		}
		cmd.Wait()

		w, err := Open(dir, Options{SegmentSize: 4 << 10})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		first, _ := w.FirstIndex()
		last, _ := w.LastIndex()
		if last < acked {
			t.Fatalf("round %d: log ends at %d, but %d was acknowledged", round, last, acked)
		}
		for i := first; i <= last; i++ {
			checkLog(t, w, testLog(i))
		}
		w.Close()
		t.Logf("round %d: killed after ack %d; log %d-%d", round, acked, first, last)
	}
	if acked == 0 {
		t.Fatal("the child never acknowledged an append")
	}
}
