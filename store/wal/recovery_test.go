package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
