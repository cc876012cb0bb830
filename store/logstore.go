package store

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/yrd-exchange/yrdnode/store/wal"
)

var (
	bucketLogs = []byte("logs")
	bucketConf = []byte("conf")
)

// logFillPercent is how full bbolt fills a page of the logs bucket before
// it splits it.
const logFillPercent = 1.0

// LogStore is a raft.LogStore and raft.StableStore backed by one bbolt file.
// The node uses it as raft's stable store only; the log is in the WAL, and
// entries an older version left here are moved there (MigrateLogs). It is
// safe for concurrent use: raft reads logs from its replication goroutines
// while the main loop appends and truncates.
type LogStore struct {
	db *bolt.DB

	// wmu orders writers so the cached first/last indexes are updated in
	// commit order.
	wmu    sync.Mutex
	first  atomic.Uint64
	last   atomic.Uint64
	closed atomic.Bool
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// OpenLogStore opens or creates the log store at path.
func OpenLogStore(path string, opts Options) (*LogStore, error) {
	bopts := opts.boltOptions(0)
	// Without a persisted freelist a commit writes only the log pages and
	// the meta page. With one, every commit rewrites the whole list of free
	// pages (thousands after raft compacts the log), sorting it first. The
	// list is rebuilt by walking the file on open, which for a log that
	// raft keeps compacted takes milliseconds. Commits stay fsynced.
	bopts.NoFreelistSync = true
	db, err := bolt.Open(path, 0o600, bopts)
	if err != nil {
		return nil, fmt.Errorf("store: open log store %s: %w", path, inUse(err))
	}
	s := &LogStore{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLogs, bucketConf} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		c := tx.Bucket(bucketLogs).Cursor()
		if k, _ := c.First(); k != nil {
			s.first.Store(binary.BigEndian.Uint64(k))
		}
		if k, _ := c.Last(); k != nil {
			s.last.Store(binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: init log store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the underlying bbolt file.
func (s *LogStore) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}

// FirstIndex returns the first stored index, 0 if empty. Served from memory.
func (s *LogStore) FirstIndex() (uint64, error) { return s.first.Load(), nil }

// LastIndex returns the last stored index, 0 if empty. Served from memory.
func (s *LogStore) LastIndex() (uint64, error) { return s.last.Load(), nil }

// GetLog reads the log at index into log, or returns raft.ErrLogNotFound.
func (s *LogStore) GetLog(index uint64, log *raft.Log) error {
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], index)
	return s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get(key[:])
		if v == nil {
			return raft.ErrLogNotFound
		}
		if err := wal.DecodeLog(v, log); err != nil {
			return fmt.Errorf("store: log %d: %w", index, err)
		}
		if log.Index != index {
			return fmt.Errorf("store: log %d: stored under wrong key (holds index %d)", index, log.Index)
		}
		return nil
	})
}

// StoreLog stores one log entry.
func (s *LogStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores logs in a single bbolt transaction, so a batch costs one
// fsync however many entries it holds.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	// Encode before the write transaction to keep it short; bbolt needs keys
	// and values to stay valid until commit, so they share one buffer.
	size := 0
	for _, l := range logs {
		size += 8 + wal.MaxEncodedLogSize(l)
	}
	buf := make([]byte, 0, size)
	kv := make([][2][]byte, len(logs))
	lo, hi := logs[0].Index, logs[0].Index
	for i, l := range logs {
		start := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, l.Index)
		mid := len(buf)
		buf = wal.AppendLog(buf, l)
		kv[i] = [2][]byte{buf[start:mid:mid], buf[mid:len(buf):len(buf)]}
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		// Raft only appends at the end, so pages can be split full: the
		// default 50% leaves every page half empty forever.
		b.FillPercent = logFillPercent
		for _, p := range kv {
			if err := b.Put(p[0], p[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: store logs %d-%d: %w", lo, hi, err)
	}
	if f := s.first.Load(); f == 0 || lo < f {
		s.first.Store(lo)
	}
	if hi > s.last.Load() {
		s.last.Store(hi)
	}
	return nil
}

// DeleteRange deletes logs min..max inclusive.
func (s *LogStore) DeleteRange(minIdx, maxIdx uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	var first, last uint64
	var from [8]byte
	binary.BigEndian.PutUint64(from[:], minIdx)
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		// Re-seek after every delete: advancing a bbolt cursor past a
		// deleted key can skip entries.
		for k, _ := c.Seek(from[:]); k != nil && binary.BigEndian.Uint64(k) <= maxIdx; k, _ = c.Seek(from[:]) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		k, _ := c.First()
		if k == nil {
			// Empty. Cursor.Last must not be asked: in bbolt 1.5.0 it
			// loops forever when every leaf of a multi-page bucket was
			// emptied by deletes in the same transaction.
			return nil
		}
		first = binary.BigEndian.Uint64(k)
		if k, _ := c.Last(); k != nil {
			last = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete logs %d-%d: %w", minIdx, maxIdx, err)
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

// Set stores a stable-store key.
func (s *LogStore) Set(key, val []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConf).Put(key, val)
	})
}

// Get returns a stable-store value, or ErrKeyNotFound ("not found").
func (s *LogStore) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketConf).Get(key)
		if v == nil {
			return ErrKeyNotFound
		}
		out = append([]byte{}, v...) // v lives in the mmap only during the tx
		return nil
	})
	return out, err
}

// SetUint64 stores a uint64 as 8 big-endian bytes.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 reads a value written by SetUint64, or returns ErrKeyNotFound.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("store: stable key %q holds %d bytes, not a uint64", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
