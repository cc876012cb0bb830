package merge_test

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/merge"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const familySrc = "family:yrd.elderly-population.v1"

// parse parses SQL written with FROM fam, which stands for the family.
func parse(t testing.TB, sql string) *yrdv1.Query {
	t.Helper()
	q, err := sqlq.Parse(strings.Replace(sql, "FROM fam", "FROM "+familySrc, 1))
	if err != nil {
		t.Fatalf("parse %q: %v", sql, err)
	}
	return q
}

func plan(t testing.TB, sql string) *merge.Merge {
	t.Helper()
	m, err := merge.Plan(parse(t, sql))
	if err != nil {
		t.Fatalf("plan %q: %v", sql, err)
	}
	return m
}

func datasetOf(city string) string { return city + ".civil-affairs.elderly-population" }

func vs(s string) *yrdv1.Value  { return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: s}} }
func vi(n int64) *yrdv1.Value   { return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: n}} }
func vf(f float64) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: f}} }
func vb(b bool) *yrdv1.Value    { return &yrdv1.Value{Kind: &yrdv1.Value_BoolValue{BoolValue: b}} }
func vts(s string) *yrdv1.Value {
	return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: s}}
}
func vd(s string) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: s}} }
func null() *yrdv1.Value       { return &yrdv1.Value{} }

func row(vals ...*yrdv1.Value) *yrdv1.Row { return &yrdv1.Row{Values: vals} }

func rc(name, typ string) *yrdv1.ResultColumn {
	return &yrdv1.ResultColumn{Name: name, Type: typ, Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW}
}

// table is one owner's raw rows of the elderly population schema (or any
// other), with the result type of each column.
type table struct {
	cols  []string
	types []string
	rows  [][]*yrdv1.Value
}

var (
	elderlyCols  = []string{"person_id", "district", "age", "gender", "living_alone", "care_level"}
	elderlyTypes = []string{"VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "BOOLEAN", "BIGINT"}
)

func (tb table) col(t testing.TB, name string) int {
	t.Helper()
	i := slices.Index(tb.cols, name)
	if i < 0 {
		t.Fatalf("no column %q", name)
	}
	return i
}

func union(tabs ...table) table {
	u := table{cols: tabs[0].cols, types: tabs[0].types}
	for _, tb := range tabs {
		u.rows = append(u.rows, tb.rows...)
	}
	return u
}

// owner says how a simulated owner runs its partial query.
type owner struct {
	k  int  // suppress groups of fewer rows (each row is one person); 0: none
	pg bool // name unaliased aggregates as PostgreSQL does ("sum")
}

// eval is a small reference evaluator: it answers q (WHERE not
// supported) over tb by brute force, as the connector's SQL would, with
// the package's documented ordering (NULLs last both ways; aggregate
// ties in group key order; row ties in input order).
func eval(t testing.TB, q *yrdv1.Query, tb table, o owner) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
	t.Helper()
	if q.GetWhere() != nil {
		t.Fatal("eval: WHERE is not supported")
	}
	items := q.GetSelect()
	if len(items) == 0 {
		for _, c := range tb.cols {
			items = append(items, &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: c}})
		}
	}
	cols, grouped := evalColumns(t, items, tb, o)
	var recs []evalRec
	if grouped || len(q.GetGroupBy()) > 0 {
		recs = evalGroups(t, q, items, tb, o)
	} else {
		recs = evalRows(t, items, tb)
	}
	evalOrder(t, q, tb, recs)
	if l := q.GetLimit(); l > 0 && uint64(len(recs)) > l {
		recs = recs[:l]
	}
	rows := make([]*yrdv1.Row, len(recs))
	for i, r := range recs {
		rows[i] = row(r.vals...)
	}
	return cols, rows
}

// evalRec is one result row of eval, before ORDER BY and LIMIT.
type evalRec struct {
	vals []*yrdv1.Value
	src  []*yrdv1.Value // the raw row (row queries) or the group key row
	key  []*yrdv1.Value // group key values
}

