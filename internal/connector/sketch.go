package connector

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

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

// Names inside a sketch plan; none reaches the result.
const (
	skHash    = "__yrd_h"       // the person's keyed hash
	skCell    = "__yrd_cell"    // its cell
	skTot     = "__yrd_tot"     // GROUPING(): which set a row is of (see sketch)
	skPersons = "__yrd_persons" // distinct persons in a cell
	skXor     = "__yrd_x"       // bit-XOR of their hashes
	skAgg     = "__yrd_c"       // + select index: a requested aggregate
	skPrefix  = "__yrd_"
)

// skAggRE matches the names of the requested aggregates inside a plan.
var skAggRE = regexp.MustCompile(`^` + skAgg + `[0-9]+$`)

// sketchReserved reports whether an alias would collide with a name the
// sketch plan uses (other __yrd_ names, such as the merge's helper
// columns __yrd_sum_1, do not).
func sketchReserved(alias string) bool {
	switch alias {
	case skHash, skCell, skTot, skPersons, skXor, IndividualsColumn, SketchCellsColumn, SketchCountsColumn, SketchXorsColumn:
		return true
	}
	return skAggRE.MatchString(alias)
}

// sketch compiles an aggregate query with the sketch columns, in one scan
// of the data, as a GROUPING SETS query: the set of the requested groups
// computes the requested aggregates exactly as the plain plan does (the
// same expressions over the same rows, so the same values and types), and
// a second set splits each group further, from which the cells are built.
// An outer GROUP BY joins each group's total row to its cells; the k floor
// is a HAVING on the group's distinct individuals, as in the plain plan,
// so no group under k is ever in the result.
//
// The second set is
//   - the group and the cell (h & (m-1)), counting rows and XORing hashes
//     per cell, when the engine verified that the person key is unique per
//     row (Options.personUnique): then a row is a person. No DISTINCT step.
//   - otherwise the group and the raw person key: one row per distinct
//     person of the group, whose hash is computed then (once per person,
//     not per row) and grouped by cell one level up. Grouping by the raw
//     key rather than by its hash keeps the individuals count exact
//     whatever the hash does.
//
// Every set computes every aggregate, which costs little except for
// count(DISTINCT col): per person of the distinct path it would cost a
// distinct step of its own. So count(DISTINCT col) (col not a group
// column) gets a set of the group and col instead, whose rows with col
// not NULL are the distinct values: the same count, one hash table of
// groups × values.
func (c *compiler) sketch(q *yrdv1.Query, outs []outItem, groupSQL, orderSQL []string, personKey string, limit uint64) (string, []any, error) {
	for _, col := range c.d.GetSchema().GetColumns() {
		if strings.HasPrefix(col.GetName(), skPrefix) {
			return "", nil, fmt.Errorf("connector: dataset %s: column name %q is reserved (prefix %s)", c.d.GetId(), col.GetName(), skPrefix)
		}
	}
	for i, o := range outs {
		if sketchReserved(o.name) {
			return "", nil, fmt.Errorf("connector: select item %d: alias %q is reserved", i, o.name)
		}
	}
	sk := c.opts.Sketch
	mask := strconv.Itoa(sk.Cells - 1)
	fast := c.opts.personUnique
	hashOf := func(col string) string { return c.dl.sketchHash(col, c.bind(c.dl.sketchSeed(sk.Seed))) }
	var (
		h, cell, tot = c.id(skHash), c.id(skCell), c.id(skTot)
		persons, xor = c.id(skPersons), c.id(skXor)
		pk           = c.id(personAlias)
		t, u         = c.id("t"), c.id("u")
	)
	key := pk // what the second set adds to the group
	if fast {
		key = cell
	}
	grouped := map[string]bool{}
	for _, g := range groupSQL {
		grouped[g] = true
	}
	// The requested aggregates, by select index, and the columns counted
	// distinct through a set of their own.
	aggName := func(i int) string { return c.id(skAgg + strconv.Itoa(i)) }
	var aggIdx []int
	var aggs, distinct []string
	distinctOf := map[int]int{} // select index → index in distinct
	for i, o := range outs {
		if o.agg == nil {
			continue
		}
		if col := c.id(o.agg.GetColumn()); o.agg.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT && !grouped[col] {
			j := slices.Index(distinct, col)
			if j < 0 {
				j = len(distinct)
				distinct = append(distinct, col)
			}
			distinctOf[i] = j
			continue
		}
		aggIdx = append(aggIdx, i)
		aggs = append(aggs, c.aggregateSQL(o.agg)+" AS "+aggName(i))
	}
	// GROUPING(key, distinct...) tells the sets apart: a bit per argument,
	// the first the most significant, set where the argument is not grouped.
	bits := 1 + len(distinct)
	totalSet := 1<<bits - 1
	keySet := totalSet &^ (1 << (bits - 1))
	distinctSet := func(j int) int { return totalSet &^ (1 << (bits - 2 - j)) }
	is := func(set int) string { return tot + " = " + strconv.Itoa(set) }
	var sets []string
	g := strings.Join(groupSQL, ", ")
	for _, extra := range append([]string{"", key}, distinct...) {
		switch {
		case g == "":
			sets = append(sets, "("+extra+")")
		case extra == "":
			sets = append(sets, "("+g+")")
		default:
			sets = append(sets, "("+g+", "+extra+")")
		}
	}
	grouping := "GROUPING(" + strings.Join(append([]string{key}, distinct...), ", ") + ") AS " + tot
	groupBy := " GROUP BY GROUPING SETS (" + strings.Join(sets, ", ") + ")"
	withCell := "SELECT *, " + cast(c.dl, h+" & "+mask, "BIGINT") + " AS " + cell + " FROM "
	cellCounts := []string{"count(" + h + ") AS " + persons, "bit_xor(" + h + ") AS " + xor}
	cat := func(parts ...[]string) string { return strings.Join(slices.Concat(parts...), ", ") }

	// level has, per group, one total row (tot = totalSet), its cell rows
	// (tot = keySet) and its distinct values rows (tot = distinctSet(j)).
	var level string
	// distinctCount(j) is the outer expression of distinct[j]'s count.
	var distinctCount func(j int) string
	flat := fast && len(distinct) == 0 && decomposable(outs)
	if flat {
		// No grouping sets: each group's cells carry partial counts,
		// minima and maxima, which the outer query combines exactly.
		inner, err := c.innerQuery(q, "", func() []string {
			return []string{hashOf(c.id(personKey)) + " AS " + h}
		})
		if err != nil {
			return "", nil, err
		}
		level = "SELECT " + cat(groupSQL, []string{cell}, aggs, cellCounts) +
			" FROM (" + withCell + "(" + inner + ") AS " + t + ") AS " + t + " GROUP BY " + cat(groupSQL, []string{cell})
		if len(groupSQL) == 0 && c.opts.cellRows && countsOnly(outs) {
			// A total of counts: its cells are the rows, which the
			// Statement folds (see Statement.cellRows).
			items := make([]string, len(outs))
			for i := range outs {
				items[i] = aggName(i) + c.alias(outs, i)
			}
			c.cellRows = true
			return "SELECT " + cat(items, []string{cell, persons, xor}) + " FROM (" + level + ") AS " + c.id("s"), c.args, nil
		}
	} else if fast {
		inner, err := c.innerQuery(q, "", func() []string {
			return []string{hashOf(c.id(personKey)) + " AS " + h}
		})
		if err != nil {
			return "", nil, err
		}
		level = "SELECT " + cat(groupSQL, []string{grouping, cell}, distinct, aggs, cellCounts) +
			" FROM (" + withCell + "(" + inner + ") AS " + t + ") AS " + t + groupBy
		distinctCount = func(j int) string { return "count(" + distinct[j] + ") FILTER (WHERE " + is(distinctSet(j)) + ")" }
	} else {
		// The hash is written before the inner query: bound first, in
		// text order.
		hash := hashOf(pk)
		inner, err := c.innerQuery(q, personKey, nil)
		if err != nil {
			return "", nil, err
		}
		perPerson := "SELECT " + cat(groupSQL, []string{grouping, pk}, distinct, aggs) + " FROM (" + inner + ") AS " + t + groupBy
		var carried []string
		for _, i := range aggIdx {
			// One total row per group: max is its value.
			carried = append(carried, "max("+aggName(i)+") AS "+aggName(i))
		}
		counted := make([]string, len(distinct))
		for j, col := range distinct {
			counted[j] = "count(" + col + ") AS " + col
		}
		level = "SELECT " + cat(groupSQL, []string{tot, cell}, carried, counted, cellCounts) +
			" FROM (" + withCell + "(SELECT *, " + hash + " AS " + h + " FROM (" + perPerson + ") AS " + u + ") AS " + u + ") AS " + u +
			" GROUP BY " + cat(groupSQL, []string{tot, cell})
		distinctCount = func(j int) string { return "max(" + distinct[j] + ") FILTER (WHERE " + is(distinctSet(j)) + ")" }
	}

	outer := make([]string, 0, len(outs)+4)
	for i, o := range outs {
		var e string
		if j, ok := distinctOf[i]; ok {
			e = distinctCount(j)
		} else if o.col != "" {
			e = c.id(o.col)
		} else if flat {
			e = c.combined(o.agg, aggName(i))
		} else {
			// The group's total row holds the value.
			e = "max(" + aggName(i) + ") FILTER (WHERE " + is(totalSet) + ")"
		}
		outer = append(outer, e+c.alias(outs, i))
	}
	cells := " FILTER (WHERE " + is(keySet) + " AND " + persons + " > 0)"
	groupSize := "sum(" + persons + ") FILTER (WHERE " + is(keySet) + ")"
	if flat {
		cells, groupSize = " FILTER (WHERE "+persons+" > 0)", "sum("+persons+")"
	}
	outer = append(outer,
		cast(c.dl, groupSize, "BIGINT")+" AS "+c.id(IndividualsColumn),
		c.dl.listAgg(cell)+cells+" AS "+c.id(SketchCellsColumn),
		c.dl.listAgg(persons)+cells+" AS "+c.id(SketchCountsColumn),
		c.dl.listAgg(xor)+cells+" AS "+c.id(SketchXorsColumn))

	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(outer, ", ") + " FROM (" + level + ") AS " + c.id("s"))
	if len(groupSQL) > 0 {
		b.WriteString(" GROUP BY " + g)
	}
	// k-anonymity in the plan, on distinct individuals as in the plain plan.
	b.WriteString(" HAVING " + groupSize + " >= " + c.bind(int64(c.dec.GetMinGroupSize())))
	if len(orderSQL) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(orderSQL, ", "))
	}
	if limit > 0 {
		b.WriteString(" LIMIT " + c.bind(int64(limit)))
	}
	return b.String(), c.args, nil
}

