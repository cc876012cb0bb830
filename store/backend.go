package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Options configures how a store file is opened.
type Options struct {
	// NoSync skips fsync on commit: a power loss can then lose committed
	// writes or corrupt the file. Only for files that can be rebuilt from
	// elsewhere (the node rebuilds its catalog from raft after an unclean
	// stop), or for tests. Close still syncs.
	NoSync bool
	// ReadOnly opens an existing file for reading only, under a shared
	// lock: it fails (after openTimeout) while a node has the file open,
	// and never writes to it. Update and Restore fail on such a catalog.
	ReadOnly bool
}

const (
	// openTimeout bounds the wait for bbolt's file lock, so a second process
	// opening the same file fails instead of hanging forever.
	openTimeout = 2 * time.Second

	// catalogMmapSize is reserved address space, not memory or disk. A
	// long-lived read transaction (a snapshot being streamed) blocks bbolt
	// from remapping a growing file; reserving 1 GiB up front means writers
	// are not blocked by snapshots until the catalog outgrows it.
	catalogMmapSize = 1 << 30

	// schemaVersion is the layout of the catalog buckets written by this code.
	schemaVersion = 1
)

func (o Options) boltOptions(mmapSize int) *bolt.Options {
	return &bolt.Options{
		Timeout:  openTimeout,
		NoSync:   o.NoSync,
		ReadOnly: o.ReadOnly,
		// Growing the file fsyncs it even with NoSync; for an unsynced
		// file that flushes every dirty page at once and stalls the
		// writer (the FSM) for tens of ms. Without fsyncs, skip that one.
		NoGrowSync:      o.NoSync,
		InitialMmapSize: mmapSize,
		FreelistType:    bolt.FreelistMapType,
	}
}

var (
	bucketMeta       = []byte("meta")
	bucketDatasets   = []byte("datasets")
	bucketMembers    = []byte("members")
	bucketJoinTokens = []byte("join_tokens")

	keyAppliedIndex  = []byte("applied_index")
	keySchemaVersion = []byte("schema_version")

	catalogBuckets = [][]byte{bucketMeta, bucketDatasets, bucketMembers, bucketJoinTokens,
		bucketGrants, bucketGrantsByDataset, bucketAnchors, bucketPrivacySpent}

	// addedBuckets joined schema version 1 after catalog files and raft
	// snapshots of it were in use, so a file (above all a snapshot taken by
	// an older node, which raft restores on start) may lack them. An empty
	// bucket and a missing one mean the same; OpenCatalog and Restore create
	// them, and checkSchema does not require them.
	addedBuckets = [][]byte{bucketPrivacySpent}
)

// createBuckets creates whichever of names tx lacks.
func createBuckets(tx *bolt.Tx, names [][]byte) error {
	for _, name := range names {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %q: %w", name, err)
		}
	}
	return nil
}

// Catalog is the replicated catalog state: datasets, the member registry
// and join tokens, persisted in bbolt and indexed in memory.
//
// Writes go through Update (one bbolt transaction each, normally issued by
// the raft FSM). Reads through GetDataset, ListDatasets, Member, Members and
// DatasetCount use an immutable in-memory version swapped atomically after
// each commit, so they take no lock and see either all of an Update or none.
type Catalog struct {
	path string
	opts Options

	// wmu serializes Update, Restore and Close.
	wmu sync.Mutex
	// dbmu guards the db pointer against Restore swapping it while Snapshot
	// begins a read transaction. Update reads db under wmu alone, which
	// Restore also holds while it swaps.
	dbmu sync.RWMutex
	db   *bolt.DB

	closed atomic.Bool
	// state holds the in-memory index together with the applied index it
	// reflects, so a reader that sees index N also sees N's data.
	state atomic.Pointer[state]
}

// OpenCatalog opens or creates the catalog file at path and builds its
// in-memory index.
func OpenCatalog(path string, opts Options) (*Catalog, error) {
	db, err := bolt.Open(path, 0o600, opts.boltOptions(catalogMmapSize))
	if err != nil {
		return nil, fmt.Errorf("store: open catalog %s: %w", path, inUse(err))
	}
	if !opts.ReadOnly {
		err = db.Update(initCatalog)
	}
	if err == nil {
		var st *state
		if st, err = loadState(db); err == nil {
			c := &Catalog{path: path, opts: opts, db: db}
			c.state.Store(st)
			return c, nil
		}
	}
	_ = db.Close()
	return nil, fmt.Errorf("store: open catalog %s: %w", path, err)
}

