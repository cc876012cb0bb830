package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/yrd-exchange/yrdnode/store/wal"
	"github.com/yrd-exchange/yrdnode/store/wal/waltest"
)

// The rule every test here holds the Log to: it never acknowledges (StoreLogs
// returns nil) an entry that is not durable. After a fault it is failed for
// good — every write is refused with ErrFailed naming the cause, and a file
// whose fdatasync failed is never synced again — and a reopen recovers from
// the files: every acknowledged entry intact, of the failed batch a prefix at
// most, and appends going on after it.

func entry(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d %s", i, bytes.Repeat([]byte{'x'}, 100))}
}

func entries(from, to uint64) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, entry(i))
	}
	return ls
}

func open(t *testing.T, dir string, opts wal.Options) *wal.Log {
	t.Helper()
	w, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return w
}

// checkRefuses asserts that the Log is failed for good: every write path
// returns an error wrapping ErrFailed and cause, even once the disk is healthy.
func checkRefuses(t *testing.T, w *wal.Log, cause error) {
	t.Helper()
	last, _ := w.LastIndex()
	for name, err := range map[string]error{
		"StoreLogs":   w.StoreLogs(entries(last+1, last+1)),
		"Sync":        w.Sync(),
		"DeleteRange": w.DeleteRange(last, last),
		"Err":         w.Err(),
	} {
		if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, cause) {
			t.Errorf("%s after the fault = %v, want ErrFailed wrapping %v", name, err, cause)
		}
	}
	if got, _ := w.LastIndex(); got != last {
		t.Errorf("LastIndex moved from %d to %d on a failed Log", last, got)
	}
}

// checkReopen reopens dir on the real disk and checks the rule: entries
// 1..acked intact, then of batchTo at most a prefix, and appends working.
func checkReopen(t *testing.T, dir string, acked, batchTo uint64) (last uint64) {
	t.Helper()
	w := open(t, dir, wal.Options{})
	defer w.Close()
	first, _ := w.FirstIndex()
	last, _ = w.LastIndex()
	if first != 1 || last < acked || last > batchTo {
		t.Fatalf("reopened log holds %d-%d; want 1-%d and at most a prefix of %d-%d", first, last, acked, acked+1, batchTo)
	}
	for i := uint64(1); i <= last; i++ {
		var got raft.Log
		if err := w.GetLog(i, &got); err != nil || !bytes.Equal(got.Data, entry(i).Data) {
			t.Fatalf("entry %d after reopen: %v, data %q", i, err, got.Data)
		}
	}
	if err := w.StoreLogs(entries(last+1, last+2)); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
	return last
}

// Writes that fail: nothing written (EIO), a short write with or without an
// error (ENOSPC: the disk filled up mid-write), and one that lands two whole
// records of three. Truncation fails too, so what was written stays on disk
// for the reopen to deal with.
func TestFailedWritesAreNeverAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep func(n int) int
		err  error
		want error // what the StoreLogs error wraps
	}{
		{"EIO", func(int) int { return 0 }, syscall.EIO, syscall.EIO},
		{"short write, no error", func(n int) int { return n / 2 }, nil, io.ErrShortWrite},
		{"disk full mid-write", func(n int) int { return n / 3 }, syscall.ENOSPC, syscall.ENOSPC},
		{"two records of three", func(n int) int { return n*2/3 + 1 }, syscall.EIO, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			faults := waltest.New()
			w := open(t, dir, wal.Options{FS: faults})
			if err := w.StoreLogs(entries(1, 3)); err != nil {
				t.Fatal(err)
			}
			faults.FailWrites(tc.keep, tc.err)
			err := w.StoreLogs(entries(4, 6))
			if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, tc.want) {
				t.Fatalf("StoreLogs on a failing disk = %v, want ErrFailed wrapping %v", err, tc.want)
			}
			var l raft.Log
			if err := w.GetLog(4, &l); !errors.Is(err, raft.ErrLogNotFound) {
				t.Fatalf("GetLog(4) after the failed append = %v, want not found", err)
			}
			faults.Heal()
			checkRefuses(t, w, tc.want)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			last := checkReopen(t, dir, 3, 6)
			if tc.name == "two records of three" && last != 5 {
				// Records 4 and 5 reached the disk whole; the torn 6 must
				// not surface.
				t.Fatalf("reopened log ends at %d, want 5", last)
			}
		})
	}
}

// An fdatasync that fails: the batch is not acknowledged, the Log stops,
// and that file is never synced again — not by later writes, Sync or Close
// (after a failed fdatasync the page cache may claim data the disk lost).
func TestFailedSyncStopsTheLogAndIsNeverRetried(t *testing.T) {
	dir := t.TempDir()
	faults := waltest.New()
	w := open(t, dir, wal.Options{FS: faults})
	if err := w.StoreLogs(entries(1, 3)); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "00000000000000000001.seg")
	if n := faults.Syncs(seg); n != 1 {
		t.Fatalf("%d fdatasyncs of %s for one batch, want 1", n, seg)
	}
	faults.FailSyncs(syscall.EIO)
	err := w.StoreLogs(entries(4, 6))
	if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("StoreLogs with a failing fdatasync = %v, want ErrFailed wrapping EIO", err)
	}
	if got := err.Error(); !bytes.Contains([]byte(got), []byte(seg)) || !bytes.Contains([]byte(got), []byte("fdatasync")) {
		t.Errorf("error %q does not name the file and the fdatasync", got)
	}
	faults.Heal()
	checkRefuses(t, w, syscall.EIO)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := faults.Syncs(seg); n != 2 {
		t.Errorf("%d fdatasyncs of %s, want 2 (the good batch, the failed one)", n, seg)
	}
	if again := faults.SyncsAfterFailure(); len(again) > 0 {
		t.Fatalf("synced again after a failed fdatasync: %v", again)
	}
	checkReopen(t, dir, 3, 6)
}

// The disk is full when a new segment must be created: on the first append
// and at a rollover. Nothing is acknowledged, the Log stops, a reopen holds
// what was acknowledged.
func TestDiskFullOnSegmentCreation(t *testing.T) {
	for _, acked := range []uint64{0, 3} {
		t.Run(fmt.Sprintf("after %d entries", acked), func(t *testing.T) {
			dir := t.TempDir()
			faults := waltest.New()
			w := open(t, dir, wal.Options{FS: faults, SegmentSize: 200}) // one batch per segment
			if acked > 0 {
				if err := w.StoreLogs(entries(1, acked)); err != nil {
					t.Fatal(err)
				}
			}
			faults.FailCreates(syscall.ENOSPC)
			err := w.StoreLogs(entries(acked+1, acked+3))
			if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("StoreLogs with no room for a segment = %v, want ErrFailed wrapping ENOSPC", err)
			}
			faults.Heal()
			checkRefuses(t, w, syscall.ENOSPC)
			w.Close()
			w = open(t, dir, wal.Options{})
			last, _ := w.LastIndex()
			w.Close()
			if last != acked {
				t.Fatalf("reopened log ends at %d, want %d: nothing of the failed batch was written", last, acked)
			}
			if acked > 0 {
				checkReopen(t, dir, acked, acked)
			}
		})
	}
}
