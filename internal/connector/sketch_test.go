package connector

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

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

// TestSketchPlanSameResultsAsPlain: for every query shape, on both
// engines and both sketch paths, the sketch plan returns the plain plan's
// result exactly (names, values, types, order), then the individuals the
// plain plan counts, then the sketch. The hospital visits have several
// rows per patient, so only the distinct path is correct for them.
func TestSketchPlanSameResultsAsPlain(t *testing.T) {
	for _, tgt := range elderlyTargets(t) {
		for _, sh := range elderlyShapes(tgt.d) {
			for _, fast := range []bool{true, false} {
				t.Run(tgt.name+"/elderly/"+pathName(fast)+"/"+sh.name, func(t *testing.T) { compareWithPlain(t, tgt, sh, fast) })
			}
		}
	}
	for _, tgt := range hospitalTargets(t) {
		for _, sh := range hospitalShapes(tgt.d) {
			t.Run(tgt.name+"/hospital/distinct/"+sh.name, func(t *testing.T) { compareWithPlain(t, tgt, sh, false) })
		}
	}
}

// personHashes are the distinct (group, keyed hash) pairs of the rows with
// a person key and age >= minAge, straight from the engine's hash
// function, grouped by group key (as fmt.Sprint renders it).
func personHashes(t *testing.T, tgt sketchTarget, group, person string, minAge int64) map[string]map[uint64]bool {
	t.Helper()
	g, p := quoteIdent(group), quoteIdent(person)
	var sql string
	var args []any
	if tgt.duck != nil {
		sql = "SELECT DISTINCT " + g + ", hash(? || CAST(" + p + " AS VARCHAR)) FROM " + quoteIdent(tgt.d.GetId()) + " WHERE " + p + " IS NOT NULL AND age >= ?"
		args = []any{hex.EncodeToString(testSketch.Seed), minAge}
	} else {
		sql = "SELECT DISTINCT " + g + ", hashtextextended(CAST(" + p + " AS text), $1) FROM " + pgTableName(tgt.tbl) + " WHERE " + p + " IS NOT NULL AND age >= $2"
		args = []any{pgSketchSeed(testSketch.Seed), minAge}
	}
	_, rows := tgt.run(t, Statement{SQL: sql, Args: args})
	out := map[string]map[uint64]bool{}
	for _, r := range rows {
		var h uint64
		switch x := r[1].(type) {
		case uint64:
			h = x
		case int64:
			h = uint64(x)
		default:
			t.Fatalf("hash of type %T", r[1])
		}
		k := fmt.Sprint(r[0])
		if out[k] == nil {
			out[k] = map[uint64]bool{}
		}
		out[k][h] = true
	}
	return out
}