// initCatalog creates the buckets and the schema version a new catalog
// file lacks.
func initCatalog(tx *bolt.Tx) error {
	if err := createBuckets(tx, catalogBuckets); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keySchemaVersion) == nil {
		return meta.Put(keySchemaVersion, u64bytes(schemaVersion))
	}
	return nil
}

// AppliedIndex is the raft index recorded by the last successful Update (or
// carried by the last restored snapshot). Once it returns N, the in-memory
// reads reflect at least index N, which linearizable reads rely on.
func (c *Catalog) AppliedIndex() uint64 { return c.state.Load().applied }

// Update runs fn in one bbolt write transaction and records index as the
// applied index in that same transaction, so the state and the index it
// reflects can never disagree after a crash. The in-memory view changes only
// after the commit succeeded. If fn (or the commit) fails, nothing is
// written, the applied index does not move and the error is returned.
//
// The Tx must not be used after fn returns.
func (c *Catalog) Update(index uint64, fn func(tx *Tx) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	btx, err := c.db.Begin(true)
	if err != nil {
		return fmt.Errorf("store: begin update: %w", err)
	}
	tx := &Tx{btx: btx}
	committed := false
	defer func() {
		tx.done = true
		if !committed {
			_ = btx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := btx.Bucket(bucketMeta).Put(keyAppliedIndex, u64bytes(index)); err != nil {
		return fmt.Errorf("store: record applied index: %w", err)
	}
	committed = true // Commit rolls back by itself on failure.
	if err := btx.Commit(); err != nil {
		return fmt.Errorf("store: commit index %d: %w", index, err)
	}
	c.state.Store(c.state.Load().apply(index, tx.datasets, tx.members))
	return nil
}

// Close closes the catalog. It waits for open Snapshots to be closed.
func (c *Catalog) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.dbmu.Lock()
	defer c.dbmu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	var syncErr error
	if c.db.NoSync && !c.opts.ReadOnly {
		syncErr = c.db.Sync()
	}
	return errors.Join(syncErr, c.db.Close())
}

// inUse names a lock that bbolt could not take for what it means.
func inUse(err error) error {
	if errors.Is(err, bolt.ErrTimeout) {
		return ErrInUse
	}
	return err
}

// checkSchema verifies that tx holds a catalog this code understands.
func checkSchema(tx *bolt.Tx) error {
	for _, name := range catalogBuckets {
		if tx.Bucket(name) == nil && !slices.ContainsFunc(addedBuckets, func(b []byte) bool { return bytes.Equal(b, name) }) {
			return fmt.Errorf("missing bucket %q", name)
		}
	}
	v := tx.Bucket(bucketMeta).Get(keySchemaVersion)
	if len(v) != 8 {
		return errors.New("missing schema version")
	}
	if got := binary.BigEndian.Uint64(v); got != schemaVersion {
		return fmt.Errorf("schema version %d, want %d", got, schemaVersion)
	}
	return nil
}

// readApplied returns the applied index stored in tx (0 if never set).
func readApplied(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(keyAppliedIndex)
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	default:
		return 0, fmt.Errorf("applied index holds %d bytes", len(v))
	}
}

// loadState validates db and builds the in-memory index from it.
func loadState(db *bolt.DB) (*state, error) {
	var st *state
	err := db.View(func(tx *bolt.Tx) error {
		if err := checkSchema(tx); err != nil {
			return err
		}
		applied, err := readApplied(tx)
		if err != nil {
			return err
		}
		bld := newBuilder(nil)
		err = tx.Bucket(bucketDatasets).ForEach(func(k, v []byte) error {
			d := new(yrdv1.Dataset)
			if err := proto.Unmarshal(v, d); err != nil {
				return fmt.Errorf("dataset %q: %w", k, err)
			}
			bld.put(newEntry(d))
			return nil
		})
		if err != nil {
			return err
		}
		members := make(map[string]*yrdv1.Member)
		err = tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
			m := new(yrdv1.Member)
			if err := proto.Unmarshal(v, m); err != nil {
				return fmt.Errorf("member %q: %w", k, err)
			}
			members[string(k)] = m
			return nil
		})
		if err != nil {
			return err
		}
		st = bld.finish(applied, newMemberView(members))
		return nil
	})
	return st, err
}

func u64bytes(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }
