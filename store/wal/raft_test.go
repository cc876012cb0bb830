package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

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
	// A snapshot compacts the log: take one rather than wait for raft's
	// timer (which may already have taken it: then nothing is new).
	if err := r.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		t.Fatal(err)
	}
	if first, _ := wal.FirstIndex(); first <= 1 {
		t.Fatalf("first index %d after a snapshot of 300 entries: raft did not compact the log", first)
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
