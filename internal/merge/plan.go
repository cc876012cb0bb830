package merge

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// ErrNotMergeable is wrapped by every error of [Plan]: the query cannot be
// answered by merging per-owner partial results (or is not a valid family
// query at all). It is the requester's to fix, an invalid argument.
var ErrNotMergeable = errors.New("merge: query cannot be merged across cities")

// ErrOverflow is wrapped by the error of [Merge.Result] when the owners'
// integer sums add up to more than BIGINT holds.
var ErrOverflow = errors.New("merge: sum overflows BIGINT")

// reservedPrefix starts the aliases of the helper columns; requester
// aliases may not use it.
const reservedPrefix = "__yrd_"

// planError is an error of Plan; it wraps ErrNotMergeable.
type planError struct{ msg string }

func (e *planError) Error() string { return "merge: " + e.msg }
func (e *planError) Unwrap() error { return ErrNotMergeable }

func refuse(format string, args ...any) error {
	return &planError{msg: fmt.Sprintf(format, args...)}
}

// outKind is what a result column of the merged query is.
type outKind uint8

const (
	outColumn outKind = iota // a GROUP BY column (aggregate queries) or any column (row queries)
	outCount
	outSum
	outMin
	outMax
	outAvg
)

// output is one column of the merged result: one requester select item.
type output struct {
	kind outKind
	src  int                 // partial column: the item's own, or avg's sum helper
	cnt  int                 // avg: the count helper's partial column
	gpos int                 // aggregate queries, outColumn: position in the group key
	agg  querylang.Aggregate // the aggregate of an aggregate output
	name string              // final name; "" under SELECT * (the partial's)
	text string              // the item as SQL, for messages
}

// partialCol is what the plan expects of one partial result column.
type partialCol struct {
	name  string // exact name expected; "" when the owner's engine names it
	types string // allowed types, "|"-separated; "" for any result type
	what  string // for messages: "select item 2 (sum(age))", "helper __yrd_sum_3"
}

// sortKey is one ORDER BY key, resolved against the merged records: in
// aggregate queries an index into the outputs (select_index) or into the
// group key (a GROUP BY column); in row queries an index into the partial
// row. Under SELECT * a column key is resolved by name (col) once the
// owners' columns are known.
type sortKey struct {
	fromKey bool
	idx     int
	col     string // SELECT * row queries: the ORDER BY column, idx resolved later
	desc    bool
}

// Merge is the plan of one family query and the state of its merge. Plan
// makes it. Partial and Columns only read the plan and are safe for
// concurrent use; Add and Result are not: the caller adds owners' results
// one at a time (e.g. as they arrive, from one goroutine or under its own
// lock) and then asks for the result.
type Merge struct {
	single    bool // PlanDataset: one part, count(DISTINCT) allowed
	aggregate bool
	star      bool // a row query with SELECT *: the owners' columns decide
	partial   *yrdv1.Query
	expect    []partialCol
	outs      []output
	groupSrc  []int // partial column of each group key position
	order     []sortKey
	limit     uint64

	parts []part
	seen  map[string]bool
	cols  []*yrdv1.ResultColumn // the first part's columns, treatments merged since
	first string                // the owner whose columns fixed cols
}

// part is one owner's released partial result.
type part struct {
	owner string
	rows  []*yrdv1.Row
}

// Plan checks that q, a query on a dataset family, can be answered
// exactly by merging the owners' partial results and returns the plan.
// Every error wraps [ErrNotMergeable] and names the offending select item
// by its 1-based position. Plan keeps a copy of q; the caller may reuse
// it.
func Plan(q *yrdv1.Query) (*Merge, error) {
	if q == nil {
		return nil, refuse("no query")
	}
	fam, ok := q.GetSource().(*yrdv1.Query_Family)
	if !ok || fam.Family == "" {
		return nil, refuse("the query is not on a dataset family (FROM family:<standard schema id>); only family queries are merged")
	}
	return plan(q, false)
}

