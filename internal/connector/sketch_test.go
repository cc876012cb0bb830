package connector

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

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
