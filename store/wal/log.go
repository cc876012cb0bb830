package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// Open opens or creates the WAL in dir and recovers it: it scans every
// segment, checking each record's length, checksum, encoding and index;
// cuts a torn tail of the last segment (see Recovery); removes segments
// that an interrupted delete left behind; and fails with ErrCorrupt on
// any other damage.
func Open(dir string, opts Options) (*Log, error) {
	w := &Log{dir: dir, fs: opts.FS, opts: opts, segSize: opts.SegmentSize}
	if w.segSize <= 0 {
		w.segSize = DefaultSegmentSize
	}
	if w.fs == nil {
		w.fs = OS
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// A new directory: its entry in the parent must be durable too, or
		// the whole log could vanish with it.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		if err := w.fs.SyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
	}
	if err := w.recover(); err != nil {
		w.closeFiles()
		return nil, err
	}
	return w, nil
}

// recover rebuilds the in-memory index from the files.
func (w *Log) recover() error {
	// A leftover of an interrupted write of the first-index file.
	if err := w.fs.Remove(filepath.Join(w.dir, firstName+".tmp")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("wal: %w", err)
	}
	metaFirst, err := readFirst(w.fs, w.dir)
	if err != nil {
		return err
	}
	starts, err := listSegments(w.fs, w.dir)
	if err != nil {
		return err
	}
	dirty := false // a file was removed and the directory needs a sync

	// Segments wholly below the first index are what a prefix delete had
	// not yet removed when it was interrupted. The next segment's name
	// says where each ends, so they are removed without being read.
	dead := 0
	for dead+1 < len(starts) && starts[dead+1] <= metaFirst {
		dead++
	}
	for _, start := range starts[:dead] {
		if err := w.fs.Remove(filepath.Join(w.dir, segmentName(start))); err != nil {
			return fmt.Errorf("wal: remove compacted segment: %w", err)
		}
		dirty = true
	}
	starts = starts[dead:]

	for i, start := range starts {
		path := filepath.Join(w.dir, segmentName(start))
		isLast := i == len(starts)-1
		seg, err := w.openSegment(path, start, isLast)
		if err != nil {
			return err
		}
		if seg == nil { // the last segment held no complete record
			if err := w.fs.Remove(path); err != nil {
				return fmt.Errorf("wal: remove empty segment: %w", err)
			}
			dirty = true
			break
		}
		if n := len(w.segs); n > 0 {
			if prev := w.segs[n-1]; prev.lastIndex()+1 != seg.start {
				seg.f.Close()
				return fmt.Errorf("%w: gap in the log: %s ends at index %d but %s starts at index %d",
					ErrCorrupt, prev.path, prev.lastIndex(), path, seg.start)
			}
		}
		w.segs = append(w.segs, seg)
	}

	if len(w.segs) > 0 {
		w.first = max(metaFirst, w.segs[0].start)
		w.last = w.segs[len(w.segs)-1].lastIndex()
		if w.first > w.last {
			// Everything was compacted away (possible only if the tail was
			// lost, i.e. with NoSync): the log is empty.
			for _, s := range w.segs {
				s.f.Close()
				if err := w.fs.Remove(s.path); err != nil {
					return fmt.Errorf("wal: %w", err)
				}
			}
			w.segs, w.first, w.last = nil, 0, 0
			dirty = true
		}
	}
	if len(w.segs) == 0 && metaFirst != 0 {
		// An empty log starts wherever the next append says.
		if err := w.fs.Remove(filepath.Join(w.dir, firstName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("wal: %w", err)
		}
		dirty = true
	}
	if dirty {
		return w.syncDir()
	}
	return nil
}

// openSegment opens and scans one segment. In the last segment a record
// that is cut short or fails its checksum ends the log: the file is cut
// there (and nil returned if nothing is left). Anywhere else it is
// ErrCorrupt, as is a record whose checksum holds but whose content
// does not decode or has the wrong index.
func (w *Log) openSegment(path string, start uint64, isLast bool) (*segment, error) {
	f, err := w.fs.OpenFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: size of %s: %w", path, err)
	}
	offs, badOff, reason, err := scanSegment(f, size, start)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: read %s: %w", path, err)
	}
	if reason != "" && (!isLast || badOff < 0) {
		f.Close()
		at := badOff
		if at < 0 {
			at = -at - 1
		}
		what := "corrupt record"
		if badOff >= 0 {
			what += " before the end of the log (only the tail of the last segment may be torn)"
		}
		return nil, fmt.Errorf("%w: %s in %s at offset %d: %s", ErrCorrupt, what, path, at, reason)
	}
	if reason != "" {
		// A torn append: cut it off so the next append follows the last
		// good record, and make the cut durable before writing past it.
		if err := f.Truncate(badOff); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: cut torn tail of %s at offset %d: %w", path, badOff, err)
		}
		w.syncs.Add(1)
		w.recovery = Recovery{Path: path, Offset: badOff, Dropped: size - badOff, Reason: reason}
	}
	if len(offs) == 1 {
		f.Close()
		if !isLast {
			return nil, fmt.Errorf("%w: segment %s holds no entries", ErrCorrupt, path)
		}
		return nil, nil
	}
	return &segment{start: start, path: path, f: f, offs: offs}, nil
}

