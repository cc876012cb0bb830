package diffcheck

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("diffcheck: store is closed")

// DefaultWindow is how long a released group is remembered by default.
const DefaultWindow = 365 * 24 * time.Hour

// formatVersion is kept in the meta bucket; a file of another format is
// refused rather than misread.
const formatVersion = 1

var (
	// bucketEntries maps scope id (16) | N (8, BE) | seq (8, BE) to an
	// encoded entry, so the candidates of one size range are one scan.
	bucketEntries = []byte("entries")
	// bucketByTime maps time (8, BE) | entry key to nothing, so Prune
	// finds the expired entries without reading the others.
	bucketByTime = []byte("by_time")
	bucketMeta   = []byte("meta")
	keyVersion   = []byte("version")
	keySeq       = []byte("seq") // the last sequence number used in a key
)

// Options configures Open.
type Options struct {
	// Window is how long a released group is remembered: entries older
	// than now − Window are ignored by Release and deleted by Prune.
	Window time.Duration
	// Logger receives write failures.
	Logger *slog.Logger
}

// DefaultOptions returns a one-year window; the caller adds its Logger.
func DefaultOptions() Options { return Options{Window: DefaultWindow} }

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Window <= 0:
		return fmt.Errorf("diffcheck: Window %v must be positive", o.Window)
	case o.Logger == nil:
		return errors.New("diffcheck: Logger is required")
	}
	return nil
}

// Scope is whose releases are compared with each other: one requesting
// organisation of one city, about one dataset.
type Scope struct {
	City, Org, Dataset string
}

func (sc Scope) validate() error {
	switch {
	case sc.City == "":
		return errors.New("diffcheck: scope.City is empty")
	case sc.Org == "":
		return errors.New("diffcheck: scope.Org is empty")
	case sc.Dataset == "":
		return errors.New("diffcheck: scope.Dataset is empty")
	}
	return nil
}

type scopeID [16]byte

// id hashes the length-prefixed fields, so no two scopes share an id by
// the way their fields split and the file does not list them in clear.
func (sc Scope) id() scopeID {
	h := sha256.New()
	for _, f := range []string{sc.City, sc.Org, sc.Dataset} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		h.Write([]byte(f))
	}
	var id scopeID
	copy(id[:], h.Sum(nil))
	return id
}

// entryKey is scope id | N (BE) | seq (BE).
type entryKey [32]byte

func makeKey(id scopeID, n int64, seq uint64) entryKey {
	var k entryKey
	copy(k[:16], id[:])
	binary.BigEndian.PutUint64(k[16:24], uint64(n))
	binary.BigEndian.PutUint64(k[24:], seq)
	return k
}

func (k entryKey) n() int64 { return int64(binary.BigEndian.Uint64(k[16:24])) }

func timeKey(t int64, k entryKey) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(t)), k[:]...)
}

// record is a remembered entry whose latest state is not yet durable: a
// new one, or a stored one whose time Release moved. Only time and gen
// change, under Store.mu; the sketch is never mutated.
type record struct {
	key    entryKey
	scheme string
	sk     *Sketch
	time   int64
	gen    uint64 // Store.queued when time was last set
}

// Store remembers, per scope, a sketch of every group released in the
// window and decides which new groups may leave (Release). It is safe for
// concurrent use; Release calls are serialised.
//
// Durability: Release decides against the file and against the entries
// still in memory, and hands new entries to one writer goroutine that
// commits whatever is pending in one bbolt transaction (fsynced), so a
// query never waits for a disk flush. Entries are durable once a commit
// that took them returns, which Flush waits for; a crash forgets the
// entries released since the last finished commit — typically the last
// few milliseconds — and those groups could then be differenced.
type Store struct {
	db     *bolt.DB
	window time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	changed *sync.Cond // a commit finished or the writer stopped; uses mu
	pending map[scopeID]map[entryKey]*record
	seq     uint64 // last sequence number handed out
	queued  uint64 // generation of the newest pending change
	durable uint64 // generation up to which every change is committed
	failed  error  // sticky: a commit failed
	closed  bool
	stopped bool            // the writer has exited
	scratch map[int]*Sketch // decode buffers by cell count, under mu

	kick chan struct{} // buffered 1: something is pending
	stop chan struct{} // closed by Close
	done chan struct{} // closed by the writer on exit
}

// Open opens or creates the store at path.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("diffcheck: open %s: %w", path, err)
	}
	s := &Store{
		db: db, window: opts.Window, log: opts.Logger,
		pending: map[scopeID]map[entryKey]*record{},
		scratch: map[int]*Sketch{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.changed = sync.NewCond(&s.mu)
	if err := db.Update(s.initFile); err != nil {
		db.Close()
		return nil, fmt.Errorf("diffcheck: open %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// initFile creates the buckets, checks the format and reads the sequence.
func (s *Store) initFile(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketEntries, bucketByTime, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keyVersion); {
	case v == nil:
		if err := meta.Put(keyVersion, []byte{formatVersion}); err != nil {
			return err
		}
	case len(v) != 1 || v[0] != formatVersion:
		return fmt.Errorf("format version %v, want %d", v, formatVersion)
	}
	if v := meta.Get(keySeq); v != nil {
		if len(v) != 8 {
			return fmt.Errorf("meta seq is %d bytes, want 8", len(v))
		}
		s.seq = binary.BigEndian.Uint64(v)
	}
	return nil
}

// Close commits what is pending, stops the writer and closes the file.
// It returns the error of a failed commit, if any.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	var err error
	if s.failed != nil { // the writer has exited; nothing writes it any more
		err = fmt.Errorf("diffcheck: write failed; the last entries are not stored: %w", s.failed)
	}
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("diffcheck: close: %w", cerr)
	}
	return err
}

// Flush waits until every entry Release remembered before the call is
// durable. It returns the error of a failed commit, if any.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.queued
	for s.durable < target && s.failed == nil && !s.stopped {
		s.signal()
		s.changed.Wait()
	}
	switch {
	case s.failed != nil:
		return fmt.Errorf("diffcheck: write failed: %w", s.failed)
	case s.durable < target:
		return ErrClosed
	}
	return nil
}

