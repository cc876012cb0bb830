package connector

import (
	"fmt"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The columns Options.Sketch appends to an aggregate result, after the
// requested select items and in this order: IndividualsColumn (BIGINT),
// then three parallel lists describing the non-empty cells of the group's
// sketch, ascending by cell index. Both engines' Values return them as
// []int64 (cells), []int64 (counts) and []uint64 (xors).
const (
	SketchCellsColumn  = "__yrd_sketch_cells"
	SketchCountsColumn = "__yrd_sketch_counts"
	SketchXorsColumn   = "__yrd_sketch_xors"
)

// Bounds of SketchOptions.
const (
	MinSketchCells   = 16
	MaxSketchCells   = 4096
	MinSketchSeedLen = 16
)

// PGSketchScheme is Postgres.SketchScheme: PostgreSQL's
// hashtextextended, which hash partitioning relies on, so it does not
// change across versions.
const PGSketchScheme = "pg-hashtextextended"

// SketchOptions ask for a linear sketch of the set of distinct
// individuals (person keys) of every released aggregate group.
//
// Each person key p gets a 64-bit keyed hash h (DuckDB: hash(hex(Seed) ||
// CAST(p AS VARCHAR)), a UBIGINT; PostgreSQL: hashtextextended(p::text,
// s), a bigint, where s is the first 8 bytes of SHA-256 of Seed, big
// endian). The sketch has Cells cells; p goes to cell h & (Cells-1), the
// same number whether h is read as signed or unsigned; each cell holds the
// number of distinct persons in it and the bit-XOR of their h. XORs are
// returned as uint64: a PostgreSQL bigint is converted bit for bit (two's
// complement). Sketches are comparable only under the same engine
// SketchScheme, Cells and Seed.
type SketchOptions struct {
	// Cells is the number of cells: a power of two in
	// MinSketchCells..MaxSketchCells.
	Cells int
	// Seed keys the hash: at least MinSketchSeedLen bytes. It is bound as
	// a parameter, never written into the SQL.
	Seed []byte
}

func (s *SketchOptions) validate() error {
	if s.Cells < MinSketchCells || s.Cells > MaxSketchCells || s.Cells&(s.Cells-1) != 0 {
		return fmt.Errorf("connector: sketch of %d cells: want a power of two in %d..%d", s.Cells, MinSketchCells, MaxSketchCells)
	}
	if len(s.Seed) < MinSketchSeedLen {
		return fmt.Errorf("connector: sketch seed of %d bytes: want at least %d", len(s.Seed), MinSketchSeedLen)
	}
	return nil
}

// HasSketch reports whether a result with these column names carries a
// sketch: its last four columns are IndividualsColumn and the three
// sketch lists.
func HasSketch(names []string) bool {
	n := len(names)
	return n >= 4 && names[n-4] == IndividualsColumn && names[n-3] == SketchCellsColumn &&
		names[n-2] == SketchCountsColumn && names[n-1] == SketchXorsColumn
}

// SketchApplies reports whether Options.Sketch adds its columns to a query
// on d under dec: an aggregate decision over a dataset with a DIRECT
// identifier.
func SketchApplies(d *yrdv1.Dataset, dec *yrdv1.Decision) bool {
	return dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES && personKeyOf(d) != ""
}

// personKeyOf is d's DIRECT identifier column, or "".
func personKeyOf(d *yrdv1.Dataset) string {
	return (&compiler{d: d}).personKey()
}
