package diffcheck

import (
	"errors"
	"fmt"
	"math/bits"
)

const (
	// minCells and maxCells bound a sketch's size: below 16 cells almost
	// every difference lands in shared cells; above 4096 a remembered group
	// costs more than the check is worth.
	minCells = 16
	maxCells = 4096
	// maxPersons bounds N and every count, so sums of a few sketches can
	// never overflow int64. No aggregate group is near 2^48 persons.
	maxPersons = 1 << 48
)

// CellsFor returns the cells a sketch needs for threshold k: the smallest
// power of two ≥ 4k, at least 16 and at most 4096. Four cells per unit of
// k keep the differing persons of a difference near k mostly in cells of
// their own, so the lower bound rarely falls below the true difference.
func CellsFor(k uint32) int {
	want := 4 * uint64(k)
	m := uint64(minCells)
	for m < want && m < maxCells {
		m <<= 1
	}
	return int(m)
}

// Sketch is a compact linear summary of a set of persons, each given as a
// 64-bit keyed hash h. It has m cells (a power of two); h goes to cell
// h & (m-1), which keeps the number of persons in it and the XOR of their
// hashes. The zero Sketch is not usable: make one with NewSketch or
// SketchFromCells. A Sketch is not safe for concurrent mutation.
type Sketch struct {
	counts []int64
	xors   []uint64
	n      int64
}

// NewSketch returns an empty sketch of m cells, m a power of two in
// 16..4096.
func NewSketch(m int) (*Sketch, error) {
	if err := checkCells(m); err != nil {
		return nil, err
	}
	return newSketch(m), nil
}

func newSketch(m int) *Sketch {
	return &Sketch{counts: make([]int64, m), xors: make([]uint64, m)}
}

func checkCells(m int) error {
	if m < minCells || m > maxCells || m&(m-1) != 0 {
		return fmt.Errorf("diffcheck: %d cells: want a power of two in %d..%d", m, minCells, maxCells)
	}
	return nil
}

// SketchFromCells builds a sketch of m cells from the non-empty cells an
// engine computed, e.g. with GROUP BY h & (m-1) the per-cell count(*) and
// bit_xor(h). cells[i], counts[i] and xors[i] describe one cell; the
// slices must be equally long, each cell index in [0, m) and listed once,
// each count positive. Engines whose hashes are signed 64-bit integers
// (PostgreSQL bigint) pass uint64(x), the same bits in two's complement;
// their cell index is then x & (m-1) computed on the signed value, which
// is the same number.
//
// The low log2(m) bits of a cell's XOR are fixed by where its persons went:
// cell i for an odd count, 0 for an even one. A cell that breaks this was
// not computed as h & (m-1) and is refused, because the comparison relies
// on it.
func SketchFromCells(m int, cells []int64, counts []int64, xors []uint64) (*Sketch, error) {
	if err := checkCells(m); err != nil {
		return nil, err
	}
	if len(counts) != len(cells) || len(xors) != len(cells) {
		return nil, fmt.Errorf("diffcheck: %d cells, %d counts, %d xors: want equal lengths", len(cells), len(counts), len(xors))
	}
	s := newSketch(m)
	seen := make([]bool, m)
	for i, c := range cells {
		if c < 0 || c >= int64(m) {
			return nil, fmt.Errorf("diffcheck: cells[%d] = %d: outside 0..%d", i, c, m-1)
		}
		if seen[c] {
			return nil, fmt.Errorf("diffcheck: cells[%d] = %d: cell listed twice", i, c)
		}
		seen[c] = true
		if counts[i] <= 0 || counts[i] > maxPersons {
			return nil, fmt.Errorf("diffcheck: counts[%d] = %d: want 1..2^48", i, counts[i])
		}
		if err := checkParity(int(c), counts[i], xors[i], m); err != nil {
			return nil, fmt.Errorf("diffcheck: xors[%d]: %w", i, err)
		}
		s.counts[c], s.xors[c] = counts[i], xors[i]
		if s.n += counts[i]; s.n > maxPersons {
			return nil, fmt.Errorf("diffcheck: counts[%d]: total passes 2^48 persons", i)
		}
	}
	return s, nil
}

// checkParity checks the low bits of cell i's XOR against its count.
func checkParity(i int, count int64, xor uint64, m int) error {
	if !parityOK(i, count, xor, m) {
		return fmt.Errorf("cell %d holds %d persons but its xor's low bits are %d, want %d (cell must be h & (m-1))",
			i, count, xor&uint64(m-1), uint64(i)*uint64(count&1))
	}
	return nil
}

// parityOK: the low log2(m) bits of cell i's XOR are i for an odd count
// and 0 for an even one.
func parityOK(i int, count int64, xor uint64, m int) bool {
	return xor&uint64(m-1) == uint64(i)*uint64(count&1)
}

// M returns the number of cells.
func (s *Sketch) M() int { return len(s.counts) }

// N returns the number of persons summarised (with multiplicity).
func (s *Sketch) N() int64 { return s.n }

