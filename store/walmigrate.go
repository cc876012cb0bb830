package store

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/yrd-exchange/yrdnode/store/wal"
)

// migrateChunk is how many entries MigrateLogs appends per StoreLogs.
const migrateChunk = 512

// MigrateLogs moves the raft log entries that a LogStore written before
// the WAL existed still holds into dst, then deletes them from src, which
// goes on serving only as the stable store. It returns how many entries it
// moved; 0 and no change if src holds none.
//
// Entries in src are authoritative: the only way both can hold entries is
// an interrupted migration (src is emptied only after dst holds every
// entry durably) or a node that ran an older version again after a
// migration, and in both cases src is the newer. So dst is emptied first.
//
// The bbolt store tolerated gaps: raft used to leave the entries from
// before an installed snapshot below a gap instead of deleting them. Only
// the run of consecutive indexes that ends at src's last index is moved;
// what lies below a gap precedes a snapshot and is never read again.
//
// The copy is synced before src is touched, so a crash at any point leaves
// the full log in src, or in dst, or both.
func MigrateLogs(src *LogStore, dst *wal.Log) (int, error) {
	last, _ := src.LastIndex()
	if last == 0 {
		return 0, nil
	}
	first, _ := src.FirstIndex()

	// Find where the consecutive run ending at last begins, walking the
	// keys back from the end.
	start := last
	err := src.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		k, _ := c.Last()
		if k == nil || binary.BigEndian.Uint64(k) != last {
			return fmt.Errorf("last index %d not at the end of the logs bucket", last)
		}
		for k, _ = c.Prev(); k != nil && binary.BigEndian.Uint64(k) == start-1; k, _ = c.Prev() {
			start--
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: migrate logs: %w", err)
	}

	if f, _ := dst.FirstIndex(); f != 0 {
		l, _ := dst.LastIndex()
		if err := dst.DeleteRange(f, l); err != nil {
			return 0, fmt.Errorf("store: migrate logs: empty the wal: %w", err)
		}
	}

	moved := 0
	for from := start; from <= last; {
		batch := make([]*raft.Log, 0, min(migrateChunk, last-from+1))
		err := src.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketLogs).Cursor()
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], from)
			for k, v := c.Seek(key[:]); k != nil && len(batch) < cap(batch); k, v = c.Next() {
				l := new(raft.Log)
				idx := binary.BigEndian.Uint64(k)
				if err := wal.DecodeLog(v, l); err != nil {
					return fmt.Errorf("log %d: %w", idx, err)
				}
				if l.Index != idx {
					return fmt.Errorf("log %d: stored under wrong key (holds index %d)", idx, l.Index)
				}
				batch = append(batch, l)
			}
			return nil
		})
		if err != nil {
			return moved, fmt.Errorf("store: migrate logs: read: %w", err)
		}
		if len(batch) == 0 {
			return moved, fmt.Errorf("store: migrate logs: log %d vanished while copying", from)
		}
		if err := dst.StoreLogs(batch); err != nil {
			return moved, fmt.Errorf("store: migrate logs: %w", err)
		}
		moved += len(batch)
		from += uint64(len(batch))
	}
	if err := dst.Sync(); err != nil { // StoreLogs did unless NoSync
		return moved, fmt.Errorf("store: migrate logs: %w", err)
	}
	if err := src.DeleteRange(first, last); err != nil {
		return moved, fmt.Errorf("store: migrate logs: delete moved entries: %w", err)
	}
	return moved, nil
}