// alias names select item i of a sketch plan as the plain plan names it.
func (c *compiler) alias(outs []outItem, i int) string {
	switch o := outs[i]; {
	case o.name != "":
		return " AS " + c.id(o.name)
	case len(c.opts.names) == len(outs) && c.opts.names[i] != "":
		return " AS " + c.id(c.opts.names[i])
	case o.agg != nil:
		return " AS " + c.id(c.dl.defaultName(o.agg))
	}
	return ""
}

// countsOnly reports whether every item of outs is count(*) or
// count(col), whose per-cell values a Statement folds by summing.
func countsOnly(outs []outItem) bool {
	for _, o := range outs {
		if o.agg.GetFunction() != yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT {
			return false
		}
	}
	return true
}

// decomposable reports whether every aggregate of outs combines exactly
// from its values over parts of a group, with the plain plan's type:
// counts (summed, as BIGINT), minima and maxima. Sums and averages are
// not: a float sum regrouped may differ in its last bits, and an
// integer sum's type differs between engines.
func decomposable(outs []outItem) bool {
	for _, o := range outs {
		switch o.agg.GetFunction() {
		case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_UNSPECIFIED, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT,
			yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		default:
			return false
		}
	}
	return true
}

// combined is the outer expression of a decomposable aggregate from its
// per-cell values in column part.
func (c *compiler) combined(a *yrdv1.AggregateCall, part string) string {
	switch a.GetFunction() {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN:
		return "min(" + part + ")"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		return "max(" + part + ")"
	}
	return cast(c.dl, "sum("+part+")", "BIGINT")
}

