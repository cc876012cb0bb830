package connector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestPGCorrectTableIsServed(t *testing.T) {
	p, tbl := openPGElderly(t)
	d := elderly(t)
	if ms := p.Check(context.Background()); len(ms) != 0 {
		t.Fatalf("mismatches on a correct table: %v", ms)
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
	r, err := p.Run(context.Background(), d.GetId(), q, decision(d, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, got := drain(t, r); len(got) != 1 || got[0][0] != int64(testRows) {
		t.Fatalf("count %v, want %d", got, testRows)
	}
	// The table name comes from configuration, quoted.
	sql, _, err := CompilePostgres(d, tbl, q, decision(d, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, `FROM "civil_affairs"."elderly_population"`) {
		t.Errorf("table not schema-qualified and quoted: %s", sql)
	}
}

// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestPGSchemaMismatches(t *testing.T) {
	dsn := pgDSN(t)
	d := elderly(t)
	// age is text, gender renamed to sex, care_level missing, an extra
	// column; and a second table with integer widths swapped.
	pgExec(t,
		`DROP TABLE IF EXISTS public.elderly_bad, public.elderly_wide`,
		`CREATE TABLE public.elderly_bad (person_id text, district text, age text, sex text, living_alone boolean, hobby text)`,
		`CREATE TABLE public.elderly_wide (person_id text, district text, age bigint, gender text, living_alone boolean, care_level jsonb)`,
	)
	ids := []string{"bad", "wide", "absent", "notincatalog"}
	cat := map[string]*yrdv1.Dataset{}
	for _, id := range ids[:3] {
		c := clone(d)
		c.Id = id
		cat[id] = c
	}
	catalog := func(id string) (*yrdv1.Dataset, bool) { x, ok := cat[id]; return x, ok }
	p, err := OpenPostgres(context.Background(), dsn, []PGTable{
		{DatasetID: "bad", Table: "elderly_bad"},
		{DatasetID: "wide", Schema: "public", Table: "elderly_wide"},
		{DatasetID: "absent", Table: "no_such_table"},
		{DatasetID: "notincatalog", Table: "elderly_bad"},
	}, catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ms := p.Check(context.Background())
	by := map[string][]Mismatch{}
	for _, m := range ms {
		by[m.DatasetID] = append(by[m.DatasetID], m)
	}
	bad := by["bad"]
	wantMismatch(t, bad, "age", "type differs: local VARCHAR vs catalog INTEGER")
	wantMismatch(t, bad, "gender", "missing")
	wantMismatch(t, bad, "care_level", "missing")
	wantMismatch(t, bad, "sex", "extra")
	wantMismatch(t, bad, "hobby", "extra")
	if len(bad) != 5 {
		t.Errorf("bad: got %d mismatches, want 5: %v", len(bad), bad)
	}
	wide := by["wide"]
	wantMismatch(t, wide, "age", "type differs: local BIGINT vs catalog INTEGER")
	wantMismatch(t, wide, "care_level", "type differs: local postgres jsonb vs catalog INTEGER")
	if len(wide) != 2 {
		t.Errorf("wide: got %d mismatches, want 2: %v", len(wide), wide)
	}
	wantMismatch(t, by["absent"], "", "does not exist")
	wantMismatch(t, by["notincatalog"], "", "not in the catalog")
	for _, id := range ids {
		if p.Serving(id) {
			t.Errorf("%s is served", id)
		}
	}

	// Queries on an unserved dataset fail naming every mismatch.
	q := &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: "bad"}, Select: []*yrdv1.SelectItem{col("district")}}
	_, err = p.Run(context.Background(), "bad", q, decision(cat["bad"], rows, nil), nil)
	if err == nil {
		t.Fatal("Run on an unserved dataset succeeded")
	}
	for _, frag := range []string{"not served", "column age: type differs: local VARCHAR vs catalog INTEGER", "column gender: missing", "column care_level: missing", "column sex: extra", "column hobby: extra"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error does not say %q: %v", frag, err)
		}
	}
	if _, err := p.Run(context.Background(), "elsewhere", q, decision(d, rows, nil), nil); err == nil || !strings.Contains(err.Error(), "no local source") {
		t.Errorf("Run on an unconfigured dataset: %v", err)
	}

	// SQL naming an unserved dataset's table is refused too.
	if _, err := p.Query(context.Background(), `SELECT * FROM "public"."elderly_bad"`, nil); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Errorf("Query on an unserved table: %v", err)
	}

	// Fixing the table and checking again serves it.
	pgExec(t, `ALTER TABLE public.elderly_wide ALTER COLUMN age TYPE integer, ALTER COLUMN care_level TYPE integer USING NULL`)
	if ms := p.CheckDataset(context.Background(), "wide"); len(ms) != 0 || !p.Serving("wide") {
		t.Errorf("fixed table: %v", ms)
	}
}