// evalColumns is the result columns of items over tb as o's engine names
// them, and whether an item is an aggregate (the query is grouped).
func evalColumns(t testing.TB, items []*yrdv1.SelectItem, tb table, o owner) ([]*yrdv1.ResultColumn, bool) {
	grouped := false
	var cols []*yrdv1.ResultColumn
	for _, it := range items {
		if a := it.GetAggregate(); a != nil {
			grouped = true
			typ := "BIGINT"
			switch a.GetFunction() {
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
				typ = "DOUBLE"
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
				typ = tb.types[tb.col(t, a.GetColumn())]
			}
			name := it.GetAlias()
			if name == "" {
				fn := strings.ToLower(strings.TrimPrefix(a.GetFunction().String(), "AGGREGATE_FUNCTION_"))
				switch {
				case o.pg:
					name = fn
				case a.GetColumn() == "":
					name = "count_star()"
				default:
					name = fn + "(" + a.GetColumn() + ")"
				}
			}
			cols = append(cols, rc(name, typ))
			continue
		}
		name := cmp.Or(it.GetAlias(), it.GetColumn())
		cols = append(cols, rc(name, tb.types[tb.col(t, it.GetColumn())]))
	}
	return cols, grouped
}

// evalRows is a row query's records: items of every row of tb, in order.
func evalRows(t testing.TB, items []*yrdv1.SelectItem, tb table) []evalRec {
	var recs []evalRec
	for _, r := range tb.rows {
		vals := make([]*yrdv1.Value, len(items))
		for i, it := range items {
			vals[i] = r[tb.col(t, it.GetColumn())]
		}
		recs = append(recs, evalRec{vals: vals, src: r})
	}
	return recs
}

// evalGroups is a grouped query's records: one per group of tb by q's
// GROUP BY that has at least o.k rows (one group of every row when there
// is no GROUP BY), in group key order.
func evalGroups(t testing.TB, q *yrdv1.Query, items []*yrdv1.SelectItem, tb table, o owner) []evalRec {
	var gi []int
	for _, g := range q.GetGroupBy() {
		if i := tb.col(t, g); !slices.Contains(gi, i) {
			gi = append(gi, i)
		}
	}
	type group struct {
		key  []*yrdv1.Value
		rows [][]*yrdv1.Value
	}
	groups := map[string]*group{}
	var order []string
	if len(gi) == 0 {
		groups[""] = &group{}
		order = append(order, "")
	}
	for _, r := range tb.rows {
		var key []*yrdv1.Value
		var ks []string
		for _, i := range gi {
			key = append(key, r[i])
			ks = append(ks, fmt.Sprintf("%T:%v", r[i].GetKind(), r[i].GetKind()))
		}
		k := strings.Join(ks, "|")
		if groups[k] == nil {
			groups[k] = &group{key: key}
			order = append(order, k)
		}
		groups[k].rows = append(groups[k].rows, r)
	}
	var recs []evalRec
	for _, k := range order {
		g := groups[k]
		if o.k > 0 && len(g.rows) < o.k {
			continue
		}
		vals := make([]*yrdv1.Value, len(items))
		for i, it := range items {
			a := it.GetAggregate()
			if a == nil {
				vals[i] = g.key[slices.Index(gi, tb.col(t, it.GetColumn()))]
				continue
			}
			vals[i] = aggregate(t, a, tb, g.rows)
		}
		src := make([]*yrdv1.Value, len(tb.cols))
		for j, i := range gi {
			src[i] = g.key[j]
		}
		recs = append(recs, evalRec{vals: vals, src: src, key: g.key})
	}
	slices.SortStableFunc(recs, func(a, b evalRec) int {
		for i := range a.key {
			if c := cmpNullsLast(a.key[i], b.key[i], false); c != 0 {
				return c
			}
		}
		return 0
	})
	return recs
}

// evalOrder sorts recs by q's ORDER BY, stably (ties keep their order).
func evalOrder(t testing.TB, q *yrdv1.Query, tb table, recs []evalRec) {
	slices.SortStableFunc(recs, func(a, b evalRec) int {
		for _, ob := range q.GetOrderBy() {
			var x, y *yrdv1.Value
			if c, ok := ob.GetKey().(*yrdv1.OrderItem_Column); ok {
				i := tb.col(t, c.Column)
				x, y = a.src[i], b.src[i]
			} else {
				x, y = a.vals[ob.GetSelectIndex()], b.vals[ob.GetSelectIndex()]
			}
			if c := cmpNullsLast(x, y, ob.GetDescending()); c != 0 {
				return c
			}
		}
		return 0
	})
}

