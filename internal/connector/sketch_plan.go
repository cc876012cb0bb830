package connector

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

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
	if err := c.checkSketchNames(outs); err != nil {
		return "", nil, err
	}
	p := c.newSketchPlan(q, outs, groupSQL, personKey)
	var level string
	var err error
	flat := p.fast && len(p.distinct) == 0 && decomposable(outs)
	switch {
	case flat:
		if level, err = p.flatLevel(); err == nil && len(groupSQL) == 0 && c.opts.cellRows && countsOnly(outs) {
			return p.cellRowsPlan(level), c.args, nil
		}
	case p.fast:
		level, err = p.fastLevel()
	default:
		level, err = p.distinctLevel()
	}
	if err != nil {
		return "", nil, err
	}
	return p.outer(level, flat, orderSQL, limit), c.args, nil
}

// checkSketchNames refuses column names and aliases that would collide
// with the plan's own.
func (c *compiler) checkSketchNames(outs []outItem) error {
	for _, col := range c.d.GetSchema().GetColumns() {
		if strings.HasPrefix(col.GetName(), skPrefix) {
			return fmt.Errorf("connector: dataset %s: column name %q is reserved (prefix %s)", c.d.GetId(), col.GetName(), skPrefix)
		}
	}
	for i, o := range outs {
		if sketchReserved(o.name) {
			return fmt.Errorf("connector: select item %d: alias %q is reserved", i, o.name)
		}
	}
	return nil
}

// sketchPlan is one sketch plan being written: its names, and the
// requested aggregates split into those every set computes and the
// count(DISTINCT col) that get a set of their own.
type sketchPlan struct {
	c         *compiler
	q         *yrdv1.Query
	outs      []outItem
	groupSQL  []string
	personKey string
	fast      bool // the person key is verified unique per row

	// Quoted names of the plan's columns.
	h, cell, tot, persons, xor, pk string
	// key is what the second set adds to the group: the cell on the fast
	// path, the raw person key on the distinct path.
	key string
	// aggIdx are the select indexes of the aggregates every set
	// computes, and aggs those aggregates named by select index.
	aggIdx []int
	aggs   []string
	// distinct are the columns counted distinct through a set of their
	// own; distinctOf maps a select index to its index in distinct.
	distinct   []string
	distinctOf map[int]int
}

func (c *compiler) newSketchPlan(q *yrdv1.Query, outs []outItem, groupSQL []string, personKey string) *sketchPlan {
	p := &sketchPlan{c: c, q: q, outs: outs, groupSQL: groupSQL, personKey: personKey, fast: c.opts.personUnique,
		h: c.id(skHash), cell: c.id(skCell), tot: c.id(skTot), persons: c.id(skPersons), xor: c.id(skXor), pk: c.id(personAlias),
		distinctOf: map[int]int{}}
	p.key = p.pk
	if p.fast {
		p.key = p.cell
	}
	grouped := map[string]bool{}
	for _, g := range groupSQL {
		grouped[g] = true
	}
	for i, o := range outs {
		if o.agg == nil {
			continue
		}
		// The distinct-values set computes count(DISTINCT col) only: a
		// plan of this engine, not a fact of the language.
		if col := c.id(o.agg.GetColumn()); o.agg.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT && !grouped[col] {
			j := slices.Index(p.distinct, col)
			if j < 0 {
				j = len(p.distinct)
				p.distinct = append(p.distinct, col)
			}
			p.distinctOf[i] = j
			continue
		}
		p.aggIdx = append(p.aggIdx, i)
		p.aggs = append(p.aggs, c.aggregateSQL(o.agg)+" AS "+p.aggName(i))
	}
	return p
}

// aggName names requested aggregate i inside the plan.
func (p *sketchPlan) aggName(i int) string { return p.c.id(skAgg + strconv.Itoa(i)) }

// GROUPING(key, distinct...) tells the sets apart: a bit per argument,
// the first the most significant, set where the argument is not grouped.
// A group's total row is of totalSet, its cell rows of keySet, and its
// rows of distinct values of distinctSet(j).
func (p *sketchPlan) totalSet() int         { return 1<<(1+len(p.distinct)) - 1 }
func (p *sketchPlan) keySet() int           { return p.totalSet() &^ (1 << len(p.distinct)) }
func (p *sketchPlan) distinctSet(j int) int { return p.totalSet() &^ (1 << (len(p.distinct) - 1 - j)) }
func (p *sketchPlan) is(set int) string     { return p.tot + " = " + strconv.Itoa(set) }