// TestSketchCellsAreThePersons: each released group's individuals and
// cells are those of its distinct persons, built here from the engine's
// own hash of every (group, person) pair; every group of at least k
// persons is released and no other. Both engines, both paths (the
// distinct one only for the hospital visits, where patients recur).
func TestSketchCellsAreThePersons(t *testing.T) {
	type tc struct {
		tgt            sketchTarget
		group, person  string
		minAge         int64
		fast           bool
		wantRecurrence bool
	}
	var cases []tc
	for _, tgt := range elderlyTargets(t) {
		cases = append(cases, tc{tgt, "district", "person_id", 75, true, false}, tc{tgt, "district", "person_id", 75, false, false})
	}
	for _, tgt := range hospitalTargets(t) {
		cases = append(cases, tc{tgt, "department", "patient_id", 60, false, true})
	}
	for _, c := range cases {
		t.Run(c.tgt.name+"/"+c.tgt.d.GetId()+"/"+pathName(c.fast), func(t *testing.T) {
			want := personHashes(t, c.tgt, c.group, c.person, c.minAge)
			var sizes []int
			for _, ps := range want {
				sizes = append(sizes, len(ps))
			}
			slices.Sort(sizes)
			k := sizes[len(sizes)/2] // about half the groups under k
			q := onDataset(c.tgt.d)
			q.Select = []*yrdv1.SelectItem{col(c.group), agg(fCount, "", "rows")}
			q.GroupBy = []string{c.group}
			q.Where = &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "age", Op: yrdv1.CompareOp_COMPARE_OP_GE, Value: intLit(c.minAge)}}}
			dec := decision(c.tgt.d, aggs, nil)
			dec.MinGroupSize = uint32(k)
			_, rows := c.tgt.run(t, c.tgt.plan(t, q, dec, Options{Sketch: testSketch}, c.fast))
			released := map[string]bool{}
			recurring := false
			for _, r := range rows {
				g := fmt.Sprint(r[0])
				released[g] = true
				n, cells, counts, xors := checkSketchColumns(t, r, testSketch.Cells)
				persons := want[g]
				if int(n) != len(persons) {
					t.Fatalf("group %s: %d individuals, want %d", g, n, len(persons))
				}
				if r[1].(int64) > n {
					recurring = true
				}
				m := uint64(testSketch.Cells - 1)
				wc, wx := map[int64]int64{}, map[int64]uint64{}
				for h := range persons {
					wc[int64(h&m)]++
					wx[int64(h&m)] ^= h
				}
				if len(cells) != len(wc) {
					t.Fatalf("group %s: %d cells, want %d", g, len(cells), len(wc))
				}
				for i, cell := range cells {
					if counts[i] != wc[cell] || xors[i] != wx[cell] {
						t.Fatalf("group %s cell %d: %d persons xor %x, want %d xor %x", g, cell, counts[i], xors[i], wc[cell], wx[cell])
					}
				}
			}
			for g, persons := range want {
				if (len(persons) >= k) != released[g] {
					t.Errorf("group %s of %d persons: released %v under k=%d", g, len(persons), released[g], k)
				}
			}
			if len(released) == 0 || len(released) == len(want) {
				t.Errorf("%d of %d groups released: the test proves nothing", len(released), len(want))
			}
			if recurring != c.wantRecurrence {
				t.Errorf("rows beyond individuals in some group: %v, want %v", recurring, c.wantRecurrence)
			}
		})
	}
}