func TestPGTypeMapping(t *testing.T) {
	dsn := pgDSN(t)
	pgExec(t, `CREATE TABLE IF NOT EXISTS public.alltypes (
		id text, b boolean, i int4, small int2, bi int8, i4big int4, d float8, f4 float4, n numeric(12,2), v text, vc varchar(10), ch char(3),
		dt date, ts timestamp, tz timestamptz)`,
		`TRUNCATE public.alltypes`,
		`INSERT INTO public.alltypes VALUES ('p1', true, 7, 3, 9000000000, 5, 1.5, 2.5, 12.34, 'x', 'y', 'abc',
		'2024-02-29', '2024-03-01 12:34:56.5', '2024-03-01 12:34:56+08')`)
	ds := &yrdv1.Dataset{Id: "alltypes", Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
		{Name: "id", Type: "VARCHAR", IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_DIRECT},
		{Name: "b", Type: "BOOLEAN"}, {Name: "i", Type: "INTEGER"}, {Name: "small", Type: "INTEGER"},
		{Name: "bi", Type: "BIGINT"}, {Name: "i4big", Type: "BIGINT"}, {Name: "d", Type: "DOUBLE"}, {Name: "f4", Type: "DOUBLE"},
		{Name: "n", Type: "DECIMAL"}, {Name: "v", Type: "VARCHAR"}, {Name: "vc", Type: "VARCHAR"}, {Name: "ch", Type: "VARCHAR"},
		{Name: "dt", Type: "DATE"}, {Name: "ts", Type: "TIMESTAMP"}, {Name: "tz", Type: "TIMESTAMP"},
	}}}
	p, err := OpenPostgres(context.Background(), dsn, []PGTable{{DatasetID: "alltypes", Table: "alltypes"}}, catalogOf(ds))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if ms := p.Check(context.Background()); len(ms) != 0 {
		t.Fatalf("mismatches: %v", ms)
	}
	r, err := p.Run(context.Background(), "alltypes", &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: "alltypes"}}, decision(ds, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, got := drain(t, r)
	if len(got) != 1 {
		t.Fatalf("%d rows", len(got))
	}
	// Aggregates: exact integer sums, decimal averages as float64.
	q := &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: "alltypes"}, Select: []*yrdv1.SelectItem{
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "bi", ""), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "i", ""),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG, "n", ""), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "n", ""),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX, "n", ""), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG, "i", ""),
	}}
	ra, err := p.Run(context.Background(), "alltypes", q, decision(ds, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, aggRow := drain(t, ra); fmt.Sprintf("%T %T %T %T %T %T", aggRow[0]...) != "int64 int64 float64 float64 float64 float64" ||
		fmt.Sprint(aggRow[0]) != "[9000000000 7 12.34 12.34 12.34 7]" {
		t.Errorf("aggregates %#v", aggRow[0])
	}
	want := []any{"p1", true, int32(7), int32(3), int64(9000000000), int64(5), 1.5, 2.5, 12.34, "x", "y", "abc",
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 1, 12, 34, 56, 5e8, time.UTC),
		time.Date(2024, 3, 1, 4, 34, 56, 0, time.UTC)}
	for i, w := range want {
		g := got[0][i]
		if wt, ok := w.(time.Time); ok {
			if gt, ok := g.(time.Time); !ok || !gt.Equal(wt) {
				t.Errorf("column %d: %#v, want %v", i, g, wt)
			}
			continue
		}
		if g != w {
			t.Errorf("column %d: %#v (%T), want %#v (%T)", i, g, g, w, w)
		}
	}
}