// sketchIndexes are the positions of the sketch list columns in names,
// -1 where absent.
type sketchIndexes struct{ cells, counts, xors int }

func findSketch(names []string) sketchIndexes {
	s := sketchIndexes{-1, -1, -1}
	for i, n := range names {
		switch n {
		case SketchCellsColumn:
			s.cells = i
		case SketchCountsColumn:
			s.counts = i
		case SketchXorsColumn:
			s.xors = i
		}
	}
	return s
}

// convert replaces the driver's lists ([]any of boxed integers, or NULL)
// in vals by []int64 and []uint64.
func (s sketchIndexes) convert(vals []any) error {
	for _, i := range []int{s.cells, s.counts} {
		if i < 0 {
			continue
		}
		l, _ := vals[i].([]any)
		out := make([]int64, len(l))
		for j, v := range l {
			switch x := v.(type) {
			case int64:
				out[j] = x
			case int32:
				out[j] = int64(x)
			default:
				return fmt.Errorf("connector: sketch list element %T", v)
			}
		}
		if vals[i] != nil && l == nil {
			return fmt.Errorf("connector: sketch list %T", vals[i])
		}
		vals[i] = out
	}
	if i := s.xors; i >= 0 {
		l, _ := vals[i].([]any)
		out := make([]uint64, len(l))
		for j, v := range l {
			switch x := v.(type) {
			case uint64:
				out[j] = x
			case int64:
				out[j] = uint64(x) // two's complement: the same 64 bits
			default:
				return fmt.Errorf("connector: sketch xor element %T", v)
			}
		}
		if vals[i] != nil && l == nil {
			return fmt.Errorf("connector: sketch list %T", vals[i])
		}
		vals[i] = out
	}
	return s.sortCells(vals)
}

// sortCells puts the three lists in ascending cell order: the plan does
// not order them, which an ordered list aggregate would cost several
// times a tiny query's scan.
func (s sketchIndexes) sortCells(vals []any) error {
	if s.cells < 0 || s.counts < 0 || s.xors < 0 {
		return nil
	}
	cells, counts, xors := vals[s.cells].([]int64), vals[s.counts].([]int64), vals[s.xors].([]uint64)
	if len(counts) != len(cells) || len(xors) != len(cells) {
		return fmt.Errorf("connector: sketch lists of %d, %d and %d cells", len(cells), len(counts), len(xors))
	}
	if slices.IsSorted(cells) {
		return nil
	}
	order := make([]int, len(cells))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(cells[a], cells[b]) })
	c2, n2, x2 := make([]int64, len(cells)), make([]int64, len(cells)), make([]uint64, len(cells))
	for i, j := range order {
		c2[i], n2[i], x2[i] = cells[j], counts[j], xors[j]
	}
	vals[s.cells], vals[s.counts], vals[s.xors] = c2, n2, x2
	return nil
}
