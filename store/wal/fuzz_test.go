package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// segmentBytes encodes entries from..to as one segment file's content.
func segmentBytes(t testing.TB, from, to uint64) []byte {
	t.Helper()
	dir := t.TempDir()
	w := openTest(t, dir, Options{NoSync: true})
	storeRange(t, w, from, to)
	w.Close()
	b, err := os.ReadFile(filepath.Join(dir, segmentName(from)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpen feeds arbitrary bytes to Open as a segment file: as the
// only segment, as the last one after a good segment, or as one before a
// good segment. Open must never panic; it either fails with ErrCorrupt
// or yields a consistent log: one run of indexes, every entry in it
// readable and the right one, the good segments intact, appends working,
// and a reopen giving the same log.
func FuzzOpen(f *testing.F) {
	good := segmentBytes(f, 1, 3) // entries 1-3
	f.Add(byte(0), good)
	f.Add(byte(0), good[:len(good)-3])
	f.Add(byte(1), segmentBytes(f, 4, 6))
	f.Add(byte(2), segmentBytes(f, 4, 6))
	f.Add(byte(1), []byte{})
	f.Add(byte(0), []byte{5, 0, 0, 0, 1, 2, 3, 4, 1, 1, 1, 0})
	f.Add(byte(1), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		dir := t.TempDir()
		writeFuzzedSegments(t, dir, good, mode, data)
		checkFuzzedOpen(t, dir, mode)
	})
}

// writeFuzzedSegments puts the fuzzed bytes in the segment named 4 after
// good 1-3 (mode 1), before good 4-6 in the segment named 1 (mode 2), or
// alone in the segment named 1 (otherwise).
func writeFuzzedSegments(t *testing.T, dir string, good []byte, mode byte, data []byte) {
	t.Helper()
	write := func(start uint64, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, segmentName(start)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fuzzStart := uint64(1)
	switch mode % 3 {
	case 1:
		write(1, good)
		fuzzStart = 4
	case 2:
		write(4, segmentBytes(t, 4, 6))
	}
	write(fuzzStart, data)
}

// checkFuzzedOpen opens the log of writeFuzzedSegments: it must fail with
// ErrCorrupt or hold one run of readable entries, keep the good segments
// its mode wrote, take an append, and reopen to the same log.
func checkFuzzedOpen(t *testing.T, dir string, mode byte) {
	t.Helper()
	w, err := Open(dir, Options{NoSync: true})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open failed with an error that is not ErrCorrupt: %v", err)
		}
		return
	}
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	switch mode % 3 {
	case 1: // the good segment survives whole
		if first != 1 || last < 3 {
			t.Fatalf("good segment lost: log %d-%d", first, last)
		}
	case 2: // only a fully good first segment can precede 4-6
		if first != 1 || last != 6 {
			t.Fatalf("opened with a bad segment before a good one: log %d-%d", first, last)
		}
	}
	if (first == 0) != (last == 0) || first > last {
		t.Fatalf("bounds %d-%d", first, last)
	}
	checkEntriesReadable(t, w, first, last)
	next := last + 1
	if last == 0 {
		next = 100
	}
	if err := w.StoreLogs([]*raft.Log{testLog(next)}); err != nil {
		t.Fatalf("append after open: %v", err)
	}
	w.Close()
	w, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer w.Close()
	if first == 0 {
		first = next
	}
	last = next
	checkBounds(t, w, first, last)
	checkEntriesReadable(t, w, first, last)
}

// checkEntriesReadable reads every entry of first..last (none if first is
// 0) and finds nothing past last.
func checkEntriesReadable(t *testing.T, w *Log, first, last uint64) {
	t.Helper()
	for i := first; i <= last && first != 0; i++ {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("GetLog(%d) in %d-%d = %+v, %v", i, first, last, l, err)
		}
	}
	var l raft.Log
	if err := w.GetLog(last+1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(last+1) = %v", err)
	}
}