// signal wakes the writer without blocking.
func (s *Store) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run is the writer goroutine, owned by the Store: started by Open,
// stopped by Close after a last commit.
func (s *Store) run() {
	defer close(s.done)
	defer func() {
		s.mu.Lock()
		s.stopped = true
		s.changed.Broadcast()
		s.mu.Unlock()
	}()
	for {
		select {
		case <-s.kick:
			s.commit()
		case <-s.stop:
			s.commit()
			return
		}
	}
}

// flushed is one record's state as a commit wrote it.
type flushed struct {
	r    *record
	time int64
	gen  uint64
}

// commit writes every pending record in one transaction (group commit).
// Release goes on deciding meanwhile: the records stay in memory, and so
// visible to it, until the transaction has returned.
func (s *Store) commit() {
	s.mu.Lock()
	if s.durable == s.queued || s.failed != nil {
		s.mu.Unlock()
		return
	}
	target, seq := s.queued, s.seq
	var batch []flushed
	for _, recs := range s.pending {
		for _, r := range recs {
			batch = append(batch, flushed{r, r.time, r.gen})
		}
	}
	s.mu.Unlock()

	err := s.db.Update(func(tx *bolt.Tx) error { return writeBatch(tx, batch, seq) })

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changed.Broadcast()
	if err != nil {
		s.failed = err
		s.log.Error("diffcheck: commit of remembered groups failed; refusing releases until reopened", "entries", len(batch), "err", err)
		return
	}
	s.durable = target
	for _, f := range batch {
		if f.r.gen != f.gen {
			continue // changed again since; the next commit writes it
		}
		id := scopeID(f.r.key[:16])
		delete(s.pending[id], f.r.key)
		if len(s.pending[id]) == 0 {
			delete(s.pending, id)
		}
	}
}

// errNoBucket is returned when a bucket Open created has gone missing.
var errNoBucket = errors.New("diffcheck: a bucket of the file is missing")

func writeBatch(tx *bolt.Tx, batch []flushed, seq uint64) error {
	entries, byTime, meta := tx.Bucket(bucketEntries), tx.Bucket(bucketByTime), tx.Bucket(bucketMeta)
	if entries == nil || byTime == nil || meta == nil {
		return errNoBucket
	}
	// bbolt keeps the value slices until the commit: each entry gets its
	// own bytes of the arena, which is never written over.
	var arena []byte
	for _, f := range batch {
		if old := entries.Get(f.r.key[:]); len(old) >= 9 {
			// A refreshed entry: drop its old place in the time index.
			if err := byTime.Delete(timeKey(int64(binary.BigEndian.Uint64(old[1:9])), f.r.key)); err != nil {
				return err
			}
		}
		start := len(arena)
		arena = appendEntry(arena, f.time, f.r.scheme, f.r.sk)
		if err := entries.Put(f.r.key[:], arena[start:len(arena):len(arena)]); err != nil {
			return err
		}
		if err := byTime.Put(timeKey(f.time, f.r.key), nil); err != nil {
			return err
		}
	}
	return meta.Put(keySeq, binary.BigEndian.AppendUint64(nil, seq))
}

// Prune deletes the entries older than now − Window and returns how many.
// An entry whose refresh is not yet committed may be deleted and counted;
// the writer then stores it again with its new time, so it is not lost.
func (s *Store) Prune(now time.Time) (int, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	if err := checkNow(now); err != nil {
		return 0, err
	}
	cutoff := now.Add(-s.window).UnixNano()
	pruned := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		entries, byTime := tx.Bucket(bucketEntries), tx.Bucket(bucketByTime)
		if entries == nil || byTime == nil {
			return errNoBucket
		}
		c := byTime.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if len(k) != 40 {
				return fmt.Errorf("diffcheck: time index key of %d bytes, want 40", len(k))
			}
			if int64(binary.BigEndian.Uint64(k[:8])) >= cutoff {
				return nil
			}
			if err := entries.Delete(k[8:]); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			pruned++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("diffcheck: prune: %w", err)
	}
	return pruned, nil
}

// checkNow refuses times that Unix nanoseconds cannot hold (or that put
// entries before 1970, which the time index does not order).
func checkNow(now time.Time) error {
	if y := now.Year(); y < 1970 || y > 2261 {
		return fmt.Errorf("diffcheck: now %v is outside 1970..2261", now)
	}
	return nil
}

// Backup writes a consistent copy of the file to w while the node runs on
// (`yrdnode backup`).
func (s *Store) Backup(w io.Writer) (n int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