// groupingSets is the GROUP BY of the sets: the group, the group and
// key, and the group and each distinct column; and grouping the column
// of GROUPING that tells them apart.
func (p *sketchPlan) groupingSets() (groupBy, grouping string) {
	var sets []string
	g := strings.Join(p.groupSQL, ", ")
	for _, extra := range append([]string{"", p.key}, p.distinct...) {
		switch {
		case g == "":
			sets = append(sets, "("+extra+")")
		case extra == "":
			sets = append(sets, "("+g+")")
		default:
			sets = append(sets, "("+g+", "+extra+")")
		}
	}
	grouping = "GROUPING(" + strings.Join(append([]string{p.key}, p.distinct...), ", ") + ") AS " + p.tot
	return " GROUP BY GROUPING SETS (" + strings.Join(sets, ", ") + ")", grouping
}

// withCell reads rows with the hash h, adding its cell.
func (p *sketchPlan) withCell() string {
	mask := strconv.Itoa(p.c.opts.Sketch.Cells - 1)
	return "SELECT *, " + cast(p.c.dl, p.h+" & "+mask, "BIGINT") + " AS " + p.cell + " FROM "
}

// cellCounts are a cell's distinct persons and the XOR of their hashes.
func (p *sketchPlan) cellCounts() []string {
	return []string{"count(" + p.h + ") AS " + p.persons, "bit_xor(" + p.h + ") AS " + p.xor}
}

// hashOf is the sketch hash of the person key expr, its seed bound.
func (p *sketchPlan) hashOf(expr string) string {
	return p.c.dl.sketchHash(expr, p.c.bind(p.c.dl.sketchSeed(p.c.opts.Sketch.Seed)))
}

// hashedRows is the inner query with each row's person hash, as on the
// fast path, where a row is a person.
func (p *sketchPlan) hashedRows() (string, error) {
	inner, err := p.c.innerQuery(p.q, "", func() []string {
		return []string{p.hashOf(p.c.id(p.personKey)) + " AS " + p.h}
	})
	if err != nil {
		return "", err
	}
	t := p.c.id("t")
	return "(" + p.withCell() + "(" + inner + ") AS " + t + ") AS " + t, nil
}

func cat(parts ...[]string) string { return strings.Join(slices.Concat(parts...), ", ") }

// flatLevel is the fast path with no grouping sets: each group's cells
// carry partial counts, minima and maxima, which the outer query
// combines exactly.
func (p *sketchPlan) flatLevel() (string, error) {
	rows, err := p.hashedRows()
	if err != nil {
		return "", err
	}
	return "SELECT " + cat(p.groupSQL, []string{p.cell}, p.aggs, p.cellCounts()) +
		" FROM " + rows + " GROUP BY " + cat(p.groupSQL, []string{p.cell}), nil
}

// cellRowsPlan is a total of counts whose cells are its rows, which the
// Statement folds (see Statement.cellRows).
func (p *sketchPlan) cellRowsPlan(level string) string {
	items := make([]string, len(p.outs))
	for i := range p.outs {
		items[i] = p.aggName(i) + p.c.alias(p.outs, i)
	}
	p.c.cellRows = true
	return "SELECT " + cat(items, []string{p.cell, p.persons, p.xor}) + " FROM (" + level + ") AS " + p.c.id("s")
}

// fastLevel is the fast path with grouping sets: per group, one total
// row, its cell rows and its distinct values rows.
func (p *sketchPlan) fastLevel() (string, error) {
	rows, err := p.hashedRows()
	if err != nil {
		return "", err
	}
	groupBy, grouping := p.groupingSets()
	return "SELECT " + cat(p.groupSQL, []string{grouping, p.cell}, p.distinct, p.aggs, p.cellCounts()) +
		" FROM " + rows + groupBy, nil
}

// distinctLevel is the distinct path: the sets are computed per distinct
// person of each group, whose hash is computed then and grouped by cell
// one level up, carrying the total rows and the distinct counts along.
func (p *sketchPlan) distinctLevel() (string, error) {
	// The hash is written before the inner query: bound first, in text
	// order.
	hash := p.hashOf(p.pk)
	inner, err := p.c.innerQuery(p.q, p.personKey, nil)
	if err != nil {
		return "", err
	}
	groupBy, grouping := p.groupingSets()
	t, u := p.c.id("t"), p.c.id("u")
	perPerson := "SELECT " + cat(p.groupSQL, []string{grouping, p.pk}, p.distinct, p.aggs) + " FROM (" + inner + ") AS " + t + groupBy
	var carried []string
	for _, i := range p.aggIdx {
		// One total row per group: max is its value.
		carried = append(carried, "max("+p.aggName(i)+") AS "+p.aggName(i))
	}
	counted := make([]string, len(p.distinct))
	for j, col := range p.distinct {
		counted[j] = "count(" + col + ") AS " + col
	}
	return "SELECT " + cat(p.groupSQL, []string{p.tot, p.cell}, carried, counted, p.cellCounts()) +
		" FROM (" + p.withCell() + "(SELECT *, " + hash + " AS " + p.h + " FROM (" + perPerson + ") AS " + u + ") AS " + u + ") AS " + u +
		" GROUP BY " + cat(p.groupSQL, []string{p.tot, p.cell}), nil
}

