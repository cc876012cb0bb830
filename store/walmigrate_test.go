package store

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/yrd-exchange/yrdnode/store/wal"
)

func openTestWAL(t testing.TB, dir string, opts wal.Options) *wal.Log {
	t.Helper()
	w, err := wal.Open(dir, opts)
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

// A raft.db from before the WAL: its entries move to the WAL, in order and
// intact, and leave the bbolt file, whose stable keys stay.
func TestMigrateLogsMovesEntriesOutOfBbolt(t *testing.T) {
	dir := t.TempDir()
	src := openTestLogStore(t, filepath.Join(dir, "raft.db"))
	defer src.Close()
	storeRange(t, src, 1, 1500)
	if err := src.DeleteRange(1, 99); err != nil { // compacted once
		t.Fatal(err)
	}
	if err := src.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	dst := openTestWAL(t, filepath.Join(dir, "wal"), wal.Options{})

	n, err := MigrateLogs(src, dst)
	if err != nil || n != 1401 {
		t.Fatalf("MigrateLogs = %d, %v; want 1401", n, err)
	}
	checkRange(t, dst, 100, 1500)
	checkBounds(t, src, 0, 0)
	checkMissing(t, src, 100, 1500)
	if v, err := src.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("CurrentTerm = %d, %v", v, err)
	}
	// Nothing left to move: a no-op, the WAL untouched.
	if n, err := MigrateLogs(src, dst); n != 0 || err != nil {
		t.Fatalf("second MigrateLogs = %d, %v", n, err)
	}
	dst.Close()
	dst = openTestWAL(t, filepath.Join(dir, "wal"), wal.Options{})
	defer dst.Close()
	checkRange(t, dst, 100, 1500)
}

// An interrupted migration (entries still in bbolt, part of them in the
// WAL) is redone from bbolt; so is one where the WAL holds an older log.
func TestMigrateLogsRedoesAnInterruptedMigration(t *testing.T) {
	dir := t.TempDir()
	src := openTestLogStore(t, filepath.Join(dir, "raft.db"))
	defer src.Close()
	storeRange(t, src, 10, 700)
	dst := openTestWAL(t, filepath.Join(dir, "wal"), wal.Options{NoSync: true})
	defer dst.Close()
	storeRange(t, dst, 10, 300)
	if n, err := MigrateLogs(src, dst); n != 691 || err != nil {
		t.Fatalf("MigrateLogs = %d, %v", n, err)
	}
	checkRange(t, dst, 10, 700)
	checkBounds(t, src, 0, 0)
}

// The bbolt store allowed gaps: raft left the entries from before an
// installed snapshot below one. Only the run after the last gap moves.
func TestMigrateLogsSkipsEntriesBelowAGap(t *testing.T) {
	dir := t.TempDir()
	src := openTestLogStore(t, filepath.Join(dir, "raft.db"))
	defer src.Close()
	storeRange(t, src, 1, 50)
	storeRange(t, src, 80, 90)
	storeRange(t, src, 200, 260)
	dst := openTestWAL(t, filepath.Join(dir, "wal"), wal.Options{})
	defer dst.Close()
	if n, err := MigrateLogs(src, dst); n != 61 || err != nil {
		t.Fatalf("MigrateLogs = %d, %v", n, err)
	}
	checkRange(t, dst, 200, 260)
	checkBounds(t, src, 0, 0)
	var l raft.Log
	if err := src.GetLog(20, &l); err != raft.ErrLogNotFound {
		t.Fatalf("entry below the gap left in bbolt: %v", err)
	}
}
