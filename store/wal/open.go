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
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

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

// recover rebuilds the in-memory index from the files, in stages: clear
// what an interrupted write or delete left behind, open and check every
// live segment, then settle the bounds. Each stage reports whether it
// removed a file, so the directory is synced once at the end.
func (w *Log) recover() error {
	if err := w.removeFirstTmp(); err != nil {
		return err
	}
	metaFirst, err := readFirst(w.fs, w.dir)
	if err != nil {
		return err
	}
	starts, err := listSegments(w.fs, w.dir)
	if err != nil {
		return err
	}
	starts, removedCompacted, err := w.removeCompactedSegments(starts, metaFirst)
	if err != nil {
		return err
	}
	removedEmpty, err := w.openSegments(starts)
	if err != nil {
		return err
	}
	emptied, err := w.settleBounds(metaFirst)
	if err != nil {
		return err
	}
	if removedCompacted || removedEmpty || emptied {
		return w.syncDir()
	}
	return nil
}

// removeFirstTmp removes a leftover of an interrupted write of the
// first-index file.
func (w *Log) removeFirstTmp() error {
	if err := w.fs.Remove(filepath.Join(w.dir, firstName+".tmp")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// removeCompactedSegments removes the segments wholly below the first
// index: what a prefix delete had not yet removed when it was interrupted.
// The next segment's name says where each ends, so they are removed
// without being read. It returns the starts of the segments left.
func (w *Log) removeCompactedSegments(starts []uint64, metaFirst uint64) (left []uint64, removed bool, err error) {
	dead := 0
	for dead+1 < len(starts) && starts[dead+1] <= metaFirst {
		dead++
	}
	for _, start := range starts[:dead] {
		if err := w.fs.Remove(filepath.Join(w.dir, segmentName(start))); err != nil {
			return nil, false, fmt.Errorf("wal: remove compacted segment: %w", err)
		}
		removed = true
	}
	return starts[dead:], removed, nil
}

// openSegments opens and checks the segments in order into w.segs,
// refusing a gap between them. A last segment left with no complete
// record is removed (removed reports it).
func (w *Log) openSegments(starts []uint64) (removed bool, err error) {
	for i, start := range starts {
		path := filepath.Join(w.dir, segmentName(start))
		isLast := i == len(starts)-1
		seg, err := w.openSegment(path, start, isLast)
		if err != nil {
			return false, err
		}
		if seg == nil { // the last segment held no complete record
			if err := w.fs.Remove(path); err != nil {
				return false, fmt.Errorf("wal: remove empty segment: %w", err)
			}
			return true, nil
		}
		if n := len(w.segs); n > 0 {
			if prev := w.segs[n-1]; prev.lastIndex()+1 != seg.start {
				seg.f.Close()
				return false, fmt.Errorf("%w: gap in the log: %s ends at index %d but %s starts at index %d",
					ErrCorrupt, prev.path, prev.lastIndex(), path, seg.start)
			}
		}
		w.segs = append(w.segs, seg)
	}
	return false, nil
}

// settleBounds sets first and last from the segments and the first-index
// file. A log left empty loses its segments and its first-index file, as
// an empty log starts wherever the next append says (removed reports it).
func (w *Log) settleBounds(metaFirst uint64) (removed bool, err error) {
	if len(w.segs) > 0 {
		w.first = max(metaFirst, w.segs[0].start)
		w.last = w.segs[len(w.segs)-1].lastIndex()
		if w.first > w.last {
			// Everything was compacted away (possible only if the tail was
			// lost, i.e. with NoSync): the log is empty.
			for _, s := range w.segs {
				s.f.Close()
				if err := w.fs.Remove(s.path); err != nil {
					return false, fmt.Errorf("wal: %w", err)
				}
			}
			w.segs, w.first, w.last = nil, 0, 0
			removed = true
		}
	}
	if len(w.segs) == 0 && metaFirst != 0 {
		if err := w.fs.Remove(filepath.Join(w.dir, firstName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("wal: %w", err)
		}
		removed = true
	}
	return removed, nil
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

// readFirst reads the first-index file, 0 if there is none.
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
