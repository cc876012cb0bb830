package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
)

// DeleteRange deletes the entries minIdx..maxIdx inclusive; the parts of
// the range outside FirstIndex..LastIndex are ignored. What is left must
// be one run of indexes, so the range must reach one end of the log:
//
//   - a prefix (minIdx <= FirstIndex; raft compacting after a snapshot):
//     the new first index is written durably to a small file, then the
//     segments that hold only deleted entries are removed;
//   - a suffix (maxIdx >= LastIndex; a follower dropping conflicting
//     entries, which raft then overwrites with StoreLogs): later segments
//     are removed and the one holding minIdx is cut at its record, synced;
//   - both (raft after installing or restoring a snapshot): every segment
//     is removed, and the next StoreLogs may start at any index.
//
// A range strictly inside the log fails with ErrRange.
func (w *Log) DeleteRange(minIdx, maxIdx uint64) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if w.last == 0 || minIdx > maxIdx || maxIdx < w.first || minIdx > w.last {
		return nil
	}
	lo, hi := max(minIdx, w.first), min(maxIdx, w.last)
	if lo > w.first && hi < w.last {
		return fmt.Errorf("%w: deleting %d-%d would leave a hole in %d-%d", ErrRange, minIdx, maxIdx, w.first, w.last)
	}
	if lo == w.first && hi < w.last {
		// The new first index goes to disk before anything changes. If
		// that fails, memory is as it was but the file may or may not be
		// replaced: that is a valid log either way, and the Log stops.
		if err := w.writeFirst(hi + 1); err != nil {
			return w.fail(fmt.Sprintf("delete %d-%d: write the first index", minIdx, maxIdx), err)
		}
	}
	// From here memory changes first and the files follow; if they fail
	// to, the two disagree and the WAL takes no more writes.
	var err error
	switch {
	case lo == w.first && hi == w.last:
		err = w.deleteAll()
	case lo == w.first:
		err = w.deletePrefix(hi + 1)
	default:
		err = w.deleteSuffix(lo)
	}
	if err != nil {
		return w.fail(fmt.Sprintf("delete %d-%d", minIdx, maxIdx), err)
	}
	return nil
}

// deletePrefix makes first the first index, already written to disk: a
// crash from here on leaves at most segments that the next open
// recognises as compacted and removes.
func (w *Log) deletePrefix(first uint64) error {
	dead := 0
	for dead+1 < len(w.segs) && w.segs[dead+1].start <= first {
		dead++
	}
	gone := slices.Clone(w.segs[:dead])
	w.mu.Lock()
	w.segs = slices.Delete(w.segs, 0, dead)
	w.first = first
	w.mu.Unlock()
	// No reader holds the removed segments now (they read under mu).
	for _, s := range gone {
		s.f.Close()
		if err := w.fs.Remove(s.path); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		return w.syncDir()
	}
	return nil
}

// deleteSuffix makes lo-1 the last index (lo > first).
func (w *Log) deleteSuffix(lo uint64) error {
	keep := sort.Search(len(w.segs), func(i int) bool { return w.segs[i].start >= lo })
	// keep >= 1: lo > first >= segs[0].start.
	cut := w.segs[keep-1]
	cutAt := cut.offs[lo-cut.start]
	gone := slices.Clone(w.segs[keep:])
	w.mu.Lock()
	w.segs = w.segs[:keep]
	cut.offs = cut.offs[:lo-cut.start+1]
	w.last = lo - 1
	w.mu.Unlock()
	// Remove the newest segment first and sync the directory after each,
	// so a crash leaves a prefix of the segments, never a hole; then cut
	// the file, so that no removed segment can reappear after it.
	for i := len(gone) - 1; i >= 0; i-- {
		s := gone[i]
		s.f.Close()
		if err := w.fs.Remove(s.path); err != nil {
			return err
		}
		if err := w.syncDir(); err != nil {
			return err
		}
	}
	if err := cut.f.Truncate(cutAt); err != nil {
		return err
	}
	w.syncs.Add(1)
	return cut.f.Sync()
}

// deleteAll empties the log.
func (w *Log) deleteAll() error {
	gone := w.segs
	w.mu.Lock()
	w.segs, w.first, w.last = nil, 0, 0
	w.mu.Unlock()
	// Oldest first, each removal durable before the next: a crash leaves
	// a suffix of the segments, which is a valid (compacted) log.
	for _, s := range gone {
		s.f.Close()
		if err := w.fs.Remove(s.path); err != nil {
			return err
		}
		if err := w.syncDir(); err != nil {
			return err
		}
	}
	if err := w.fs.Remove(filepath.Join(w.dir, firstName)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return w.syncDir()
}

// writeFirst durably replaces the first-index file with first.
func (w *Log) writeFirst(first uint64) error {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), first)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	w.syncs.Add(2)
	return w.fs.WriteFileAtomic(filepath.Join(w.dir, firstName), b)
}
