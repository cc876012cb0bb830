package diffcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// entryVersion is the first byte of every stored entry.
const entryVersion = 1

// maxScheme bounds a scheme name, which is stored with a one-byte length.
const maxScheme = 255

// An entry is stored as
//
//	version (1 byte, 1) | time (8 bytes BE, Unix nanoseconds)
//	| scheme length (1 byte, 1..255) | scheme
//	| log2 m (1 byte, 4..12) | N (uvarint) | non-empty cells (uvarint)
//	| per non-empty cell, in increasing index order:
//	  index gap (uvarint: index − previous index − 1, the first: index)
//	  | count (uvarint, ≥ 1) | xor (8 bytes LE)
//
// Empty cells are left out, so a small group costs little. Every varint
// must be minimal and nothing may follow the last cell, so a stored entry
// has exactly one encoding.

// entry is a remembered group or union as decoded. scheme may alias the
// decoded bytes (only valid as long as they are).
type entry struct {
	time   int64
	scheme []byte
	sk     *Sketch
}

func appendEntry(dst []byte, t int64, scheme string, s *Sketch) []byte {
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t))
	dst = append(dst, byte(len(scheme)))
	dst = append(dst, scheme...)
	dst = append(dst, byte(log2(s.M())))
	dst = binary.AppendUvarint(dst, uint64(s.n))
	nonEmpty := 0
	for _, c := range s.counts {
		if c != 0 {
			nonEmpty++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(nonEmpty))
	next := 0
	for i, c := range s.counts {
		if c == 0 {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(i-next))
		dst = binary.AppendUvarint(dst, uint64(c))
		dst = binary.LittleEndian.AppendUint64(dst, s.xors[i])
		next = i + 1
	}
	return dst
}

// errShort is wrapped when an entry ends before a field does.
var errShort = errors.New("entry ends early")

// entryDecoder reads one entry; it names the field and byte offset of the
// first problem.
type entryDecoder struct {
	b    []byte
	off  int
	cell int // index in the cell list of the cell being read; -1 before
}

func (d *entryDecoder) fail(field string, err error) error {
	if d.cell >= 0 {
		field = fmt.Sprintf("cell #%d %s", d.cell, field)
	}
	return fmt.Errorf("diffcheck: stored entry: %s at byte %d: %w", field, d.off, err)
}

func (d *entryDecoder) bytes(n int, field string) ([]byte, error) {
	if len(d.b)-d.off < n {
		return nil, d.fail(field, errShort)
	}
	b := d.b[d.off : d.off+n]
	d.off += n
	return b, nil
}

// uvarint reads a varint of at most max. Small values, the common case,
// take the inlined fast path.
func (d *entryDecoder) uvarint(field string, max uint64) (uint64, error) {
	if d.off < len(d.b) {
		if v := uint64(d.b[d.off]); v < 0x80 && v <= max {
			d.off++
			return v, nil
		}
	}
	return d.uvarintSlow(field, max)
}

func (d *entryDecoder) uvarintSlow(field string, max uint64) (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		return 0, d.fail(field, errShort)
	case n < 0:
		return 0, d.fail(field, errors.New("varint overflows 64 bits"))
	case n > 1 && d.b[d.off+n-1] == 0:
		return 0, d.fail(field, errors.New("varint is not minimal"))
	case v > max:
		return 0, d.fail(field, fmt.Errorf("%d is above %d", v, max))
	}
	d.off += n
	return v, nil
}

// decodeEntry decodes b, refusing anything malformed. into returns the
// sketch to fill for m cells (it is reset first), so a caller comparing
// many entries can reuse one; nil allocates a new one.
func decodeEntry(b []byte, into func(m int) *Sketch) (entry, error) {
	d := &entryDecoder{b: b, cell: -1}
	var e entry
	head, err := d.bytes(10, "header")
	if err != nil {
		return e, err
	}
	if head[0] != entryVersion {
		return e, fmt.Errorf("diffcheck: stored entry: version %d, want %d", head[0], entryVersion)
	}
	e.time = int64(binary.BigEndian.Uint64(head[1:9]))
	if e.time < 0 {
		return e, fmt.Errorf("diffcheck: stored entry: time %d is before 1970", e.time)
	}
	if head[9] == 0 {
		return e, errors.New("diffcheck: stored entry: empty scheme")
	}
	if e.scheme, err = d.bytes(int(head[9]), "scheme"); err != nil {
		return e, err
	}
	lm, err := d.bytes(1, "log2 m")
	if err != nil {
		return e, err
	}
	if lm[0] < 4 || lm[0] > 12 {
		return e, fmt.Errorf("diffcheck: stored entry: log2 m = %d, want 4..12", lm[0])
	}
	m := 1 << lm[0]
	n, err := d.uvarint("N", maxPersons)
	if err != nil {
		return e, err
	}
	cells, err := d.uvarint("cell count", uint64(m))
	if err != nil {
		return e, err
	}
	if into == nil {
		e.sk = newSketch(m)
	} else {
		e.sk = into(m)
		e.sk.reset()
	}
	if err := d.cells(e.sk, int(cells)); err != nil {
		return e, err
	}
	if uint64(e.sk.n) != n {
		return e, fmt.Errorf("diffcheck: stored entry: cells hold %d persons, N says %d", e.sk.n, n)
	}
	if d.off != len(b) {
		return e, fmt.Errorf("diffcheck: stored entry: %d bytes after the last cell", len(b)-d.off)
	}
	return e, nil
}

// cells decodes the non-empty cells into s. It runs for every candidate
// of every Release, so a cell whose gap and count are one byte each (nearly
// all) is read without calls.
func (d *entryDecoder) cells(s *Sketch, cells int) error {
	m := s.M()
	counts, xors := s.counts, s.xors
	b := d.b
	next := 0
	for c := range cells {
		d.cell = c
		var gap, count uint64
		if off := d.off; off+10 <= len(b) && b[off] < 0x80 && b[off+1] < 0x80 {
			gap, count = uint64(b[off]), uint64(b[off+1])
			d.off += 2
		} else {
			var err error
			if gap, err = d.uvarint("index gap", maxCells); err != nil {
				return err
			}
			if count, err = d.uvarint("count", maxPersons); err != nil {
				return err
			}
		}
		if gap > uint64(m-1-next) {
			return d.fail("index gap", fmt.Errorf("cell %d is outside 0..%d", uint64(next)+gap, m-1))
		}
		if count == 0 {
			return d.fail("count", errors.New("zero count of a listed cell"))
		}
		i := next + int(gap)
		if len(b)-d.off < 8 {
			return d.fail("xor", errShort)
		}
		xor := binary.LittleEndian.Uint64(b[d.off:])
		d.off += 8
		if !parityOK(i, int64(count), xor, m) {
			return d.fail("xor", checkParity(i, int64(count), xor, m))
		}
		counts[i], xors[i] = int64(count), xor
		if s.n += int64(count); s.n > maxPersons {
			return d.fail("count", errors.New("total passes 2^48 persons"))
		}
		if next = i + 1; next == m && c+1 < cells {
			return d.fail("index gap", errors.New("more cells listed after the last cell"))
		}
	}
	return nil
}
