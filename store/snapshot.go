package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent, point-in-time view of the whole catalog file,
// backed by a bbolt read transaction. Writers keep committing while it is
// open. It must be closed: the pages it pins cannot be reused until then.
type Snapshot struct {
	mu    sync.Mutex
	tx    *bolt.Tx
	index uint64
}

// Snapshot opens a read transaction on the catalog.
func (c *Catalog) Snapshot() (*Snapshot, error) {
	c.dbmu.RLock()
	defer c.dbmu.RUnlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	tx, err := c.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("store: begin snapshot: %w", err)
	}
	// Read the index from the transaction itself: AppliedIndex may already
	// be ahead of what this transaction sees.
	index, err := readApplied(tx)
	if err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return &Snapshot{tx: tx, index: index}, nil
}

// Index is the applied raft index the snapshot reflects.
func (s *Snapshot) Index() uint64 { return s.index }

// Size is the number of bytes WriteTo writes.
func (s *Snapshot) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return 0
	}
	return s.tx.Size()
}

// WriteTo streams a complete bbolt file holding the snapshot's state; it is
// what Restore reads.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return 0, ErrClosed
	}
	return s.tx.WriteTo(w)
}

// Close ends the read transaction. Closing twice is a no-op.
func (s *Snapshot) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return nil
	}
	err := s.tx.Rollback()
	s.tx = nil
	return err
}

// Restore replaces the catalog with the file in r, written by
// Snapshot.WriteTo. Readers see either the old or the new state, never a
// mix; on any error the old state stays intact.
//
// If the snapshot's applied index is not ahead of ours it is discarded and
// the current state is kept: committed raft state at a given index is the
// same on every node, so a replica that has already applied past the
// snapshot loses nothing. This matters because raft restores the latest
// snapshot on every restart, and rewriting the whole catalog each time would
// be pure waste.
//
// Restore waits for Snapshots of the old state to be closed before it
// returns.
func (c *Catalog) Restore(r io.Reader) error {
	old, err := c.restore(r)
	if old != nil {
		// Outside the locks: this waits for open Snapshots of the old file,
		// which must not hold up readers or writers of the new one.
		_ = old.Close()
	}
	return err
}

// restore swaps in the new database and returns the old one to close.
func (c *Catalog) restore(r io.Reader) (*bolt.DB, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	// The temp file must be in the same directory for the rename to be atomic.
	dir, base := filepath.Dir(c.path), filepath.Base(c.path)
	f, err := os.CreateTemp(dir, base+".restore-*")
	if err != nil {
		return nil, fmt.Errorf("store: restore: %w", err)
	}
	tmp := f.Name()
	swapped := false
	defer func() {
		if !swapped {
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, r)
	if err == nil && n == 0 {
		// bbolt would happily initialise an empty file as a new database.
		err = errors.New("empty snapshot")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("store: restore: %w", err)
	}

	if err := checkBoltHeader(tmp); err != nil {
		return nil, fmt.Errorf("store: restore: invalid snapshot: %w", err)
	}
	ndb, st, stale, err := openRestored(tmp, c.opts, c.AppliedIndex())
	if err != nil {
		return nil, fmt.Errorf("store: restore: invalid snapshot: %w", err)
	}
	if stale {
		return nil, nil // we are already past the snapshot: keep our state
	}

	// The new file is renamed into place while open rather than closed,
	// renamed and reopened: once the rename succeeds nothing else can fail,
	// so there is no window in which the old file is gone and the new one
	// unusable. bbolt keeps working through its open file descriptor.
	c.dbmu.Lock()
	defer c.dbmu.Unlock()
	if err := os.Rename(tmp, c.path); err != nil {
		_ = ndb.Close()
		return nil, fmt.Errorf("store: restore: %w", err)
	}
	swapped = true
	syncDir(dir)
	old := c.db
	c.db = ndb
	c.state.Store(st)
	return old, nil
}

// syncDir makes a rename in dir durable. Best effort: the rename itself has
// already happened, and failing the restore now would not undo it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
