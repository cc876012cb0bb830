package connector

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The engines, datasets and query shapes the sketch tests run, and how they
// compare a sketch plan with the plain plan.

var testSketch = &SketchOptions{Cells: 64, Seed: []byte("sketch seed of the connector tests")}

// sketchTarget is one engine serving one dataset.
type sketchTarget struct {
	name string
	d    *yrdv1.Dataset
	duck *DuckDB
	pg   *Postgres
	tbl  PGTable
}

func (s sketchTarget) engine() Engine {
	if s.duck != nil {
		return s.duck
	}
	return s.pg
}

// plan compiles q as the engine's Plan does, but on the sketch path the
// test asks for (fast: no distinct step), whatever the engine verified.
func (s sketchTarget) plan(t *testing.T, q *yrdv1.Query, dec *yrdv1.Decision, o Options, fast bool) Statement {
	t.Helper()
	o.personUnique, o.cellRows = fast, true
	var st Statement
	var err error
	if s.duck != nil {
		if o.Sketch != nil && needsNames(q) {
			if o.names, err = s.duck.resultNames(s.d, q, dec, o); err != nil {
				t.Fatal(err)
			}
		}
		st, err = compileStatement(duckDialect{}, s.d, q, dec, o)
	} else {
		st, err = compileStatement(pgDialect{table: s.tbl}, s.d, q, dec, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (s sketchTarget) run(t *testing.T, st Statement) ([]string, [][]any) {
	t.Helper()
	r, err := s.engine().Exec(context.Background(), st)
	if err != nil {
		t.Fatalf("%s: %v", st.SQL, err)
	}
	return drain(t, r)
}

// sketchPath tells a compiled query's sketch path from its SQL.
func sketchPath(sql string) string {
	switch {
	case strings.Contains(sql, `GROUPING("`+personAlias+`"`):
		return "distinct"
	case strings.Contains(sql, `"`+skCell+`"`):
		return "fast" // with grouping sets, or flat (decomposable aggregates)
	}
	return "none"
}

func pathName(fast bool) string {
	if fast {
		return "fast"
	}
	return "distinct"
}

// hospital is the sample hospital-visits dataset: several visits (rows)
// per patient.
func hospital(t testing.TB) *yrdv1.Dataset {
	t.Helper()
	for _, d := range sample.Datasets() {
		if d.GetId() == "nanjing.health.hospital-visits" {
			return d
		}
	}
	t.Fatal("no hospital-visits sample dataset")
	return nil
}

// hospitalTargets serve testRows hospital visits from a CSV in DuckDB and
// from a table (without any index) in PostgreSQL.
func hospitalTargets(t *testing.T) []sketchTarget {
	t.Helper()
	d := hospital(t)
	duck, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{writeCSV(t, t.TempDir(), d, testRows)}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { duck.Close() })
	var cols []string
	for _, c := range d.GetSchema().GetColumns() {
		typ, _ := pgCastType(c.GetType())
		cols = append(cols, pgx.Identifier{c.GetName()}.Sanitize()+" "+typ)
	}
	pgExec(t, "DROP TABLE IF EXISTS public.sketch_visits", "CREATE TABLE public.sketch_visits ("+strings.Join(cols, ", ")+")")
	var csv bytes.Buffer
	if err := synth.WriteCSV(&csv, d, testRows, testSeed); err != nil {
		t.Fatal(err)
	}
	pgCopyCSV(t, "public.sketch_visits", csv.Bytes())
	tbl := PGTable{DatasetID: d.GetId(), Schema: "public", Table: "sketch_visits"}
	p, err := OpenPostgres(context.Background(), pgDSN(t), []PGTable{tbl}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for _, e := range []Engine{duck, p} {
		if !e.Serving(d.GetId()) {
			t.Fatalf("hospital visits not served: %v", e.Problems(d.GetId()))
		}
	}
	return []sketchTarget{{name: "duckdb", d: d, duck: duck}, {name: "postgres", d: d, pg: p, tbl: tbl}}
}

func elderlyTargets(t *testing.T) []sketchTarget {
	t.Helper()
	duck, d := openElderly(t)
	p, tbl := openPGElderly(t)
	return []sketchTarget{{name: "duckdb", d: d, duck: duck}, {name: "postgres", d: d, pg: p, tbl: tbl}}
}

// checkSketchColumns checks the sketch columns of a result row: typed
// lists of equal length, cells ascending in range, counts positive and
// summing to the individuals.
func checkSketchColumns(t *testing.T, row []any, m int) (individuals int64, cells, counts []int64, xors []uint64) {
	t.Helper()
	n := len(row)
	individuals, ok1 := row[n-4].(int64)
	cells, ok2 := row[n-3].([]int64)
	counts, ok3 := row[n-2].([]int64)
	xors, ok4 := row[n-1].([]uint64)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatalf("sketch columns of types %T %T %T %T", row[n-4], row[n-3], row[n-2], row[n-1])
	}
	if len(cells) != len(counts) || len(cells) != len(xors) {
		t.Fatalf("sketch lists of lengths %d, %d, %d", len(cells), len(counts), len(xors))
	}
	var sum int64
	for i, c := range cells {
		if c < 0 || c >= int64(m) || (i > 0 && c <= cells[i-1]) {
			t.Fatalf("cells not ascending in [0,%d): %v", m, cells)
		}
		if counts[i] <= 0 {
			t.Fatalf("empty cell listed: %v", counts)
		}
		// The low bits of a cell's XOR are its index for an odd count.
		if counts[i]%2 == 1 && int64(xors[i]&uint64(m-1)) != c {
			t.Fatalf("cell %d: xor %x of an odd count has other low bits", c, xors[i])
		}
		sum += counts[i]
	}
	if sum != individuals {
		t.Fatalf("cell counts sum to %d, individuals %d", sum, individuals)
	}
	return individuals, cells, counts, xors
}

type sketchShape struct {
	name    string
	q       *yrdv1.Query
	dec     *yrdv1.Decision
	o       Options
	ordered bool // the ORDER BY is total: compare in order
	empty   bool // every group is under k
}

// compareWithPlain runs the plain plan (with Options.Individuals) and the
// sketch plan on one path and wants the same names, rows, values, types
// and order, and the same individuals per group.
func compareWithPlain(t *testing.T, tgt sketchTarget, sh sketchShape, fast bool) {
	t.Helper()
	plainO := sh.o
	plainO.Sketch, plainO.Individuals = nil, true
	pnames, prows := tgt.run(t, tgt.plan(t, sh.q, sh.dec, plainO, false))
	o := sh.o
	o.Sketch = testSketch
	st := tgt.plan(t, sh.q, sh.dec, o, fast)
	if got := sketchPath(st.SQL); got != pathName(fast) {
		t.Fatalf("sketch plan on the %s path: %s", pathName(fast), st.SQL)
	}
	snames, srows := tgt.run(t, st)
	n := len(pnames) - 1
	if want := append(slices.Clone(pnames[:n]), IndividualsColumn, SketchCellsColumn, SketchCountsColumn, SketchXorsColumn); !slices.Equal(snames, want) || !HasSketch(snames) {
		t.Fatalf("columns\n%q, want\n%q", snames, want)
	}
	if len(prows) == 0 != sh.empty {
		t.Fatalf("%d rows from the plain plan", len(prows))
	}
	if len(srows) != len(prows) {
		t.Fatalf("%d rows, plain plan %d", len(srows), len(prows))
	}
	trimmed := make([][]any, len(srows))
	for i, r := range srows {
		checkSketchColumns(t, r, testSketch.Cells)
		trimmed[i] = r[:n+1] // the select items and the individuals
	}
	w, g := sortedRows(prows), sortedRows(trimmed)
	if sh.ordered {
		w, g = renderRows(prows), renderRows(trimmed)
	}
	for i := range w {
		if w[i] != g[i] && !closeRows(w[i], g[i]) {
			t.Fatalf("row %d:\nplain  %s\nsketch %s", i, w[i], g[i])
		}
	}
}

// closeRows reports whether two rendered rows differ only in float64
// values, by at most 1e-12 relatively: a sum of non-integral doubles
// depends on the order rows are added in, which PostgreSQL's grouping
// sets (which may sort) and its plain hash aggregate differ in, as any
// two parallel runs of the plain plan may.
func closeRows(a, b string) bool {
	fa, fb := strings.Split(a, "|"), strings.Split(b, "|")
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i] == fb[i] {
			continue
		}
		x, ok1 := strings.CutPrefix(fa[i], "float64:")
		y, ok2 := strings.CutPrefix(fb[i], "float64:")
		if !ok1 || !ok2 {
			return false
		}
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if err1 != nil || err2 != nil || math.Abs(fx-fy) > 1e-12*math.Max(math.Abs(fx), math.Abs(fy)) {
			return false
		}
	}
	return true
}

