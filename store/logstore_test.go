package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

func openTestLogStore(t *testing.T, path string) *LogStore {
	t.Helper()
	s, err := OpenLogStore(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLog(i uint64) *raft.Log {
	l := &raft.Log{Index: i, Term: i/4 + 1, Type: raft.LogType(i % 6), Data: []byte(fmt.Sprintf("cmd-%d", i))}
	if i%2 == 0 {
		l.Extensions = []byte{byte(i), 0, 0xff}
		l.AppendedAt = time.Unix(1_750_000_000, int64(i)*1001)
	}
	return l
}

func checkLog(t *testing.T, s raft.LogStore, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("GetLog(%d): %v", want.Index, err)
	}
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
		!got.AppendedAt.Equal(want.AppendedAt) || got.AppendedAt.IsZero() != want.AppendedAt.IsZero() {
		t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, got, want)
	}
}

func checkBounds(t *testing.T, s raft.LogStore, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("first/last = %d/%d, want %d/%d", f, l, first, last)
	}
}

func TestLogStoreStoreGetDeleteRangeFirstLastAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openTestLogStore(t, path)
	checkBounds(t, s, 0, 0)
	for i := uint64(1); i <= 10; i++ {
		if err := s.StoreLog(testLog(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkBounds(t, s, 1, 10)
	for i := uint64(1); i <= 10; i++ {
		checkLog(t, s, testLog(i))
	}
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(9, 10); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 4, 8)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestLogStore(t, path)
	defer s.Close()
	checkBounds(t, s, 4, 8)
	for _, i := range []uint64{1, 3, 9, 11} {
		var l raft.Log
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) after delete: %v, want ErrLogNotFound", i, err)
		}
	}
	for i := uint64(4); i <= 8; i++ {
		checkLog(t, s, testLog(i))
	}
	if err := s.DeleteRange(0, 100); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 0, 0)
}

func TestLogStoreStoreLogsBatch(t *testing.T) {
	s := openTestLogStore(t, filepath.Join(t.TempDir(), "raft.db"))
	defer s.Close()
	batch := make([]*raft.Log, 64)
	for i := range batch {
		batch[i] = testLog(uint64(101 + i))
	}
	if err := s.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 101, 164)
	for _, l := range batch {
		checkLog(t, s, l)
	}
	// A second batch overwriting a suffix, as a follower does after a
	// conflict, keeps the bounds right.
	if err := s.DeleteRange(150, 164); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{testLog(150), testLog(151)}); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 101, 151)
	if err := s.StoreLogs(nil); err != nil {
		t.Fatal(err)
	}
}

func TestLogStoreStableSetGetUint64AndNotFound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openTestLogStore(t, path)
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) error = %v, want \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64(missing) error = %v, want \"not found\"", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-a")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTestLogStore(t, path)
	defer s.Close()
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-a" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
}

// countingFSM records applied commands.
type countingFSM struct {
	mu      sync.Mutex
	applied [][]byte
}

func (f *countingFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, append([]byte(nil), l.Data...))
	return len(f.applied)
}

func (f *countingFSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (f *countingFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

func startRaft(t *testing.T, dir string, bootstrap bool) (*raft.Raft, *LogStore, *countingFSM) {
	t.Helper()
	store := openTestLogStore(t, filepath.Join(dir, "raft.db"))
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
	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, cfg); err != nil {
			t.Fatal(err)
		}
	}
	fsm := &countingFSM{}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	return r, store, fsm
}

func waitLeader(t *testing.T, r *raft.Raft) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader elected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLogStoreUnderRealRaftSingleNodeApplyAndReopen(t *testing.T) {
	dir := t.TempDir()
	r, store, fsm := startRaft(t, dir, true)
	waitLeader(t, r)
	for i := range 100 {
		if err := r.Apply([]byte(fmt.Sprintf("entry-%d", i)), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if fsm.count() != 100 {
		t.Fatalf("fsm applied %d, want 100", fsm.count())
	}
	term := r.Stats()["term"]
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	last, _ := store.LastIndex()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// Raft restarts from what it finds in the store: the same term and log,
	// and it re-applies all 100 commands once it commits again. The in-mem
	// transport gets a new address but the single server's id is unchanged.
	store2 := openTestLogStore(t, filepath.Join(dir, "raft.db"))
	if got, _ := store2.LastIndex(); got != last {
		t.Fatalf("last index after reopen = %d, want %d", got, last)
	}
	if got, err := store2.GetUint64([]byte("CurrentTerm")); err != nil || fmt.Sprint(got) != term {
		t.Fatalf("CurrentTerm after reopen = %d, %v; raft reported %s", got, err, term)
	}
	var l raft.Log
	if err := store2.GetLog(last, &l); err != nil || string(l.Data) != "entry-99" || l.AppendedAt.IsZero() {
		t.Fatalf("last log = %+v, %v", l, err)
	}
	store2.Close()

	r2, store3, fsm2 := startRaft(t, dir, false)
	defer store3.Close()
	defer r2.Shutdown()
	// The configuration stored in the log still names the old in-memory
	// address, so the node elects itself from its own log.
	waitLeader(t, r2)
	if err := r2.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if fsm2.count() != 100 || string(fsm2.applied[99]) != "entry-99" {
		t.Fatalf("after restart fsm re-applied %d entries", fsm2.count())
	}
}

// A raft.db written with bbolt's freelist persisted (before the log store
// stopped persisting it) opens, keeps its logs and takes new ones, and a
// file written without it reopens with its free pages reused.
func TestLogStoreOpensFileWithAndWithoutPersistedFreelist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	old := Options{}.boltOptions(0) // freelist persisted, as before
	db, err := bolt.Open(path, 0o600, old)
	if err != nil {
		t.Fatal(err)
	}
	s := &LogStore{db: db}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLogs, bucketConf} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 300; i++ {
		if err := s.StoreLogs([]*raft.Log{testLog(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRange(1, 200); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for round := 0; round < 2; round++ {
		s, err := OpenLogStore(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		next := uint64(301 + 100*round)
		if first, _ := s.FirstIndex(); first != 201 {
			t.Fatalf("round %d: FirstIndex = %d, want 201", round, first)
		}
		if last, _ := s.LastIndex(); last != next-1 {
			t.Fatalf("round %d: LastIndex = %d, want %d", round, last, next-1)
		}
		for i := next; i < next+100; i++ {
			if err := s.StoreLogs([]*raft.Log{testLog(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for i := uint64(201); i < next+100; i++ {
			checkLog(t, s, testLog(i))
		}
		if err := s.db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Fatalf("round %d: bbolt check: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Deleting every entry of a log spanning many pages (as moving the log to
// the WAL does) must not hang: bbolt's Cursor.Last loops forever on a
// bucket whose leaves were all emptied in the same transaction.
func TestLogStoreDeleteEverythingOnManyPages(t *testing.T) {
	s := openTestLogStore(t, filepath.Join(t.TempDir(), "raft.db"))
	defer s.Close()
	storeRange(t, s, 1, 3000)
	done := make(chan error, 1)
	go func() { done <- s.DeleteRange(1, 3000) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("DeleteRange of every entry hangs")
	}
	checkBounds(t, s, 0, 0)
	storeRange(t, s, 3001, 3010)
	checkRange(t, s, 3001, 3010)
}
