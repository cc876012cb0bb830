package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// DefaultSegmentSize is the size past which the WAL starts a new segment
// file. A batch is never split, so a segment may exceed it by one batch.
const DefaultSegmentSize = 64 << 20

const (
	segmentExt = ".seg"
	// firstName holds the first index after a prefix delete (8 bytes
	// big-endian, then their CRC32C), so compacted entries stay deleted
	// across a restart even when their segment also holds live entries.
	firstName = "first"
	// headerSize is the record header: uint32 payload length, then the
	// CRC32C of those 4 length bytes followed by the payload, both
	// little-endian.
	headerSize = 8
	// maxRecord bounds one encoded entry. A larger length field read at
	// open is damage, not an allocation to attempt.
	maxRecord = 256 << 20
	// keepBuf is the largest encode buffer kept between batches.
	keepBuf = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt is wrapped by Open when the log is damaged in a way
	// a crash during an append cannot explain: a bad record before the
	// tail of the last segment, a gap between indexes, or a record whose
	// checksum holds but whose content is wrong. The message names the file
	// and offset. The node must not start on such a log.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrOutOfOrder is wrapped by StoreLogs when the entries do not
	// continue the log: the first must be LastIndex()+1 (any index when the
	// log is empty) and each next one the one before plus 1.
	ErrOutOfOrder = errors.New("wal: entries do not follow the log")
	// ErrRange is wrapped by DeleteRange for a range that is neither a
	// prefix nor a suffix of the log (it would leave a hole).
	ErrRange = errors.New("wal: range to delete is inside the log")
	// ErrFailed is wrapped by the write, sync or delete that failed and by
	// every write after it, with the cause: the files may then differ from
	// what the Log believes (after a failed fdatasync the page cache cannot
	// be trusted), so it refuses further changes, and never syncs that file
	// again, until it is reopened, which recovers from the files as after a
	// crash. Reads go on working.
	ErrFailed = errors.New("wal: failed; reopen it to recover from the files")
	// ErrClosed is returned by every method of a closed Log but Close.
	ErrClosed = errors.New("wal: closed")
)

// Options configures Open.
type Options struct {
	// NoSync skips the fdatasync after each StoreLogs batch: a crash of the
	// machine (not just the process) may then lose appended entries. Only
	// for tests. Deletes, segment creation and Close still sync.
	NoSync bool
	// SegmentSize is the size past which a new segment file is started;
	// 0 means DefaultSegmentSize.
	SegmentSize int64
	// FS is how the Log reaches its files; nil means OS. Tests set it to
	// inject disk faults.
	FS FS
}

// Recovery describes what Open cut from the tail of the last
// segment: the bytes of an append that a crash interrupted.
type Recovery struct {
	Path    string // segment file that was cut; "" if nothing was
	Offset  int64  // where the first bad record started (the new size)
	Dropped int64  // bytes removed
	Reason  string // why the record at Offset was rejected
}

// Log is an append-only write-ahead log of raft entries, a raft.LogStore.
//
// Entries live in segment files in one directory, each named after the
// index of its first record (00000000000000000001.seg). A record is
//
//	uint32 length | uint32 CRC32C(length bytes, payload) | payload
//
// with the payload in the log encoding of codec.go. StoreLogs writes a
// whole batch with one write and makes it durable with one fdatasync;
// memory holds, per segment, the offset of every record, so GetLog is one
// pread. Indexes are dense: StoreLogs only appends the next index, and
// DeleteRange only removes a prefix (compaction after a snapshot) or a
// suffix (a follower's conflicting entries) or everything.
//
// Crash safety: an entry is durable once the StoreLogs that wrote it has
// returned nil (with NoSync, once Close returned). After a crash the log
// holds a prefix of what was appended; Open cuts a torn or partly
// written tail of the last segment, and refuses to open on any other
// damage (ErrCorrupt). Deletes are ordered so a crash in the middle of
// one leaves a valid log, never a hole.
//
// It is safe for concurrent use. Writes (StoreLogs, DeleteRange, Close)
// are serialized; GetLog, FirstIndex and LastIndex take a read lock and
// never wait for a write's I/O, only for it to publish its result.
//
// The WAL does not lock its directory against a second process; the
// caller must (consensus opens it only while holding raft.db's lock).
type Log struct {
	dir     string
	fs      FS
	opts    Options
	segSize int64

	// wmu serializes writers. Fields below marked (w) are only touched
	// under it.
	wmu    sync.Mutex
	buf    []byte // encode buffer (w)
	failed error  // sticky write failure (w)

	// mu guards the published state that readers use. Writers hold wmu and
	// take mu only to publish.
	mu     sync.RWMutex
	segs   []*segment // in index order; every one holds a live entry
	first  uint64     // 0 when empty
	last   uint64     // 0 when empty
	closed bool

	recovery Recovery
	syncs    atomic.Uint64 // fsync/fdatasync calls made, for benchmarks
}