func renderRows(rs [][]any) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = sortedRows([][]any{r})[0]
	}
	return out
}

func orderBy(desc bool, keys ...any) []*yrdv1.OrderItem {
	var out []*yrdv1.OrderItem
	for _, k := range keys {
		switch x := k.(type) {
		case int:
			out = append(out, &yrdv1.OrderItem{Key: &yrdv1.OrderItem_SelectIndex{SelectIndex: int32(x)}, Descending: desc})
		case string:
			out = append(out, &yrdv1.OrderItem{Key: &yrdv1.OrderItem_Column{Column: x}, Descending: desc})
		}
		desc = false // only the first key
	}
	return out
}

func intLit(v int64) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: v}}
}

const (
	fCount    = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT
	fDistinct = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT
	fSum      = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM
	fAvg      = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG
	fMin      = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN
	fMax      = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX
)

// elderlyShapes is the table of query shapes over the elderly dataset,
// one entry per shape; long because it is the table.
func elderlyShapes(d *yrdv1.Dataset) []sketchShape {
	q := func(sel []*yrdv1.SelectItem, group []string, where *yrdv1.Expr, order []*yrdv1.OrderItem, limit uint64) *yrdv1.Query {
		x := onDataset(d)
		x.Select, x.GroupBy, x.Where, x.OrderBy, x.Limit = sel, group, where, order, limit
		return x
	}
	dec := func(k uint32, treat map[string]yrdv1.ColumnTreatment) *yrdv1.Decision {
		x := decision(d, aggs, treat)
		x.MinGroupSize = k
		return x
	}
	older := &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: []*yrdv1.Expr{
		{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: "age", Low: intLit(70), High: intLit(90)}}},
		{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "living_alone", Op: yrdv1.CompareOp_COMPARE_OP_EQ,
			Value: &yrdv1.Literal{Value: &yrdv1.Literal_BoolValue{BoolValue: true}}}}},
	}}}}
	return []sketchShape{
		{name: "unaliased count and avg, order by column",
			q:   q([]*yrdv1.SelectItem{col("district"), agg(fCount, "", ""), agg(fAvg, "age", "")}, []string{"district"}, nil, orderBy(false, "district"), 0),
			dec: dec(10, nil), ordered: true},
		{name: "NULL group keys, k drops groups, order by index desc",
			q: q([]*yrdv1.SelectItem{col("district"), col("care_level"), agg(fCount, "", "n"), agg(fSum, "age", "s")},
				[]string{"district", "care_level"}, nil, orderBy(true, 2, 0, 1), 0),
			dec: dec(100, nil), ordered: true},
		{name: "filter, count with NULLs, min and max",
			q: q([]*yrdv1.SelectItem{col("gender"), agg(fCount, "care_level", "with_care"), agg(fMin, "age", ""), agg(fMax, "age", "oldest")},
				[]string{"gender"}, older, orderBy(false, "gender"), 0),
			dec: dec(10, nil), ordered: true},
		{name: "sum bound, unaliased",
			q:   q([]*yrdv1.SelectItem{col("district"), agg(fSum, "age", ""), agg(fAvg, "age", "")}, []string{"district"}, nil, nil, 0),
			dec: dec(10, nil), o: Options{SumBound: 70}},
		{name: "count distinct, order by column desc, limit",
			q: q([]*yrdv1.SelectItem{col("district"), agg(fDistinct, "care_level", "levels"), agg(fDistinct, "person_id", "")},
				[]string{"district"}, nil, orderBy(true, "district"), 5),
			dec: dec(10, nil), ordered: true},
		{name: "count distinct: of a group column, twice the same, two columns",
			q: q([]*yrdv1.SelectItem{col("district"), agg(fDistinct, "district", "d"), agg(fDistinct, "care_level", "c1"), agg(fCount, "", "n"),
				agg(fDistinct, "gender", ""), agg(fDistinct, "care_level", "c2")}, []string{"district"}, older, orderBy(false, 0), 0),
			dec: dec(10, nil), ordered: true},
		{name: "decomposable (flat fast path), no group, unaliased count",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "", ""), agg(fMin, "age", "youngest")}, nil, older, nil, 0),
			dec: dec(10, nil), ordered: true},
		{name: "decomposable (flat fast path), k drops groups, NULL keys",
			q: q([]*yrdv1.SelectItem{col("district"), col("care_level"), agg(fCount, "", "n"), agg(fCount, "gender", ""), agg(fMax, "age", "")},
				[]string{"district", "care_level"}, nil, orderBy(false, 0, 1), 0),
			dec: dec(100, nil), ordered: true},
		{name: "a total of counts (per-cell rows folded), with NULLs, filtered",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "", ""), agg(fCount, "care_level", "with_care"), agg(fCount, "", "n")}, nil, older, nil, 0),
			dec: dec(10, nil), ordered: true},
		{name: "a total of counts, ordered and limited",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "gender", "")}, nil, nil, orderBy(true, 0), 1),
			dec: dec(10, nil), ordered: true},
		{name: "a total of counts under k",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "", "n")}, nil, older, nil, 0),
			dec: dec(testRows+1, nil), empty: true},
		{name: "a total of counts over no rows",
			q: q([]*yrdv1.SelectItem{agg(fCount, "", "n")}, nil,
				&yrdv1.Expr{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: "age", Low: intLit(200), High: intLit(300)}}}, nil, 0),
			dec: dec(1, nil), empty: true},
		{name: "no group",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "", ""), agg(fAvg, "age", "a"), agg(fSum, "age", ""), agg(fDistinct, "care_level", "")}, nil, nil, nil, 0),
			dec: dec(10, nil), ordered: true},
		{name: "order by a group column not selected, limit",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "", "n")}, []string{"district", "gender"}, nil, orderBy(true, "gender", "district"), 7),
			dec: dec(10, nil), ordered: true},
		{name: "pseudonymised and masked group keys",
			q: q([]*yrdv1.SelectItem{col("district"), col("gender"), agg(fCount, "", "n"), agg(fDistinct, "person_id", "people")},
				[]string{"district", "gender"}, nil, orderBy(false, 0, 1), 0),
			dec: dec(10, map[string]yrdv1.ColumnTreatment{"district": pseudo, "gender": masked, "person_id": pseudo}),
			o:   Options{PseudonymKey: []byte("grant key for the sketch tests")}, ordered: true},
		{name: "the same unaliased item twice",
			q:   q([]*yrdv1.SelectItem{agg(fCount, "", ""), col("district"), agg(fCount, "", "")}, []string{"district"}, nil, nil, 0),
			dec: dec(10, nil)},
		{name: "individuals asked for too",
			q:   q([]*yrdv1.SelectItem{col("care_level"), agg(fCount, "", "n")}, []string{"care_level"}, nil, nil, 0),
			dec: dec(10, nil), o: Options{Individuals: true}},
		{name: "every group under k",
			q:   q([]*yrdv1.SelectItem{col("district"), agg(fCount, "", "n")}, []string{"district"}, nil, nil, 0),
			dec: dec(testRows+1, nil), empty: true},
	}
}

