package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// bbolt trusts its files: it maps them and follows page ids, so a truncated
// or damaged file can make it fault (SIGBUS/SIGSEGV, which kills the whole
// process) or panic. Restore takes files from the network, so it checks the
// header itself and opens and reads the file with faults turned into
// recoverable panics before trusting it.

const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltPageHeader  = 16
	boltMetaSumSize = 56 // meta bytes covered by its checksum
	boltNoFreelist  = ^uint64(0)
)

// checkBoltHeader rejects a file whose valid meta pages describe more pages
// than the file holds, the usual result of a cut-off transfer.
func checkBoltHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := uint64(fi.Size())
	hdr := make([]byte, boltPageHeader+boltMetaSumSize+8)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("not a bbolt file: %w", err)
	}
	pageSize, ok := checkMeta(hdr, size)
	if !ok {
		return errors.New("not a bbolt file or damaged header")
	}
	// Check the second meta page too when it is valid, since bbolt may pick it.
	if _, err := f.ReadAt(hdr, int64(pageSize)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if _, ok := checkMeta(hdr, size); !ok && metaValid(hdr) {
		return errors.New("second meta page points past the end of the file")
	}
	return nil
}

// metaValid reports whether page holds a meta page with a good checksum.
func metaValid(page []byte) bool {
	m := page[boltPageHeader:]
	ne := binary.NativeEndian // bbolt writes in host byte order
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion {
		return false
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSumSize])
	return h.Sum64() == ne.Uint64(m[boltMetaSumSize:])
}

// checkMeta validates the meta page at the start of page against the file
// size and returns its page size.
func checkMeta(page []byte, fileSize uint64) (uint32, bool) {
	if !metaValid(page) {
		return 0, false
	}
	m := page[boltPageHeader:]
	ne := binary.NativeEndian
	pageSize := ne.Uint32(m[8:])
	root, freelist, pages := ne.Uint64(m[16:]), ne.Uint64(m[32:]), ne.Uint64(m[40:])
	if pageSize < 512 || pageSize > 1<<20 || pageSize&(pageSize-1) != 0 ||
		pages < 2 || pages > fileSize/uint64(pageSize) ||
		root >= pages || (freelist != boltNoFreelist && freelist >= pages) {
		return 0, false
	}
	return pageSize, true
}

// openRestored opens the catalog file at path with faults turned into
// errors. If its applied index is not above minIndex it is closed again and
// stale is true. Otherwise every record is read and bbolt's consistency
// check run before the db and its index state are returned.
func openRestored(path string, opts Options, minIndex uint64) (db *bolt.DB, st *state, stale bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// If the fault came from inside bolt.Open the half-open handle
			// leaks (a descriptor and a mapping of a deleted file); that is
			// the price of not crashing.
			if db != nil {
				_ = db.Close()
			}
			db, st, err = nil, nil, fmt.Errorf("damaged file: %v", r)
		}
	}()
	if db, err = bolt.Open(path, 0o600, opts.boltOptions(catalogMmapSize)); err != nil {
		return nil, nil, false, err
	}
	var index uint64
	err = db.View(func(tx *bolt.Tx) error {
		if err := checkSchema(tx); err != nil {
			return err
		}
		index, err = readApplied(tx)
		return err
	})
	if err == nil && index <= minIndex {
		return nil, nil, true, db.Close()
	}
	if err == nil {
		st, err = loadState(db)
	}
	if err == nil {
		err = db.View(checkRecordsAndConsistency)
	}
	if err == nil {
		// Only now that the file is known to be sound may it be written to.
		err = db.Update(func(tx *bolt.Tx) error { return createBuckets(tx, addedBuckets) })
	}
	if err != nil {
		_ = db.Close()
		return nil, nil, false, err
	}
	return db, st, false, nil
}

// checkRecordsAndConsistency reads and decodes every record loadState did
// not (join tokens, grants and their index, audit anchors, the policy, the
// privacy budget ledger) and then runs bbolt's page-level check, which
// catches a damaged freelist that would otherwise corrupt later writes.
// Running it after every page has been read here matters: Check runs on its
// own goroutine, where a fault would not be recovered.
func checkRecordsAndConsistency(tx *bolt.Tx) error {
	decodeAll := func(bucket []byte, newMsg func() proto.Message) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			if err := proto.Unmarshal(v, newMsg()); err != nil {
				return fmt.Errorf("%s %x: %w", bucket, k, err)
			}
			return nil
		})
	}
	err := errors.Join(
		decodeAll(bucketJoinTokens, func() proto.Message { return new(yrdv1.JoinToken) }),
		decodeAll(bucketGrants, func() proto.Message { return new(yrdv1.Grant) }),
		decodeAll(bucketAnchors, func() proto.Message { return new(yrdv1.AuditAnchor) }),
		tx.Bucket(bucketGrantsByDataset).ForEach(func(k, v []byte) error { return nil }),
		checkPrivacySpent(tx),
	)
	if err == nil {
		if v := tx.Bucket(bucketMeta).Get(keyPolicy); v != nil {
			if perr := proto.Unmarshal(v, new(yrdv1.PolicyParams)); perr != nil {
				err = fmt.Errorf("policy: %w", perr)
			}
		}
	}
	if err != nil {
		return err
	}
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
