package store

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

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
	dst := openTestWAL(t, filepath.Join(dir, "wal"), WALOptions{})

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
	dst = openTestWAL(t, filepath.Join(dir, "wal"), WALOptions{})
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
	dst := openTestWAL(t, filepath.Join(dir, "wal"), WALOptions{NoSync: true})
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
	dst := openTestWAL(t, filepath.Join(dir, "wal"), WALOptions{})
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