func aggregate(t testing.TB, a *yrdv1.AggregateCall, tb table, rows [][]*yrdv1.Value) *yrdv1.Value {
	t.Helper()
	if a.GetColumn() == "" {
		return vi(int64(len(rows)))
	}
	i := tb.col(t, a.GetColumn())
	var n int64
	isum := new(big.Int)
	var fsum float64
	var best *yrdv1.Value
	for _, r := range rows {
		v := r[i]
		if v.GetKind() == nil {
			continue
		}
		n++
		switch x := v.GetKind().(type) {
		case *yrdv1.Value_IntValue:
			isum.Add(isum, big.NewInt(x.IntValue))
		case *yrdv1.Value_DoubleValue:
			fsum += x.DoubleValue
		}
		c := 0
		if best != nil {
			c = cmpNullsLast(v, best, false)
		}
		if best == nil || a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN && c < 0 ||
			a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX && c > 0 {
			best = v
		}
	}
	isInt := tb.types[i] == "BIGINT"
	switch a.GetFunction() {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT:
		return vi(n)
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
		switch {
		case n == 0:
			return null()
		case isInt:
			if !isum.IsInt64() {
				t.Fatalf("eval: sum %v overflows", isum)
			}
			return vi(isum.Int64())
		}
		return vf(fsum)
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
		if n == 0 {
			return null()
		}
		if isInt {
			f, _ := new(big.Float).SetInt(isum).Float64()
			return vf(f / float64(n))
		}
		return vf(fsum / float64(n))
	}
	if best == nil {
		return null()
	}
	return best
}

// cmpNullsLast is the reference order: NULLs last either way; values of
// one kind by value.
func cmpNullsLast(a, b *yrdv1.Value, desc bool) int {
	an, bn := a.GetKind() == nil, b.GetKind() == nil
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	var c int
	switch x := a.GetKind().(type) {
	case *yrdv1.Value_IntValue:
		c = cmp.Compare(x.IntValue, b.GetIntValue())
	case *yrdv1.Value_DoubleValue:
		c = cmp.Compare(x.DoubleValue, b.GetDoubleValue())
	case *yrdv1.Value_StringValue:
		c = strings.Compare(x.StringValue, b.GetStringValue())
	case *yrdv1.Value_BoolValue:
		c = cmp.Compare(boolInt(x.BoolValue), boolInt(b.GetBoolValue()))
	case *yrdv1.Value_DateValue:
		c = strings.Compare(x.DateValue, b.GetDateValue())
	case *yrdv1.Value_TimestampValue:
		c = strings.Compare(x.TimestampValue, b.GetTimestampValue())
	}
	if desc {
		return -c
	}
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runFamily runs q over the cities' tables: each owner evaluates its
// partial query (aggregate partials' rows shuffled, as an engine's group
// order is arbitrary), the merge adds them in the given order, and
// returns the result.
func runFamily(t testing.TB, q *yrdv1.Query, cities []string, tabs map[string]table, owners map[string]owner) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
	t.Helper()
	m, err := merge.Plan(q)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	for n, city := range cities {
		cols, rows := eval(t, m.Partial(datasetOf(city)), tabs[city], owners[city])
		if m.Aggregate() {
			// A fixed, city-dependent shuffle.
			for i := len(rows) - 1; i > 0; i-- {
				j := (i*7 + n*3 + 1) % (i + 1)
				rows[i], rows[j] = rows[j], rows[i]
			}
		}
		if err := m.Add(city, cols, rows); err != nil {
			t.Fatalf("add %s: %v", city, err)
		}
	}
	cols, rows, err := m.Result()
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	return cols, rows
}

// onDataset is q on one dataset instead of the family.
func onDataset(q *yrdv1.Query, id string) *yrdv1.Query {
	q = proto.Clone(q).(*yrdv1.Query)
	q.Source = &yrdv1.Query_DatasetId{DatasetId: id}
	return q
}

