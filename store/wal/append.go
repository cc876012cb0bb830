package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// StoreLog appends one entry; see StoreLogs.
func (w *Log) StoreLog(log *raft.Log) error { return w.StoreLogs([]*raft.Log{log}) }

// StoreLogs appends entries to the log: the first must have index
// LastIndex()+1 (any index above 0 when the log is empty) and the others
// must follow it one by one, else ErrOutOfOrder and nothing is written.
// The whole batch goes to the last segment in one write followed by one
// fdatasync (none with NoSync); the entries are durable, and visible to
// GetLog, when it returns nil, and only then. If creating a segment,
// writing (including a short write) or syncing fails, the batch may be
// partly on disk (a reopen keeps a prefix of it at most, as after a
// crash), the error wraps ErrFailed and the cause, and the Log refuses
// every later write with the same error.
func (w *Log) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if err := w.checkOrder(logs); err != nil {
		return err
	}
	next := logs[0].Index
	var tail *segment
	if n := len(w.segs); n > 0 && w.segs[n-1].end() < w.segSize {
		tail = w.segs[n-1]
	}
	base, offs := int64(0), []int64{0}
	if tail != nil {
		// New offsets go beyond the length of the slice readers see; they
		// become visible when offs is published below.
		base, offs = tail.end(), tail.offs
	}
	buf, offs, err := w.encode(logs, base, offs)
	if err != nil {
		return err
	}
	created := false
	if tail == nil {
		seg, err := w.createSegment(next)
		if err != nil {
			return w.fail(fmt.Sprintf("append %d-%d", next, logs[len(logs)-1].Index), err)
		}
		tail, created = seg, true
	}
	if err := w.write(tail, buf, base); err != nil {
		if created {
			tail.f.Close()
		}
		return w.fail(fmt.Sprintf("append %d-%d to %s at offset %d", next, logs[len(logs)-1].Index, tail.path, base), err)
	}

	w.mu.Lock()
	if created {
		w.segs = append(w.segs, tail)
	}
	tail.offs = offs
	if w.last == 0 {
		w.first = next
	}
	w.last = logs[len(logs)-1].Index
	w.mu.Unlock()
	return nil
}

// checkOrder reports whether logs continue the log one index at a time.
func (w *Log) checkOrder(logs []*raft.Log) error {
	next := logs[0].Index
	switch {
	case next == 0:
		return fmt.Errorf("%w: index 0 is not a raft index", ErrOutOfOrder)
	case w.last != 0 && next != w.last+1:
		return fmt.Errorf("%w: appending index %d after last index %d", ErrOutOfOrder, next, w.last)
	}
	for i, l := range logs {
		if l.Index != next+uint64(i) {
			return fmt.Errorf("%w: entry %d of the batch has index %d, expected %d", ErrOutOfOrder, i, l.Index, next+uint64(i))
		}
	}
	return nil
}

// encode encodes the batch as records into one buffer (w.buf, reused),
// appending to offs the end offset of each record written at base.
func (w *Log) encode(logs []*raft.Log, base int64, offs []int64) ([]byte, []int64, error) {
	buf := w.buf[:0]
	for _, l := range logs {
		at := len(buf)
		buf = append(buf, make([]byte, headerSize)...)
		buf = AppendLog(buf, l)
		n := len(buf) - at - headerSize
		if n > maxRecord {
			return nil, nil, fmt.Errorf("wal: entry %d encodes to %d bytes, over the %d limit", l.Index, n, maxRecord)
		}
		binary.LittleEndian.PutUint32(buf[at:], uint32(n))
		crc := crc32.Update(crc32.Checksum(buf[at:at+4], castagnoli), castagnoli, buf[at+headerSize:])
		binary.LittleEndian.PutUint32(buf[at+4:], crc)
		offs = append(offs, base+int64(len(buf)))
	}
	if cap(buf) <= keepBuf {
		w.buf = buf[:0]
	} else {
		w.buf = nil
	}
	return buf, offs, nil
}

// write writes buf at base in seg with one write and makes it durable
// with one fdatasync (none with NoSync). A short write counts as a failed
// one. On failure the file is cut back to base if it can be (never synced
// again): a reopen then sees a prefix of buf at most.
func (w *Log) write(seg *segment, buf []byte, base int64) error {
	n, err := seg.f.WriteAt(buf, base)
	if err == nil && n < len(buf) {
		err = fmt.Errorf("short write: %d of %d bytes: %w", n, len(buf), io.ErrShortWrite)
	}
	if err == nil && !w.opts.NoSync {
		w.syncs.Add(1)
		if err = seg.f.Sync(); err != nil {
			err = fmt.Errorf("fdatasync: %w", err)
		}
	}
	if err != nil {
		_ = seg.f.Truncate(base)
	}
	return err
}

// fail makes the Log failed for good (until reopened) and returns the
// error every later write returns: ErrFailed, what was being done, and
// the cause. Call with wmu held.
func (w *Log) fail(what string, cause error) error {
	w.failed = fmt.Errorf("%w: %s: %w", ErrFailed, what, cause)
	return w.failed
}

// Err returns why the Log failed, or nil while it works. The error wraps
// ErrFailed and the cause.
func (w *Log) Err() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.failed
}

// createSegment creates the segment file for a record with index start
// and makes its directory entry durable, so the records later synced into
// it cannot vanish with it.
func (w *Log) createSegment(start uint64) (*segment, error) {
	path := filepath.Join(w.dir, segmentName(start))
	f, err := w.fs.OpenFile(path, true)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	if err := w.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{start: start, path: path, f: f, offs: []int64{0}}, nil
}

// Sync makes everything appended so far durable. StoreLogs already does
// unless NoSync is set.
func (w *Log) Sync() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if n := len(w.segs); n > 0 {
		w.syncs.Add(1)
		if err := w.segs[n-1].f.Sync(); err != nil {
			return w.fail("sync "+w.segs[n-1].path, err)
		}
	}
	return nil
}
