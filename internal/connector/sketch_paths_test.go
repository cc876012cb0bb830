package connector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Which sketch path a plan takes: the fast one only on a person key verified
// unique.

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
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
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