func hospitalShapes(d *yrdv1.Dataset) []sketchShape {
	q := func(sel []*yrdv1.SelectItem, group []string, where *yrdv1.Expr, order []*yrdv1.OrderItem) *yrdv1.Query {
		x := onDataset(d)
		x.Select, x.GroupBy, x.Where, x.OrderBy = sel, group, where, order
		return x
	}
	dec := decision(d, aggs, nil)
	dec.MinGroupSize = 10
	adults := &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "age", Op: yrdv1.CompareOp_COMPARE_OP_GE, Value: intLit(60)}}}
	return []sketchShape{
		{name: "visits and patients per department",
			q: q([]*yrdv1.SelectItem{col("department"), agg(fCount, "", ""), agg(fDistinct, "patient_id", "patients"), agg(fSum, "cost", ""), agg(fAvg, "cost", "")},
				[]string{"department"}, nil, orderBy(false, "department")),
			dec: dec, ordered: true},
		{name: "filtered, two keys, dates",
			q: q([]*yrdv1.SelectItem{col("hospital_code"), col("gender"), agg(fCount, "", "n"), agg(fMin, "visit_date", "first"), agg(fMax, "age", "")},
				[]string{"hospital_code", "gender"}, adults, orderBy(true, 2, 0, 1)),
			dec: dec, ordered: true},
		{name: "sum bound",
			q:   q([]*yrdv1.SelectItem{col("diagnosis"), agg(fAvg, "age", ""), agg(fSum, "cost", "c")}, []string{"diagnosis"}, nil, nil),
			dec: dec, o: Options{SumBound: 80}},
	}
}