// segment is one segment file. offs[i] is the offset of the record for
// index start+i; the last element is the end of the last record, so a
// segment holds len(offs)-1 records. Records below WAL.first (compacted,
// their segment still holding live ones) stay indexed but unreachable.
type segment struct {
	start uint64
	path  string
	f     File
	offs  []int64
}

func (s *segment) count() uint64 { return uint64(len(s.offs) - 1) }
func (s *segment) end() int64    { return s.offs[len(s.offs)-1] }

// lastIndex is the index of the segment's last record (start-1 if none).
func (s *segment) lastIndex() uint64 { return s.start + s.count() - 1 }

var (
	_ raft.LogStore          = (*Log)(nil)
	_ raft.MonotonicLogStore = (*Log)(nil)
)

func segmentName(start uint64) string { return fmt.Sprintf("%020d%s", start, segmentExt) }

// Recovery reports what Open cut from the tail of the last segment.
func (w *Log) Recovery() Recovery { return w.recovery }

// Dir returns the WAL's directory.
func (w *Log) Dir() string { return w.dir }

// IsMonotonic tells raft that the WAL cannot hold gaps: after restoring or
// installing a snapshot raft deletes the whole log instead of leaving the
// old entries below a gap.
func (w *Log) IsMonotonic() bool { return true }

// FirstIndex returns the first index in the log, 0 if it is empty.
func (w *Log) FirstIndex() (uint64, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.first, nil
}

// LastIndex returns the last index in the log, 0 if it is empty.
func (w *Log) LastIndex() (uint64, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.last, nil
}

var readBufs = sync.Pool{New: func() any { return new([]byte) }}

// GetLog reads the entry at index into log. It returns raft.ErrLogNotFound
// for an index outside FirstIndex..LastIndex, and an error naming the file
// if the record no longer passes its checksum.
func (w *Log) GetLog(index uint64, log *raft.Log) error {
	bp := readBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= keepBuf {
			readBufs.Put(bp)
		}
	}()

	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	if w.last == 0 || index < w.first || index > w.last {
		w.mu.RUnlock()
		return raft.ErrLogNotFound
	}
	// The last segment whose start is at or below index.
	i := sort.Search(len(w.segs), func(i int) bool { return w.segs[i].start > index }) - 1
	seg := w.segs[i]
	off, end := seg.offs[index-seg.start], seg.offs[index-seg.start+1]
	if int64(cap(*bp)) < end-off {
		*bp = make([]byte, end-off)
	}
	buf := (*bp)[:end-off]
	// Read under the lock: a delete closes or cuts the file only after
	// taking it.
	_, err := seg.f.ReadAt(buf, off)
	path := seg.path
	w.mu.RUnlock()

	if err != nil {
		return fmt.Errorf("wal: read index %d from %s at offset %d: %w", index, path, off, err)
	}
	n := binary.LittleEndian.Uint32(buf[0:4])
	if int64(n) != end-off-headerSize ||
		crc32.Update(crc32.Checksum(buf[0:4], castagnoli), castagnoli, buf[headerSize:]) != binary.LittleEndian.Uint32(buf[4:8]) {
		return fmt.Errorf("%w: index %d in %s at offset %d: checksum mismatch", ErrCorrupt, index, path, off)
	}
	if err := DecodeLog(buf[headerSize:], log); err != nil {
		return fmt.Errorf("%w: index %d in %s at offset %d: %v", ErrCorrupt, index, path, off, err)
	}
	if log.Index != index {
		return fmt.Errorf("%w: %s at offset %d holds index %d, not %d", ErrCorrupt, path, off, log.Index, index)
	}
	return nil
}

// syncDir makes the directory's entries (created or removed files)
// durable.
func (w *Log) syncDir() error {
	w.syncs.Add(1)
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// writable reports why the WAL cannot be written, if it cannot. Call with
// wmu held.
func (w *Log) writable() error {
	w.mu.RLock()
	closed := w.closed
	w.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if w.failed != nil {
		return w.failed
	}
	return nil
}

// Close syncs the last segment (even with NoSync) and closes the files.
func (w *Log) Close() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if n := len(w.segs); n > 0 && w.failed == nil {
		w.syncs.Add(1)
		err = w.segs[n-1].f.Sync()
	}
	return errors.Join(err, w.closeFiles())
}

func (w *Log) closeFiles() error {
	var errs []error
	for _, s := range w.segs {
		errs = append(errs, s.f.Close())
	}
	return errors.Join(errs...)
}