// PlanDataset is Plan for an aggregate query on one dataset, which an
// owner answers from the same decomposed parts as a family query: its
// noise goes on the parts (counts and sums), and an avg, ORDER BY and
// LIMIT are computed from the noisy parts, never from exact values. Only
// one part may be added; with one part count(DISTINCT x) merges too.
func PlanDataset(q *yrdv1.Query) (*Merge, error) {
	if q == nil {
		return nil, refuse("no query")
	}
	if _, ok := q.GetSource().(*yrdv1.Query_DatasetId); !ok {
		return nil, refuse("the query is not on one dataset")
	}
	return plan(q, true)
}

// plan makes the plan in stages, each of which may refuse the query:
// the GROUP BY key, the select items, the outputs and the partial columns
// they read, then the sort keys.
func plan(q *yrdv1.Query, single bool) (*Merge, error) {
	p := &planner{m: &Merge{single: single, limit: q.GetLimit(), seen: map[string]bool{}},
		q: q, items: q.GetSelect(), groupPos: map[string]int{}}
	for _, stage := range []func() error{p.groupKey, p.checkItems, p.outputs, p.sortKeys} {
		if err := stage(); err != nil {
			return nil, err
		}
	}
	p.m.partial = p.partialQuery()
	return p.m, nil
}

// planner holds what the stages of plan share.
type planner struct {
	m        *Merge
	q        *yrdv1.Query
	items    []*yrdv1.SelectItem
	groupBy  []string       // GROUP BY columns, each once
	groupPos map[string]int // position in groupBy by column
	sel      []*yrdv1.SelectItem
}

// add appends a partial column and what the plan expects of it, and
// returns its position.
func (p *planner) add(it *yrdv1.SelectItem, c partialCol) int {
	p.sel = append(p.sel, it)
	p.m.expect = append(p.m.expect, c)
	return len(p.sel) - 1
}

// groupKey collects the GROUP BY columns, each once.
func (p *planner) groupKey() error {
	for _, g := range p.q.GetGroupBy() {
		if g == "" {
			return refuse("empty GROUP BY column")
		}
		if _, dup := p.groupPos[g]; !dup {
			p.groupPos[g] = len(p.groupBy)
			p.groupBy = append(p.groupBy, g)
		}
	}
	return nil
}

// checkItems checks each select item on its own and finds whether the
// query is an aggregate query.
func (p *planner) checkItems() error {
	m := p.m
	for i, it := range p.items {
		// A single-dataset plan takes the parts of a family query as they
		// are (an owner's part carries the home node's helper aliases).
		if a := it.GetAlias(); !m.single && len(a) >= len(reservedPrefix) && strings.EqualFold(a[:len(reservedPrefix)], reservedPrefix) {
			return refuse("select item %d: alias %q: names beginning with %s are reserved for the merge's helper columns", i+1, a, reservedPrefix)
		}
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			if x.Column == "" {
				return refuse("select item %d: empty column name", i+1)
			}
		case *yrdv1.SelectItem_Aggregate:
			m.aggregate = true
			if err := checkAggregate(i, x.Aggregate, m.single); err != nil {
				return err
			}
		default:
			return refuse("select item %d is empty", i+1)
		}
	}
	if len(p.groupBy) > 0 {
		m.aggregate = true
	}
	if m.aggregate && len(p.items) == 0 {
		return refuse("SELECT * with GROUP BY: select the grouped columns and aggregates")
	}
	return nil
}

// checkAggregate refuses what cannot be merged or is no aggregate at all.
// With one part (single), every aggregate merges: no value is counted
// by two parts.
func checkAggregate(i int, a *yrdv1.AggregateCall, single bool) error {
	agg, ok := querylang.AggregateOf(a.GetFunction())
	switch {
	case !ok:
		return refuse("select item %d: unknown aggregate function %v", i+1, a.GetFunction())
	case !agg.AcrossCities && single:
		return nil
	case !agg.AcrossCities:
		return refuse("select item %d: %s cannot be merged exactly across cities (one value may be counted by several cities); query one city's dataset instead",
			i+1, aggText(a))
	case a.GetColumn() == "" && !agg.StarAllowed:
		return refuse("select item %d: %s needs a column", i+1, agg.SQL)
	}
	return nil
}