// elderlyFile writes n generated elderly rows as CSV text, plus extra
// lines.
func elderlyCSV(t *testing.T, d *yrdv1.Dataset, n int, extra ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := synth.WriteCSV(&b, d, n, testSeed); err != nil {
		t.Fatal(err)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

// TestSketchFastPathOnlyOnVerifiedFiles: DuckDB takes the fast path only
// while the files are those a check found the person key unique in. A
// file replaced by one where a person has two rows is served on the
// distinct path at once, with the group's individuals exact (the fast
// path would count the person twice), until a check; a check that finds
// the key unique again (a row without a person key does not count)
// brings the fast path back, as does the background recheck that Plan
// starts on seeing changed files; touching the file alone is a change.
func TestSketchFastPathOnlyOnVerifiedFiles(t *testing.T) {
	d := elderly(t)
	const n = 2000
	path := filepath.Join(t.TempDir(), "elderly.csv")
	orig := elderlyCSV(t, d, n)
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{path}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tgt := sketchTarget{name: "duckdb", d: d, duck: db}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(fCount, "", "n")}
	q.GroupBy = []string{"district"}
	dec := decision(d, aggs, nil)
	dec.MinGroupSize = 2
	planned := func(wantPath string) map[string][]any {
		t.Helper()
		st, err := db.Plan(d.GetId(), q, dec, Options{Sketch: testSketch})
		if err != nil {
			t.Fatal(err)
		}
		if got := sketchPath(st.SQL); got != wantPath {
			t.Fatalf("Plan took the %s path, want %s", got, wantPath)
		}
		_, rows := tgt.run(t, st)
		return byGroup(rows)
	}
	plain := func() map[string][]any {
		t.Helper()
		st, err := db.Plan(d.GetId(), q, dec, Options{Individuals: true})
		if err != nil {
			t.Fatal(err)
		}
		_, rows := tgt.run(t, st)
		return byGroup(rows)
	}
	sameIndividuals := func(got, want map[string][]any) {
		t.Helper()
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%d groups, want %d", len(got), len(want))
		}
		for g, w := range want {
			if got[g] == nil || got[g][1] != w[1] || got[g][2] != w[2] {
				t.Fatalf("group %s: rows, individuals %v, want %v", g, got[g][1:3], w[1:3])
			}
		}
	}
	sameIndividuals(planned("fast"), plain())

	// A person's row twice: the same person, the same group.
	lines := strings.SplitN(string(orig), "\n", 3)
	dup := lines[1]
	district := strings.Split(dup, ",")[1]
	replace := func(content []byte) {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	replace(elderlyCSV(t, d, n, dup))
	want := plain()
	got := planned("distinct")
	sameIndividuals(got, want)
	if want[district][1].(int64) != want[district][2].(int64)+1 {
		t.Fatalf("group %s: %v rows for %v individuals; the duplicate is not in it", district, want[district][1], want[district][2])
	}
	// The fast path would have counted the person twice.
	_, rows := tgt.run(t, tgt.plan(t, q, dec, Options{Sketch: testSketch}, true))
	if fast := byGroup(rows)[district]; fast[2] != want[district][2].(int64)+1 {
		t.Fatalf("fast path over duplicates: %v individuals; want the double count %d (else this test proves nothing)", fast[2], want[district][2].(int64)+1)
	}
	// A check finds the duplicate: still the distinct path.
	if ms := db.CheckDataset(context.Background(), d.GetId()); len(ms) != 0 {
		t.Fatal(ms)
	}
	<-db.recheckDone(d.GetId()) // the check verifies in the background
	sameIndividuals(planned("distinct"), want)

	// A row without a person key is no person and no duplicate.
	noKey := strings.Join(append([]string{""}, strings.Split(dup, ",")[1:]...), ",")
	replace(elderlyCSV(t, d, n, noKey))
	planned("distinct")
	if ms := db.CheckDataset(context.Background(), d.GetId()); len(ms) != 0 {
		t.Fatal(ms)
	}
	<-db.recheckDone(d.GetId())
	want = plain()
	if want[district][1].(int64) != want[district][2].(int64)+1 {
		t.Fatalf("group %s: %v rows for %v individuals; the keyless row is not in it", district, want[district][1], want[district][2])
	}
	sameIndividuals(planned("fast"), want)

	// A new mtime alone is a change until verified, which the Plan that
	// sees it starts in the background.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	planned("distinct")
	select {
	case <-db.recheckDone(d.GetId()):
	case <-time.After(time.Minute): // a recheck of 10,000 rows takes milliseconds
		t.Fatal("the background recheck the Plan started did not end")
	}
	sameIndividuals(planned("fast"), want)

	// Data with recurring persons is never on the fast path.
	for _, h := range hospitalTargets(t) {
		if h.duck == nil {
			continue
		}
		hq := onDataset(h.d)
		hq.Select = []*yrdv1.SelectItem{col("department"), agg(fCount, "", "n")}
		hq.GroupBy = []string{"department"}
		st, err := h.duck.Plan(h.d.GetId(), hq, decision(h.d, aggs, nil), Options{Sketch: testSketch})
		if err != nil {
			t.Fatal(err)
		}
		if sketchPath(st.SQL) != "distinct" {
			t.Fatalf("hospital visits planned on the %s path", sketchPath(st.SQL))
		}
	}
}

func byGroup(rows [][]any) map[string][]any {
	out := map[string][]any{}
	for _, r := range rows {
		out[fmt.Sprint(r[0])] = r
	}
	return out
}

// TestPGSketchFastPathNeedsUniqueIndex: PostgreSQL takes the fast path
// only after a check found a valid, non-partial unique index on exactly
// the person column.
func TestPGSketchFastPathNeedsUniqueIndex(t *testing.T) {
	openPGElderly(t) // loads the table copied here
	d := elderly(t)
	pgExec(t, "DROP TABLE IF EXISTS public.sketch_elderly",
		"CREATE TABLE public.sketch_elderly AS SELECT * FROM "+pgx.Identifier{pgSchema, pgTable}.Sanitize())
	tbl := PGTable{DatasetID: d.GetId(), Table: "sketch_elderly"}
	p, err := OpenPostgres(context.Background(), pgDSN(t), []PGTable{tbl}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(fCount, "", "n")}
	q.GroupBy = []string{"district"}
	dec := decision(d, aggs, nil)
	path := func() string {
		t.Helper()
		st, err := p.Plan(d.GetId(), q, dec, Options{Sketch: testSketch})
		if err != nil {
			t.Fatal(err)
		}
		return sketchPath(st.SQL)
	}
	check := func() {
		t.Helper()
		if ms := p.CheckDataset(context.Background(), d.GetId()); len(ms) != 0 {
			t.Fatal(ms)
		}
	}
	for _, step := range []struct {
		stmts []string
		want  string
	}{
		{nil, "distinct"},
		{[]string{"CREATE UNIQUE INDEX sketch_elderly_partial ON public.sketch_elderly (person_id) WHERE age > 60"}, "distinct"},
		{[]string{"CREATE UNIQUE INDEX sketch_elderly_expr ON public.sketch_elderly (lower(person_id))"}, "distinct"},
		{[]string{"CREATE UNIQUE INDEX sketch_elderly_pair ON public.sketch_elderly (person_id, district)"}, "distinct"},
		{[]string{"CREATE INDEX sketch_elderly_plain ON public.sketch_elderly (person_id)"}, "distinct"},
		{[]string{"ALTER TABLE public.sketch_elderly ADD PRIMARY KEY (person_id)"}, "fast"},
		{[]string{"ALTER TABLE public.sketch_elderly DROP CONSTRAINT sketch_elderly_pkey"}, "distinct"},
		{[]string{"CREATE UNIQUE INDEX sketch_elderly_key ON public.sketch_elderly (person_id) INCLUDE (age)"}, "fast"},
	} {
		before := path()
		pgExec(t, step.stmts...)
		if got := path(); got != before {
			t.Fatalf("after %v, before a check: %s path, was %s", step.stmts, got, before)
		}
		check()
		if got := path(); got != step.want {
			t.Fatalf("after %v: %s path, want %s", step.stmts, got, step.want)
		}
	}
	// The fast path's result is the plain plan's.
	tgt := sketchTarget{name: "postgres", d: d, pg: p, tbl: tbl}
	compareWithPlain(t, tgt, sketchShape{q: q, dec: dec, ordered: false}, true)
}

// TestSketchOptions: options are validated; a dataset without a person
// key, or a row decision, gets no sketch; the seed is bound, never
// written into the SQL; reserved names are refused.
func TestSketchOptions(t *testing.T) {
	db, d := openElderly(t)
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(fCount, "", "n")}
	q.GroupBy = []string{"district"}
	dec := decision(d, aggs, nil)
	for _, bad := range []SketchOptions{{Cells: 0, Seed: testSketch.Seed}, {Cells: 8, Seed: testSketch.Seed}, {Cells: 48, Seed: testSketch.Seed},
		{Cells: 8192, Seed: testSketch.Seed}, {Cells: 64, Seed: []byte("short")}} {
		if _, _, err := CompileWith(d, q, dec, Options{Sketch: &bad}); err == nil {
			t.Errorf("%d cells, %d seed bytes: compiled", bad.Cells, len(bad.Seed))
		}
		if _, err := db.Plan(d.GetId(), q, dec, Options{Sketch: &bad}); err == nil {
			t.Errorf("%d cells, %d seed bytes: planned", bad.Cells, len(bad.Seed))
		}
	}
	for _, m := range []int{16, 4096} {
		if _, _, err := CompileWith(d, q, dec, Options{Sketch: &SketchOptions{Cells: m, Seed: testSketch.Seed}}); err != nil {
			t.Errorf("%d cells: %v", m, err)
		}
	}
	// The seed is a parameter, in both dialects.
	for _, fast := range []bool{true, false} {
		duck, dargs, err := CompileWith(d, q, dec, Options{Sketch: testSketch, personUnique: fast})
		if err != nil {
			t.Fatal(err)
		}
		pg, pargs, err := CompilePostgresWith(d, PGTable{Table: "t"}, q, dec, Options{Sketch: testSketch, personUnique: fast})
		if err != nil {
			t.Fatal(err)
		}
		for _, frag := range []string{string(testSketch.Seed), hex.EncodeToString(testSketch.Seed), strconv.FormatInt(pgSketchSeed(testSketch.Seed), 10)} {
			if strings.Contains(duck, frag) || strings.Contains(pg, frag) {
				t.Fatalf("seed spliced into the SQL")
			}
		}
		if !slices.Contains(dargs, any(hex.EncodeToString(testSketch.Seed))) || !slices.Contains(pargs, any(pgSketchSeed(testSketch.Seed))) {
			t.Fatalf("seed not bound: %v / %v", dargs, pargs)
		}
	}
	// No person key (no personal information at all): no sketch, as no
	// individuals. A row decision: no sketch.
	for _, ds := range sample.Datasets() {
		if HasPersonalInfo(ds) {
			continue
		}
		cq := onDataset(ds)
		cq.Select = []*yrdv1.SelectItem{agg(fCount, "", "n")}
		cdec := decision(ds, aggs, nil)
		with, _, err1 := CompileWith(ds, cq, cdec, Options{Sketch: testSketch})
		without, _, err2 := CompileWith(ds, cq, cdec, Options{})
		if err1 != nil || err2 != nil || with != without || SketchApplies(ds, cdec) {
			t.Errorf("%s: sketch on a dataset without a person key: %v %v\n%s", ds.GetId(), err1, err2, with)
		}
	}
	rq := onDataset(d)
	rdec := decision(d, rows, nil)
	with, _, _ := CompileWith(d, rq, rdec, Options{Sketch: testSketch})
	without, _, _ := CompileWith(d, rq, rdec, Options{})
	if with != without || SketchApplies(d, rdec) {
		t.Errorf("sketch on a row query: %s", with)
	}
	// Reserved names.
	rq = onDataset(d)
	rq.Select = []*yrdv1.SelectItem{col("district"), agg(fCount, "", skXor)}
	rq.GroupBy = []string{"district"}
	if _, _, err := CompileWith(d, rq, dec, Options{Sketch: testSketch}); err == nil {
		t.Error("alias with the reserved prefix accepted")
	}
	if HasSketch([]string{"n", IndividualsColumn}) || !HasSketch([]string{IndividualsColumn, SketchCellsColumn, SketchCountsColumn, SketchXorsColumn}) {
		t.Error("HasSketch")
	}
}