// sameResult reports how got differs from want, doubles compared to a
// relative 1e-12.
func sameResult(gotCols, wantCols []*yrdv1.ResultColumn, got, want []*yrdv1.Row) string {
	if len(gotCols) != len(wantCols) {
		return fmt.Sprintf("columns %s, want %s", colsText(gotCols), colsText(wantCols))
	}
	for i := range gotCols {
		if gotCols[i].GetName() != wantCols[i].GetName() || gotCols[i].GetType() != wantCols[i].GetType() {
			return fmt.Sprintf("columns %s, want %s", colsText(gotCols), colsText(wantCols))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d:\n got %s\nwant %s", len(got), len(want), rowsText(got), rowsText(want))
	}
	for i := range got {
		if !sameRow(got[i], want[i]) {
			return fmt.Sprintf("row %d is %s, want %s\n got %s\nwant %s", i+1, rowText(got[i]), rowText(want[i]), rowsText(got), rowsText(want))
		}
	}
	return ""
}

func sameRow(a, b *yrdv1.Row) bool {
	if len(a.GetValues()) != len(b.GetValues()) {
		return false
	}
	for j, x := range a.GetValues() {
		y := b.GetValues()[j]
		fx, okx := x.GetKind().(*yrdv1.Value_DoubleValue)
		fy, oky := y.GetKind().(*yrdv1.Value_DoubleValue)
		if okx && oky {
			d := math.Abs(fx.DoubleValue - fy.DoubleValue)
			if d > 1e-12*math.Max(math.Abs(fx.DoubleValue), math.Abs(fy.DoubleValue)) {
				return false
			}
			continue
		}
		if !proto.Equal(x, y) {
			return false
		}
	}
	return true
}

func colsText(cols []*yrdv1.ResultColumn) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c.GetName() + " " + c.GetType()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func rowText(r *yrdv1.Row) string {
	parts := make([]string, len(r.GetValues()))
	for i, v := range r.GetValues() {
		switch x := v.GetKind().(type) {
		case nil:
			parts[i] = "NULL"
		case *yrdv1.Value_StringValue:
			parts[i] = "'" + x.StringValue + "'"
		case *yrdv1.Value_IntValue:
			parts[i] = fmt.Sprint(x.IntValue)
		case *yrdv1.Value_DoubleValue:
			parts[i] = fmt.Sprint(x.DoubleValue)
		case *yrdv1.Value_BoolValue:
			parts[i] = fmt.Sprint(x.BoolValue)
		case *yrdv1.Value_DateValue:
			parts[i] = "DATE " + x.DateValue
		case *yrdv1.Value_TimestampValue:
			parts[i] = "TS " + x.TimestampValue
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func rowsText(rows []*yrdv1.Row) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = rowText(r)
	}
	return strings.Join(parts, " ")
}

// rowsOf builds rows from Go values: string, int, float64, bool, nil.
func rowsOf(t testing.TB, data ...[]any) []*yrdv1.Row {
	t.Helper()
	rows := make([]*yrdv1.Row, len(data))
	for i, d := range data {
		vals := make([]*yrdv1.Value, len(d))
		for j, x := range d {
			vals[j] = value(t, x)
		}
		rows[i] = row(vals...)
	}
	return rows
}

func value(t testing.TB, x any) *yrdv1.Value {
	t.Helper()
	switch x := x.(type) {
	case nil:
		return null()
	case string:
		return vs(x)
	case int:
		return vi(int64(x))
	case int64:
		return vi(x)
	case float64:
		return vf(x)
	case bool:
		return vb(x)
	case *yrdv1.Value:
		return x
	}
	t.Fatalf("value of type %T", x)
	return nil
}

// person is one raw row of the elderly schema; nil fields are NULL.
func person(id, district string, age any, gender string, alone any, care any) []*yrdv1.Value {
	return []*yrdv1.Value{vs(id), vs(district), valueOf(age), vs(gender), valueOf(alone), valueOf(care)}
}

func valueOf(x any) *yrdv1.Value {
	switch x := x.(type) {
	case int:
		return vi(int64(x))
	case bool:
		return vb(x)
	}
	return null()
}