// outputs plans the result columns and the partial columns they read.
func (p *planner) outputs() error {
	if !p.m.aggregate {
		p.rowOutputs()
		return nil
	}
	for i, it := range p.items {
		o, err := p.aggregateOutput(i, it)
		if err != nil {
			return err
		}
		p.m.outs = append(p.m.outs, o)
	}
	p.groupSources()
	return nil
}

// rowOutputs plans a row query's columns: each select item as it is.
func (p *planner) rowOutputs() {
	p.m.star = len(p.items) == 0
	for i, it := range p.items {
		col := it.GetColumn()
		name := it.GetAlias()
		if name == "" {
			name = col
		}
		o := output{kind: outColumn, name: name, text: itemText(it)}
		o.src = p.add(proto.Clone(it).(*yrdv1.SelectItem), partialCol{name: name, what: fmt.Sprintf("select item %d (%s)", i+1, o.text)})
		p.m.outs = append(p.m.outs, o)
	}
}

// aggregateOutput plans select item i of an aggregate query: a grouped
// column, or an aggregate read from its own partial column or, for an
// average, from a sum and a count helper.
func (p *planner) aggregateOutput(i int, it *yrdv1.SelectItem) (output, error) {
	o := output{text: itemText(it), name: it.GetAlias()}
	what := fmt.Sprintf("select item %d (%s)", i+1, o.text)
	c := partialCol{name: it.GetAlias(), what: what}
	switch x := it.GetItem().(type) {
	case *yrdv1.SelectItem_Column:
		g, ok := p.groupPos[x.Column]
		if !ok {
			return o, refuse("select item %d: column %s is selected but neither grouped nor aggregated", i+1, ident(x.Column))
		}
		o.kind, o.gpos = outColumn, g
		if c.name == "" {
			c.name = x.Column
		}
		if o.name == "" {
			o.name = x.Column
		}
	case *yrdv1.SelectItem_Aggregate:
		a := x.Aggregate
		if o.name == "" {
			o.name = defaultName(a)
		}
		o.agg, _ = querylang.AggregateOf(a.GetFunction()) // checkItems checked it
		o.kind, c.types = outKindOf(o.agg), partialTypes(o.agg)
		if o.kind == outAvg {
			o.src, o.cnt = p.averageParts(i, a.GetColumn(), what)
			return o, nil
		}
	}
	o.src = p.add(proto.Clone(it).(*yrdv1.SelectItem), c)
	return o, nil
}

// outKindOf is how the merge computes an aggregate's output.
func outKindOf(agg querylang.Aggregate) outKind {
	switch agg.Merge {
	case querylang.MergeAdd:
		if agg.Result == querylang.ResultCount {
			return outCount
		}
		return outSum
	case querylang.MergeMin:
		return outMin
	case querylang.MergeMax:
		return outMax
	}
	return outAvg
}

// partialTypes are the result types a partial column of agg may have,
// "|"-separated; "" for any.
func partialTypes(agg querylang.Aggregate) string {
	switch agg.Result {
	case querylang.ResultCount:
		return "BIGINT"
	case querylang.ResultSum:
		return "BIGINT|DOUBLE"
	}
	return ""
}

// The parts an average is merged from.
var (
	averageSum, _   = querylang.AggregateOf(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM)
	averageCount, _ = querylang.AggregateOf(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT)
)

// averageParts adds the sum and count helper columns of the average of
// column, select item i, and returns their positions.
func (p *planner) averageParts(i int, column, what string) (sum, cnt int) {
	n := strconv.Itoa(i + 1)
	sumAlias, cntAlias := reservedPrefix+"sum_"+n, reservedPrefix+"count_"+n
	sum = p.add(aggItem(averageSum.Function, column, sumAlias),
		partialCol{name: sumAlias, types: partialTypes(averageSum), what: what + " helper " + sumAlias})
	cnt = p.add(aggItem(averageCount.Function, column, cntAlias),
		partialCol{name: cntAlias, types: partialTypes(averageCount), what: what + " helper " + cntAlias})
	return sum, cnt
}

func aggItem(f yrdv1.AggregateFunction, column, alias string) *yrdv1.SelectItem {
	return &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: f, Column: column}}, Alias: alias}
}

