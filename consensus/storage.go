package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/yrd-exchange/yrdnode/store"
	"github.com/yrd-exchange/yrdnode/store/wal"
)

// Option adjusts Open beyond Config.
type Option func(*options)

type options struct {
	walFS   wal.FS
	metrics Metrics
}

// WithWALFS makes the raft log reach its files through fs instead of the
// operating system. Only for tests, which inject disk faults with it
// (store/wal/waltest).
func WithWALFS(fs wal.FS) Option { return func(o *options) { o.walFS = fs } }

// storageFailure is this node's sticky storage failure: the raft log, the
// stable store or the catalog could not make a write durable. Raft's own
// reaction does not suffice: a leader whose log append fails answers the
// write with the error and steps down, but stays a voter that can win the
// next election and fail again, churning the cluster; a follower just
// fails every AppendEntries. So the first failure is reported once and
// raft is stopped here (see Raft.watchStorage); a restart recovers from
// what is on disk.
type storageFailure struct {
	log  *slog.Logger
	once sync.Once
	ch   chan struct{} // closed at the first failure
	mu   sync.Mutex
	err  error
}

func newStorageFailure(log *slog.Logger) *storageFailure {
	return &storageFailure{log: log, ch: make(chan struct{})}
}

// fail records that what (the raft log, ...) failed with cause, once.
func (s *storageFailure) fail(what string, cause error) {
	if closedStore(cause) {
		return // shutting down, not failing: a clean stop logs no error
	}
	s.once.Do(func() {
		err := fmt.Errorf("%w: %s: %w", ErrStorageFailed, what, cause)
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		s.log.Error("storage failed: this node stops taking part in raft and refuses writes; "+
			"restart it to recover from what is on disk", "store", what, "err", cause)
		close(s.ch)
	})
}

// closedStore reports whether err says a store was closed under a call,
// as happens while a node stops.
func closedStore(err error) bool {
	return errors.Is(err, wal.ErrClosed) || errors.Is(err, store.ErrClosed) || errors.Is(err, bolterrors.ErrDatabaseNotOpen)
}

// Err is the failure, nil while storage works.
func (s *storageFailure) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// guardedLog is raft's log store with failures reported. Reads pass
// through; a raft.ErrLogNotFound is not a failure.
type guardedLog struct {
	*wal.Log
	failure *storageFailure
	metrics Metrics
}

var _ raft.MonotonicLogStore = guardedLog{}

func (g guardedLog) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

func (g guardedLog) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := g.Log.StoreLogs(logs)
	g.metrics.ObserveLogStore(time.Since(start))
	if err != nil && len(logs) > 0 {
		g.failure.fail(fmt.Sprintf("raft log (append %d-%d)", logs[0].Index, logs[len(logs)-1].Index), err)
	}
	return err
}

func (g guardedLog) DeleteRange(minIdx, maxIdx uint64) error {
	err := g.Log.DeleteRange(minIdx, maxIdx)
	if err != nil {
		g.failure.fail(fmt.Sprintf("raft log (delete %d-%d)", minIdx, maxIdx), err)
	}
	return err
}

func (g guardedLog) GetLog(index uint64, l *raft.Log) error {
	err := g.Log.GetLog(index, l)
	if errors.Is(err, wal.ErrCorrupt) {
		g.failure.fail(fmt.Sprintf("raft log (read %d)", index), err)
	}
	return err
}

// guardedStable is raft's stable store (term, vote) with failures
// reported. Raft itself panics when it cannot save a new term, which ends
// the process: a restart then recovers the same way.
type guardedStable struct {
	raft.StableStore
	failure *storageFailure
}

func (g guardedStable) Set(k, v []byte) error {
	err := g.StableStore.Set(k, v)
	if err != nil {
		g.failure.fail(fmt.Sprintf("stable store (set %s)", k), err)
	}
	return err
}

func (g guardedStable) SetUint64(k []byte, v uint64) error {
	err := g.StableStore.SetUint64(k, v)
	if err != nil {
		g.failure.fail(fmt.Sprintf("stable store (set %s)", k), err)
	}
	return err
}