// Add adds the person with hash h.
func (s *Sketch) Add(h uint64) {
	i := h & uint64(len(s.counts)-1)
	s.counts[i]++
	s.xors[i] ^= h
	s.n++
}

// Merge adds o into s: afterwards s summarises the union of both sets if
// they share no person. For overlapping sets it summarises the multiset
// (a shared person counts twice and its hash cancels out of the XOR), and
// a comparison against it bounds the multiset difference, not the set
// difference: a set difference below k can then look like k or more, so
// the check is weaker for overlapping groups.
func (s *Sketch) Merge(o *Sketch) error {
	if o.M() != s.M() {
		return fmt.Errorf("diffcheck: merge of a %d-cell sketch into a %d-cell one", o.M(), s.M())
	}
	if s.n+o.n > maxPersons {
		return errors.New("diffcheck: merge: total passes 2^48 persons")
	}
	for i := range s.counts {
		s.counts[i] += o.counts[i]
		s.xors[i] ^= o.xors[i]
	}
	s.n += o.n
	return nil
}

// Clone returns an independent copy of s.
func (s *Sketch) Clone() *Sketch {
	c := newSketch(s.M())
	copy(c.counts, s.counts)
	copy(c.xors, s.xors)
	c.n = s.n
	return c
}

func (s *Sketch) reset() {
	clear(s.counts)
	clear(s.xors)
	s.n = 0
}

// Verdict is what Compare concludes about two sketches.
type Verdict uint8

const (
	// Identical: every cell agrees; the same set asked again (or a
	// difference whose hashes cancel in every cell, see Compare).
	Identical Verdict = iota + 1
	// Near: the sets differ by at least 1 and possibly fewer than k
	// persons. Suppress.
	Near
	// Far: the sets differ by at least k persons.
	Far
)

func (v Verdict) String() string {
	switch v {
	case Identical:
		return "identical"
	case Near:
		return "near"
	case Far:
		return "far"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Compare compares sketch a (new) of hash scheme schemeA with b
// (remembered) of schemeB for threshold k, and returns the verdict and a
// lower bound on d = |A Δ B|, the persons in one set and not the other.
//
// For sketches of the same scheme and size, every differing person moves
// exactly one cell's count by ±1 and XORs its hash into that cell, so per
// cell a non-zero count difference |Δn| is at least |Δn| persons, an equal
// count with a different XOR at least 2 (one in, one out), and the bound
// is their sum (and at least |a.N − b.N|). It never exceeds d, so a
// difference of 1..k−1 is Near — never Far. It is Identical only if the
// differing persons' hashes XOR to 0 in every touched cell; their low
// log2(m) bits always cancel there, so for keyed, random 64-bit hashes
// that happens with probability at most 2^-(64−log2 m) ≤ 2^-52 per
// comparison. Far for d ≥ k needs no luck either way; Near for d ≥ k
// (refusing too much) needs differing persons to share cells.
//
// Sketches of different schemes or sizes cannot be compared cell by cell:
// then Near iff |a.N − b.N| ≤ k−1, and the bound is |a.N − b.N|. k = 0
// makes nothing Near.
func Compare(a, b *Sketch, schemeA, schemeB string, k uint32) (Verdict, uint64) {
	if schemeA != schemeB || a.M() != b.M() {
		dN := absDiff(a.n, b.n)
		if dN < uint64(k) {
			return Near, dN
		}
		return Far, dN
	}
	return compareCells(a, b, k, ^uint64(0))
}

// compareCells compares two sketches of one scheme and size. It stops
// adding to the bound once it reaches limit (the verdict is then Far for
// any limit ≥ k), which is what Release uses: most remembered groups of a
// similar size are far, and a few cells show it.
func compareCells(a, b *Sketch, k uint32, limit uint64) (Verdict, uint64) {
	mask := uint64(a.M() - 1)
	var lb uint64
	identical := true
	for i := range a.counts {
		dn := a.counts[i] - b.counts[i]
		dx := a.xors[i] ^ b.xors[i]
		switch {
		case dn == 0 && dx == 0:
			continue
		case dn == 0:
			lb += 2
		case (dn == 1 || dn == -1) && dx&mask != uint64(i):
			// A lone person would leave its own hash, whose low bits are
			// i. Sketches built by Add, SketchFromCells or the decoder
			// always satisfy that parity, so this case cannot occur for
			// them; it is kept as the design states it.
			lb += 3
		default:
			lb += absDiff(dn, 0)
		}
		identical = false
		if lb >= limit {
			break
		}
	}
	if identical {
		return Identical, 0
	}
	lb = max(lb, absDiff(a.n, b.n))
	if lb < uint64(k) {
		return Near, lb
	}
	return Far, lb
}

func absDiff(a, b int64) uint64 {
	if a >= b {
		return uint64(a - b)
	}
	return uint64(b - a)
}

// log2 returns log2 of a power of two.
func log2(m int) int { return bits.TrailingZeros(uint(m)) }