// scanSegment reads the records of a segment whose first record must have
// index start. It returns the record offsets plus the end of the last good
// record. reason is "" if every byte was a good record; otherwise the
// record at badOff is bad. A torn-looking record (short, bad length, bad
// checksum) gives badOff >= 0; one that cannot be explained by a torn write
// (checksum holds, content wrong) gives badOff = -(offset+1).
func scanSegment(f io.ReaderAt, size int64, start uint64) (offs []int64, badOff int64, reason string, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<20)
	offs = []int64{0}
	var hdr [headerSize]byte
	var payload []byte
	var l raft.Log
	off := int64(0)
	for off < size {
		if size-off < headerSize {
			return offs, off, fmt.Sprintf("%d bytes left, short of a record header", size-off), nil
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, 0, "", err
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		if n == 0 || n > maxRecord || n > size-off-headerSize {
			return offs, off, fmt.Sprintf("record length %d does not fit the %d bytes left", n, size-off-headerSize), nil
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return nil, 0, "", err
		}
		if crc32.Update(crc32.Checksum(hdr[0:4], castagnoli), castagnoli, payload) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return offs, off, "checksum mismatch", nil
		}
		want := start + uint64(len(offs)-1)
		if err := DecodeLog(payload, &l); err != nil {
			return offs, -(off + 1), fmt.Sprintf("entry %d does not decode: %v", want, err), nil
		}
		if l.Index != want {
			return offs, -(off + 1), fmt.Sprintf("holds index %d where index %d belongs", l.Index, want), nil
		}
		off += headerSize + n
		offs = append(offs, off)
	}
	return offs, 0, "", nil
}

// listSegments returns the start indexes of the segment files in dir in
// order. Other files are ignored, but a .seg file with a malformed name is
// an error rather than a silently dropped part of the log.
func listSegments(fsys FS, dir string) ([]uint64, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var starts []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		digits := strings.TrimSuffix(name, segmentExt)
		start, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || len(digits) != 20 || start == 0 || !e.Type().IsRegular() {
			return nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, filepath.Join(dir, name))
		}
		starts = append(starts, start)
	}
	slices.Sort(starts)
	return starts, nil
}

func readFirst(fsys FS, dir string) (uint64, error) {
	path := filepath.Join(dir, firstName)
	b, err := fsys.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		// It is written atomically (temporary file, fsync, rename), so a
		// damaged one is not a crash artefact.
		return 0, fmt.Errorf("%w: %s is damaged", ErrCorrupt, path)
	}
	return binary.BigEndian.Uint64(b[:8]), nil
}

func (w *Log) writeFirst(first uint64) error {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), first)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	w.syncs.Add(2)
	return w.fs.WriteFileAtomic(filepath.Join(w.dir, firstName), b)
}

func (w *Log) syncDir() error {
	w.syncs.Add(1)
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

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