// TestPGCancelStopsQuery checks that cancelling the context stops the
// query on the server, not only in the client. The queries would run for
// ten minutes; the cancel comes once the server is running them, and both
// the client and the server must be done within 10 s of it (a working
// cancel takes milliseconds; a broken one leaves the query running for
// minutes).
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestPGCancelStopsQuery(t *testing.T) {
	p, _ := openPGElderly(t)
	d := elderly(t)
	const bound = 10 * time.Second
	// running counts the test's queries active on the server; safe to call
	// from any goroutine (an error counts as none running yet).
	running := func() int64 {
		r, err := p.Query(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%yrdnode-cancel-test%' AND pid <> pg_backend_pid()`, nil)
		if err != nil {
			return 0
		}
		defer r.Close()
		var n int64
		for r.Next() {
			n, _ = r.Values()[0].(int64)
		}
		return n
	}
	for _, tc := range []struct{ name, sql string }{
		{"pg_sleep", `SELECT pg_sleep(600) /* yrdnode-cancel-test */`},
		// 10^4 × 10^4 × 10^4 rows: many minutes of work.
		{"cross join", `SELECT count(*) /* yrdnode-cancel-test */ FROM civil_affairs.elderly_population a, civil_affairs.elderly_population b, generate_series(1, 10000) g WHERE a.age + b.age + g > 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelled := make(chan time.Time, 1)
			watchDone := make(chan struct{})
			go func() { // owned by this subtest: ends once it has cancelled or the query has ended
				defer close(watchDone)
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
					select {
					case <-ctx.Done():
						return
					case <-time.After(10 * time.Millisecond):
					}
					if running() > 0 {
						cancelled <- time.Now()
						cancel()
						return
					}
				}
			}()
			r, err := p.Query(ctx, tc.sql, nil)
			if err == nil {
				for r.Next() {
				}
				err = r.Err()
				r.Close()
			}
			end := time.Now()
			cancel()
			<-watchDone
			if err == nil {
				t.Fatal("cancelled query finished without error")
			}
			var at time.Time
			select {
			case at = <-cancelled:
			default:
				t.Fatalf("query ended before the cancel: %v", err)
			}
			if took := end.Sub(at); took > bound {
				t.Fatalf("query ended %v after the cancel", took)
			}
			t.Logf("ended %v after the cancel: %v", end.Sub(at), err)
			// And it is gone from the server, not just abandoned.
			for running() != 0 {
				if time.Since(at) > bound {
					t.Fatalf("the cancelled query is still running on the server %v after the cancel", bound)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// A query already cancelled never starts, through Run too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Run(ctx, d.GetId(), onDataset(d), decision(d, rows, nil), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: %v", err)
	}
	// The connector is still usable.
	if _, got := pgCollect(t, p, `SELECT 1`, nil); len(got) != 1 {
		t.Fatal("connector unusable after a cancellation")
	}
}

func TestOpenPostgresBadConfig(t *testing.T) {
	dsn := pgDSN(t)
	d := elderly(t)
	for name, tables := range map[string][]PGTable{
		"no dataset": {{Table: "t"}},
		"no table":   {{DatasetID: d.GetId()}},
		"twice":      {{DatasetID: d.GetId(), Table: "a"}, {DatasetID: d.GetId(), Table: "b"}},
	} {
		if _, err := OpenPostgres(context.Background(), dsn, tables, catalogOf(d)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := OpenPostgres(context.Background(), dsn, nil, nil); err == nil {
		t.Error("nil catalog accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A socket directory with no server in it: refused at once, and no
	// port that another process could have taken in the meantime.
	if _, err := OpenPostgres(ctx, fmt.Sprintf("host=%s user=postgres sslmode=disable", t.TempDir()), nil, catalogOf(d)); err == nil {
		t.Error("unreachable database accepted")
	}
}

// TestPGColumnPrivileges connects as a role that may read only some
// columns, as a city's least-privilege account would: a catalog column it
// cannot read is a mismatch, and granting it serves the dataset.
func TestPGColumnPrivileges(t *testing.T) {
	openPGElderly(t) // loads the table
	d := elderly(t)
	table := pgx.Identifier{pgSchema, pgTable}.Sanitize()
	pgExec(t,
		`DROP ROLE IF EXISTS yrd_reader`,
		`CREATE ROLE yrd_reader LOGIN`,
		`GRANT USAGE ON SCHEMA `+pgSchema+` TO yrd_reader`,
		`GRANT SELECT (person_id, district, age, gender, living_alone) ON `+table+` TO yrd_reader`,
	)
	t.Cleanup(func() {
		pgExec(t, `REVOKE ALL ON `+table+` FROM yrd_reader`, `REVOKE ALL ON SCHEMA `+pgSchema+` FROM yrd_reader`, `DROP ROLE yrd_reader`)
	})
	dsn := strings.Replace(pgDSN(t), "user=postgres", "user=yrd_reader", 1)
	p, err := OpenPostgres(context.Background(), dsn, []PGTable{{DatasetID: d.GetId(), Schema: pgSchema, Table: pgTable}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ms := p.Check(context.Background())
	wantMismatch(t, ms, "care_level", "no SELECT privilege")
	if len(ms) != 1 || p.Serving(d.GetId()) {
		t.Fatalf("mismatches %v, serving %v", ms, p.Serving(d.GetId()))
	}
	pgExec(t, `GRANT SELECT ON `+table+` TO yrd_reader`)
	if ms := p.Check(context.Background()); len(ms) != 0 {
		t.Fatalf("after the grant: %v", ms)
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "care_level", "n")}
	r, err := p.Run(context.Background(), d.GetId(), q, decision(d, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, got := drain(t, r); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

// TestPGEarlyCloseReturnsConnections closes results before reading them
// out, and after failures, more times than the pool has connections: a
// leaked connection would block a later query until the timeout.
func TestPGEarlyCloseReturnsConnections(t *testing.T) {
	p, _ := openPGElderly(t)
	d := elderly(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 * pgMaxConns {
		r, err := p.Run(ctx, d.GetId(), onDataset(d), decision(d, rows, nil), nil)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if !r.Next() {
			t.Fatal(r.Err())
		}
		r.Close()
		if _, err := p.Query(ctx, `SELECT * FROM no_such_table`, nil); err == nil {
			t.Fatal("query on a missing table succeeded")
		}
		r, err = p.Query(ctx, `SELECT 1/0`, nil)
		if err == nil {
			for r.Next() {
			}
			err = r.Err()
			r.Close()
		}
		if err == nil {
			t.Fatal("division by zero succeeded")
		}
	}
}

// TestPGConfiguredIdentifiersAreQuoted: the schema and table come from
// configuration and are quoted, never spliced.
func TestPGConfiguredIdentifiersAreQuoted(t *testing.T) {
	d := elderly(t)
	sql, _, err := CompilePostgres(d, PGTable{Schema: `s"; DROP TABLE x; --`, Table: "t"}, onDataset(d), decision(d, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, `FROM "s""; DROP TABLE x; --"."t"`) {
		t.Errorf("schema not quoted: %s", sql)
	}
}