// TestSketchScheme: DuckDB's scheme is its hash of the canary, so a DuckDB
// whose hash() changed has another; PostgreSQL's is fixed.
func TestSketchScheme(t *testing.T) {
	db, _ := openElderly(t)
	var h uint64
	if err := db.DB().QueryRow("SELECT hash('yrd.sketch.canary')").Scan(&h); err != nil {
		t.Fatal(err)
	}
	if got, want := db.SketchScheme(), fmt.Sprintf("duckdb-hash:%016x", h); got != want || !regexp.MustCompile(`^duckdb-hash:[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("DuckDB scheme %q, want %q", got, want)
	}
	p, _ := openPGElderly(t)
	var e Engine = p
	if e.SketchScheme() != PGSketchScheme {
		t.Errorf("PostgreSQL scheme %q", e.SketchScheme())
	}
}

// TestSketchTotalOfCountsComesAsCellRows: on the fast path, a total of
// counts comes from the engine as one row per cell and is folded by the
// Statement (no second aggregation level, no list aggregates in the SQL);
// any other shape is one statement whose rows are the result, and so is
// CompileWith's SQL always.
func TestSketchTotalOfCountsComesAsCellRows(t *testing.T) {
	duck, d := openElderly(t)
	openPGElderly(t) // loads the table copied here
	pgExec(t, "DROP TABLE IF EXISTS public.fold_elderly",
		"CREATE TABLE public.fold_elderly AS SELECT * FROM "+pgx.Identifier{pgSchema, pgTable}.Sanitize(),
		"ALTER TABLE public.fold_elderly ADD PRIMARY KEY (person_id)")
	pg, err := OpenPostgres(context.Background(), pgDSN(t), []PGTable{{DatasetID: d.GetId(), Table: "fold_elderly"}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if ms := pg.CheckDataset(context.Background(), d.GetId()); len(ms) != 0 {
		t.Fatal(ms)
	}
	es := map[string]Engine{"duckdb": duck, "postgres": pg}
	dec := decision(d, aggs, nil)
	total := onDataset(d)
	total.Select = []*yrdv1.SelectItem{agg(fCount, "", "n"), agg(fCount, "care_level", "")}
	withMin := onDataset(d)
	withMin.Select = []*yrdv1.SelectItem{agg(fCount, "", "n"), agg(fMin, "age", "")}
	grouped := onDataset(d)
	grouped.Select = []*yrdv1.SelectItem{col("district"), agg(fCount, "", "n")}
	grouped.GroupBy = []string{"district"}
	for name, e := range es {
		for _, c := range []struct {
			name  string
			q     *yrdv1.Query
			folds bool
		}{{"total of counts", total, true}, {"total with min", withMin, false}, {"grouped counts", grouped, false}} {
			st, err := e.Plan(d.GetId(), c.q, dec, Options{Sketch: testSketch})
			if err != nil {
				t.Fatal(err)
			}
			lists := strings.Contains(st.SQL, "list(") || strings.Contains(st.SQL, "array_agg(")
			if sketchPath(st.SQL) != "fast" || st.cellRows != c.folds || lists == c.folds {
				t.Errorf("%s, %s: path %s, cell rows %v, list aggregates %v:\n%s", name, c.name, sketchPath(st.SQL), st.cellRows, lists, st.SQL)
			}
		}
	}
	sql, _, err := CompileWith(d, total, dec, Options{Sketch: testSketch, personUnique: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, "list(") {
		t.Errorf("CompileWith's total of counts has no list aggregates:\n%s", sql)
	}
}

// TestCellFoldRefusesWhatItCannotFold: rows that are not a total's cells
// give an error naming what was wrong, not a result.
func TestCellFoldRefusesWhatItCannotFold(t *testing.T) {
	db, d := openElderly(t)
	run := func(sql string) error {
		r, err := db.Exec(context.Background(), Statement{SQL: sql, cellRows: true, minIndividuals: 1})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
		}
		return r.Err()
	}
	view := quoteIdent(d.GetId())
	for sql, want := range map[string]string{
		"SELECT count(*) AS n FROM " + view: "cell rows with columns",
		"SELECT 'x' AS n, 1::BIGINT AS " + quoteIdent(skCell) + ", 1::BIGINT AS " + quoteIdent(skPersons) + ", 1::UBIGINT AS " + quoteIdent(skXor): "cell row count string",
		"SELECT 1::BIGINT AS n, 1::BIGINT AS " + quoteIdent(skCell) + ", 'p' AS " + quoteIdent(skPersons) + ", 1::UBIGINT AS " + quoteIdent(skXor): "cell row individuals string",
		"SELECT 1::BIGINT AS n, 'c' AS " + quoteIdent(skCell) + ", 1::BIGINT AS " + quoteIdent(skPersons) + ", 1::UBIGINT AS " + quoteIdent(skXor): "cell row of types string, uint64",
	} {
		if err := run(sql); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", sql, err, want)
		}
	}
}

// TestSketchCellRowsWithoutPersonKeys: rows whose person key is NULL are
// counted in a folded total but are in no cell and no individual, as in
// the plain plan.
func TestSketchCellRowsWithoutPersonKeys(t *testing.T) {
	src, d := openElderly(t)
	path := filepath.Join(t.TempDir(), "some-without-key.csv")
	if _, err := src.DB().Exec("COPY (SELECT CASE WHEN age > 85 THEN NULL ELSE person_id END AS person_id, * EXCLUDE (person_id) FROM " +
		quoteIdent(d.GetId()) + ") TO '" + path + "' (HEADER)"); err != nil {
		t.Fatal(err)
	}
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{path}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{agg(fCount, "", "n"), agg(fCount, "person_id", "")}
	tgt := sketchTarget{name: "duckdb", d: d, duck: db}
	if st := tgt.plan(t, q, decision(d, aggs, nil), Options{Sketch: testSketch}, true); !st.cellRows {
		t.Fatalf("not planned as cell rows:\n%s", st.SQL)
	}
	compareWithPlain(t, tgt, sketchShape{q: q, dec: decision(d, aggs, nil), ordered: true}, true)
	_, rows := tgt.run(t, tgt.plan(t, q, decision(d, aggs, nil), Options{Individuals: true}, false))
	if n, keyed := rows[0][0].(int64), rows[0][1].(int64); n == keyed || n != testRows {
		t.Fatalf("%d rows, %d with a person key: want %d rows and some without a key", n, keyed, testRows)
	}
}
