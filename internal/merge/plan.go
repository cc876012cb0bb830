package merge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

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
	src  int    // partial column: the item's own, or avg's sum helper
	cnt  int    // avg: the count helper's partial column
	gpos int    // aggregate queries, outColumn: position in the group key
	name string // final name; "" under SELECT * (the partial's)
	text string // the item as SQL, for messages
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

func plan(q *yrdv1.Query, single bool) (*Merge, error) {
	m := &Merge{single: single, limit: q.GetLimit(), seen: map[string]bool{}}

	var groupBy []string
	groupPos := map[string]int{}
	for _, g := range q.GetGroupBy() {
		if g == "" {
			return nil, refuse("empty GROUP BY column")
		}
		if _, dup := groupPos[g]; !dup {
			groupPos[g] = len(groupBy)
			groupBy = append(groupBy, g)
		}
	}
	items := q.GetSelect()
	for i, it := range items {
		// A single-dataset plan takes the parts of a family query as they
		// are (an owner's part carries the home node's helper aliases).
		if a := it.GetAlias(); !single && len(a) >= len(reservedPrefix) && strings.EqualFold(a[:len(reservedPrefix)], reservedPrefix) {
			return nil, refuse("select item %d: alias %q: names beginning with %s are reserved for the merge's helper columns", i+1, a, reservedPrefix)
		}
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			if x.Column == "" {
				return nil, refuse("select item %d: empty column name", i+1)
			}
		case *yrdv1.SelectItem_Aggregate:
			m.aggregate = true
			if single && x.Aggregate.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT {
				break
			}
			if err := checkAggregate(i, x.Aggregate); err != nil {
				return nil, err
			}
		default:
			return nil, refuse("select item %d is empty", i+1)
		}
	}
	if len(groupBy) > 0 {
		m.aggregate = true
	}
	if m.aggregate && len(items) == 0 {
		return nil, refuse("SELECT * with GROUP BY: select the grouped columns and aggregates")
	}

	var sel []*yrdv1.SelectItem
	add := func(it *yrdv1.SelectItem, c partialCol) int {
		sel = append(sel, it)
		m.expect = append(m.expect, c)
		return len(sel) - 1
	}
	if m.aggregate {
		for i, it := range items {
			o := output{text: itemText(it), name: it.GetAlias()}
			what := fmt.Sprintf("select item %d (%s)", i+1, o.text)
			c := partialCol{name: it.GetAlias(), what: what}
			switch x := it.GetItem().(type) {
			case *yrdv1.SelectItem_Column:
				g, ok := groupPos[x.Column]
				if !ok {
					return nil, refuse("select item %d: column %s is selected but neither grouped nor aggregated", i+1, ident(x.Column))
				}
				o.kind, o.gpos = outColumn, g
				if c.name == "" {
					c.name = x.Column
				}
				if o.name == "" {
					o.name = x.Column
				}
				o.src = add(proto.Clone(it).(*yrdv1.SelectItem), c)
			case *yrdv1.SelectItem_Aggregate:
				a := x.Aggregate
				if o.name == "" {
					o.name = defaultName(a)
				}
				switch a.GetFunction() {
				case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
					// count(DISTINCT) only in a single-dataset plan (checkAggregate).
					o.kind, c.types = outCount, "BIGINT"
				case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
					o.kind, c.types = outSum, "BIGINT|DOUBLE"
				case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN:
					o.kind = outMin
				case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
					o.kind = outMax
				case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
					o.kind = outAvg
					n := strconv.Itoa(i + 1)
					sum, cnt := reservedPrefix+"sum_"+n, reservedPrefix+"count_"+n
					o.src = add(aggItem(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, a.GetColumn(), sum),
						partialCol{name: sum, types: "BIGINT|DOUBLE", what: what + " helper " + sum})
					o.cnt = add(aggItem(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, a.GetColumn(), cnt),
						partialCol{name: cnt, types: "BIGINT", what: what + " helper " + cnt})
				}
				if o.kind != outAvg {
					o.src = add(proto.Clone(it).(*yrdv1.SelectItem), c)
				}
			}
			m.outs = append(m.outs, o)
		}
		// Every group key column is in the partial result: the
		// requester's own item where there is one, else a hidden one.
		m.groupSrc = make([]int, len(groupBy))
		for g, col := range groupBy {
			m.groupSrc[g] = -1
			for _, o := range m.outs {
				if o.kind == outColumn && o.gpos == g {
					m.groupSrc[g] = o.src
					break
				}
			}
			if m.groupSrc[g] < 0 {
				alias := reservedPrefix + "group_" + strconv.Itoa(g+1)
				m.groupSrc[g] = add(&yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: col}, Alias: alias},
					partialCol{name: alias, what: "GROUP BY column " + ident(col) + " helper " + alias})
			}
		}
		for i, o := range m.outs {
			if o.kind == outColumn {
				m.outs[i].src = m.groupSrc[o.gpos]
			}
		}
	} else {
		m.star = len(items) == 0
		for i, it := range items {
			col := it.GetColumn()
			name := it.GetAlias()
			if name == "" {
				name = col
			}
			o := output{kind: outColumn, name: name, text: itemText(it)}
			o.src = add(proto.Clone(it).(*yrdv1.SelectItem), partialCol{name: name, what: fmt.Sprintf("select item %d (%s)", i+1, o.text)})
			m.outs = append(m.outs, o)
		}
	}

	for j, ob := range q.GetOrderBy() {
		k := sortKey{desc: ob.GetDescending()}
		switch x := ob.GetKey().(type) {
		case *yrdv1.OrderItem_SelectIndex:
			if x.SelectIndex < 0 || (!m.star && int(x.SelectIndex) >= len(items)) {
				return nil, refuse("ORDER BY item %d: select position %d is out of range", j+1, int64(x.SelectIndex)+1)
			}
			k.idx = int(x.SelectIndex)
			if !m.aggregate && !m.star {
				k.idx = m.outs[k.idx].src
			}
		case *yrdv1.OrderItem_Column:
			if x.Column == "" {
				return nil, refuse("ORDER BY item %d: empty column name", j+1)
			}
			switch {
			case m.aggregate:
				g, ok := groupPos[x.Column]
				if !ok {
					return nil, refuse("ORDER BY item %d: column %s is not grouped", j+1, ident(x.Column))
				}
				k.fromKey, k.idx = true, g
			case m.star:
				k.col = x.Column
			default:
				k.idx = -1
				for i, it := range sel {
					if it.GetColumn() == x.Column {
						k.idx = i
						break
					}
				}
				if k.idx < 0 {
					alias := reservedPrefix + "order_" + strconv.Itoa(j+1)
					k.idx = add(&yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: x.Column}, Alias: alias},
						partialCol{name: alias, what: "ORDER BY column " + ident(x.Column) + " helper " + alias})
				}
			}
		default:
			return nil, refuse("ORDER BY item %d is empty", j+1)
		}
		m.order = append(m.order, k)
	}

	p := &yrdv1.Query{Select: sel, GroupBy: append([]string(nil), q.GetGroupBy()...)}
	if w := q.GetWhere(); w != nil {
		p.Where = proto.Clone(w).(*yrdv1.Expr)
	}
	if !m.aggregate {
		for _, ob := range q.GetOrderBy() {
			p.OrderBy = append(p.OrderBy, proto.Clone(ob).(*yrdv1.OrderItem))
		}
		p.Limit = q.GetLimit()
	}
	m.partial = p
	return m, nil
}

// checkAggregate refuses what cannot be merged or is no aggregate at all.
func checkAggregate(i int, a *yrdv1.AggregateCall) error {
	switch a.GetFunction() {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
		return refuse("select item %d: %s cannot be merged exactly across cities (one value may be counted by several cities); query one city's dataset instead",
			i+1, aggText(a))
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT:
		return nil
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG,
		yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		if a.GetColumn() == "" {
			return refuse("select item %d: %s needs a column", i+1, funcName(a.GetFunction()))
		}
		return nil
	}
	return refuse("select item %d: unknown aggregate function %v", i+1, a.GetFunction())
}

func aggItem(f yrdv1.AggregateFunction, column, alias string) *yrdv1.SelectItem {
	return &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: f, Column: column}}, Alias: alias}
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
