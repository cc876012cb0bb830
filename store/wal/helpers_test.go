package wal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

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

func waitLeader(t *testing.T, r *raft.Raft) {
	t.Helper()
	select {
	case <-r.LeaderCh():
	case <-time.After(5 * time.Second):
	}
	if r.State() != raft.Leader {
		t.Fatal("no leader elected within 5s")
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

// fileStable is a raft.StableStore kept in one JSON file, rewritten on
// every Set: enough for raft's term and vote across a test's restart
// (the bbolt stable store lives in package store, which imports this one).
type fileStable struct {
	path string
	mu   sync.Mutex
	kv   map[string][]byte
}

func stableStore(t *testing.T, path string) *fileStable {
	t.Helper()
	s := &fileStable{path: path, kv: map[string][]byte{}}
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &s.kv)
	}
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return s
}

func (s *fileStable) Set(k, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[string(k)] = append([]byte(nil), v...)
	b, err := json.Marshal(s.kv)
	if err != nil {
		return err
	}
	return os.WriteFile(s.path, b, 0o600)
}

func (s *fileStable) Get(k []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[string(k)]
	if !ok {
		return nil, fmt.Errorf("not found") // raft compares the text
	}
	return v, nil
}

func (s *fileStable) SetUint64(k []byte, v uint64) error { return s.Set(k, []byte(fmt.Sprint(v))) }

func (s *fileStable) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	var n uint64
	_, err = fmt.Sscan(string(v), &n)
	return n, err
}

func (s *fileStable) Close() error { return nil }