// outer joins each group's rows of level into its result row: the
// requested items, the individuals and the sketch lists, with the k floor
// on the individuals as in the plain plan.
func (p *sketchPlan) outer(level string, flat bool, orderSQL []string, limit uint64) string {
	c := p.c
	outer := make([]string, 0, len(p.outs)+4)
	for i, o := range p.outs {
		var e string
		if j, ok := p.distinctOf[i]; ok {
			// The fast path's rows of distinct values are one per value;
			// the distinct path carried their count up.
			f := "max"
			if p.fast {
				f = "count"
			}
			e = f + "(" + p.distinct[j] + ") FILTER (WHERE " + p.is(p.distinctSet(j)) + ")"
		} else if o.col != "" {
			e = c.id(o.col)
		} else if flat {
			e = c.combined(o.agg, p.aggName(i))
		} else {
			// The group's total row holds the value.
			e = "max(" + p.aggName(i) + ") FILTER (WHERE " + p.is(p.totalSet()) + ")"
		}
		outer = append(outer, e+c.alias(p.outs, i))
	}
	cells := " FILTER (WHERE " + p.is(p.keySet()) + " AND " + p.persons + " > 0)"
	groupSize := "sum(" + p.persons + ") FILTER (WHERE " + p.is(p.keySet()) + ")"
	if flat {
		cells, groupSize = " FILTER (WHERE "+p.persons+" > 0)", "sum("+p.persons+")"
	}
	outer = append(outer,
		cast(c.dl, groupSize, "BIGINT")+" AS "+c.id(IndividualsColumn),
		c.dl.listAgg(p.cell)+cells+" AS "+c.id(SketchCellsColumn),
		c.dl.listAgg(p.persons)+cells+" AS "+c.id(SketchCountsColumn),
		c.dl.listAgg(p.xor)+cells+" AS "+c.id(SketchXorsColumn))
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(outer, ", ") + " FROM (" + level + ") AS " + c.id("s"))
	if len(p.groupSQL) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(p.groupSQL, ", "))
	}
	// k-anonymity in the plan, on distinct individuals as in the plain plan.
	b.WriteString(" HAVING " + groupSize + " >= " + c.bind(int64(c.dec.GetMinGroupSize())))
	if len(orderSQL) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(orderSQL, ", "))
	}
	if limit > 0 {
		b.WriteString(" LIMIT " + c.bind(int64(limit)))
	}
	return b.String()
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

// countsOnly reports whether every item of outs is an aggregate whose
// per-cell values a Statement folds by summing: count(*) and count(col).
func countsOnly(outs []outItem) bool {
	for _, o := range outs {
		if ag, ok := querylang.AggregateOf(o.agg.GetFunction()); !ok || !addsAsCount(ag) {
			return false
		}
	}
	return true
}

// addsAsCount reports whether an aggregate's values over a partition of a
// group's persons (cells, like cities) add up to its value over the group,
// with the plain plan's BIGINT type: a count, merged by adding, that
// merges so across parts. A distinct count does not: one value may be
// counted in several cells.
func addsAsCount(ag querylang.Aggregate) bool {
	return ag.Result == querylang.ResultCount && ag.Merge == querylang.MergeAdd && ag.AcrossCities
}

// decomposable reports whether every aggregate of outs combines exactly
// from its values over parts of a group, with the plain plan's type:
// counts (summed, as BIGINT), minima and maxima. Sums and averages are
// not: a float sum regrouped may differ in its last bits, and an
// integer sum's type differs between engines.
func decomposable(outs []outItem) bool {
	for _, o := range outs {
		if o.agg == nil {
			continue
		}
		ag, ok := querylang.AggregateOf(o.agg.GetFunction())
		if !ok || !ag.AcrossCities {
			return false
		}
		if ag.Merge != querylang.MergeMin && ag.Merge != querylang.MergeMax && !addsAsCount(ag) {
			return false
		}
	}
	return true
}

// combined is the outer expression of a decomposable aggregate from its
// per-cell values in column part: the least of the minima, the greatest
// of the maxima, the sum of the counts.
func (c *compiler) combined(a *yrdv1.AggregateCall, part string) string {
	switch ag := aggregateOf(a); ag.Merge {
	case querylang.MergeMin, querylang.MergeMax:
		return ag.Call(part)
	}
	return cast(c.dl, "sum("+part+")", "BIGINT")
}