// groupSources puts every group key column in the partial result: the
// requester's own item where there is one, else a hidden one.
func (p *planner) groupSources() {
	m := p.m
	m.groupSrc = make([]int, len(p.groupBy))
	for g, col := range p.groupBy {
		m.groupSrc[g] = -1
		for _, o := range m.outs {
			if o.kind == outColumn && o.gpos == g {
				m.groupSrc[g] = o.src
				break
			}
		}
		if m.groupSrc[g] < 0 {
			alias := reservedPrefix + "group_" + strconv.Itoa(g+1)
			m.groupSrc[g] = p.add(&yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: col}, Alias: alias},
				partialCol{name: alias, what: "GROUP BY column " + ident(col) + " helper " + alias})
		}
	}
	for i, o := range m.outs {
		if o.kind == outColumn {
			m.outs[i].src = m.groupSrc[o.gpos]
		}
	}
}

// sortKeys resolves the ORDER BY keys against the outputs, the group key
// or the partial row.
func (p *planner) sortKeys() error {
	for j, ob := range p.q.GetOrderBy() {
		k := sortKey{desc: ob.GetDescending()}
		switch x := ob.GetKey().(type) {
		case *yrdv1.OrderItem_SelectIndex:
			if x.SelectIndex < 0 || (!p.m.star && int(x.SelectIndex) >= len(p.items)) {
				return refuse("ORDER BY item %d: select position %d is out of range", j+1, int64(x.SelectIndex)+1)
			}
			k.idx = int(x.SelectIndex)
			if !p.m.aggregate && !p.m.star {
				k.idx = p.m.outs[k.idx].src
			}
		case *yrdv1.OrderItem_Column:
			if x.Column == "" {
				return refuse("ORDER BY item %d: empty column name", j+1)
			}
			if err := p.columnKey(j, x.Column, &k); err != nil {
				return err
			}
		default:
			return refuse("ORDER BY item %d is empty", j+1)
		}
		p.m.order = append(p.m.order, k)
	}
	return nil
}

// columnKey resolves ORDER BY item j, a column: a group key position, a
// name left for the owners' columns under SELECT *, or a partial column,
// hidden if the requester did not select it.
func (p *planner) columnKey(j int, col string, k *sortKey) error {
	switch {
	case p.m.aggregate:
		g, ok := p.groupPos[col]
		if !ok {
			return refuse("ORDER BY item %d: column %s is not grouped", j+1, ident(col))
		}
		k.fromKey, k.idx = true, g
	case p.m.star:
		k.col = col
	default:
		k.idx = slices.IndexFunc(p.sel, func(it *yrdv1.SelectItem) bool { return it.GetColumn() == col })
		if k.idx < 0 {
			alias := reservedPrefix + "order_" + strconv.Itoa(j+1)
			k.idx = p.add(&yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: col}, Alias: alias},
				partialCol{name: alias, what: "ORDER BY column " + ident(col) + " helper " + alias})
		}
	}
	return nil
}

// partialQuery is the query the owners run: the planned columns, the
// requester's filter and grouping, and for a row query its order and
// limit (an aggregate query's apply to the merged groups).
func (p *planner) partialQuery() *yrdv1.Query {
	q := p.q
	out := &yrdv1.Query{Select: p.sel, GroupBy: append([]string(nil), q.GetGroupBy()...)}
	if w := q.GetWhere(); w != nil {
		out.Where = proto.Clone(w).(*yrdv1.Expr)
	}
	if !p.m.aggregate {
		for _, ob := range q.GetOrderBy() {
			out.OrderBy = append(out.OrderBy, proto.Clone(ob).(*yrdv1.OrderItem))
		}
		out.Limit = q.GetLimit()
	}
	return out
}

// Partial returns the query an owner runs on its dataset of the family:
// the requester's query on datasetID, rewritten as the package doc
// describes. Each call returns a new message, which the caller may keep
// or change.
func (m *Merge) Partial(datasetID string) *yrdv1.Query {
	p := proto.Clone(m.partial).(*yrdv1.Query)
	p.Source = &yrdv1.Query_DatasetId{DatasetId: datasetID}
	return p
}

// Aggregate reports whether the query is an aggregate query (its groups
// are merged) rather than a row query (its rows are concatenated).
func (m *Merge) Aggregate() bool { return m.aggregate }
