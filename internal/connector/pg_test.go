package connector

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
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

func TestPGGroupByWithKSuppression(t *testing.T) {
	p, _ := openPGElderly(t)
	d := elderly(t)
	type key struct{ district, care string }
	people := map[key]map[any]bool{}
	ages := map[key]int64{}
	for _, r := range generated(t, d, testRows) {
		k := key{fmt.Sprint(r["district"]), fmt.Sprint(r["care_level"])}
		if people[k] == nil {
			people[k] = map[any]bool{}
		}
		people[k][r["person_id"]] = true
		if a, ok := r["age"].(int64); ok {
			ages[k] += a
		}
	}
	var counts []int
	for _, ps := range people {
		counts = append(counts, len(ps))
	}
	slices.Sort(counts)
	kMin := counts[len(counts)/2]
	if counts[0] >= kMin {
		t.Fatalf("no group under k=%d; counts %v", kMin, counts)
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), col("care_level"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "age", "age_sum")}
	q.GroupBy = []string{"district", "care_level"}
	q.OrderBy = []*yrdv1.OrderItem{{Key: &yrdv1.OrderItem_SelectIndex{SelectIndex: 2}, Descending: true}}
	dec := decision(d, aggs, nil)
	dec.MinGroupSize = uint32(kMin)
	sql, _, err := CompilePostgres(d, PGTable{DatasetID: d.GetId(), Schema: pgSchema, Table: pgTable}, q, dec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, `HAVING count(DISTINCT "__yrd_person_key") >= $1::bigint`) {
		t.Fatalf("no k-suppression in %s", sql)
	}
	r, err := p.Run(context.Background(), d.GetId(), q, dec, nil)
	if err != nil {
		t.Fatal(err)
	}
	names, got := drain(t, r)
	if !slices.Equal(names, []string{"district", "care_level", "n", "age_sum"}) {
		t.Errorf("columns %v", names)
	}
	seen := map[key]bool{}
	prev := int64(1 << 62)
	for _, r := range got {
		k := key{fmt.Sprint(r[0]), fmt.Sprint(r[1])}
		n := r[2].(int64)
		if n > prev {
			t.Errorf("not ordered by n descending: %d after %d", n, prev)
		}
		prev = n
		if want := len(people[k]); int(n) != want {
			t.Errorf("group %v: count %d, want %d", k, n, want)
		}
		if n < int64(kMin) {
			t.Errorf("group %v of %d < k=%d people is in the result", k, n, kMin)
		}
		if fmt.Sprint(r[3]) != fmt.Sprint(ages[k]) {
			t.Errorf("group %v: age sum %v, want %d", k, r[3], ages[k])
		}
		seen[k] = true
	}
	for k, ps := range people {
		if len(ps) >= kMin && !seen[k] {
			t.Errorf("group %v of %d >= k people is missing", k, len(ps))
		}
	}
	if len(seen) == 0 || len(seen) == len(people) {
		t.Errorf("%d of %d groups shown; the test proves nothing", len(seen), len(people))
	}
}

// sortedRows renders rows as sorted strings, to compare result sets.
func sortedRows(rs [][]any) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		parts := make([]string, len(r))
		for j, v := range r {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339Nano)
			}
			parts[j] = fmt.Sprintf("%T:%v", v, v)
		}
		out[i] = strings.Join(parts, "|")
	}
	slices.Sort(out)
	return out
}

// TestPGSameResultsAsDuckDB runs the same queries under the same
// decisions and keys through both connectors, over the same generated
// rows, and wants identical results: pseudonyms, masks, filters, groups.
func TestPGSameResultsAsDuckDB(t *testing.T) {
	duck, d := openElderly(t)
	p, _ := openPGElderly(t)
	key := []byte("grant-1 key for shanghai elderly")
	lit := func(v any) *yrdv1.Literal {
		switch x := v.(type) {
		case string:
			return &yrdv1.Literal{Value: &yrdv1.Literal_StringValue{StringValue: x}}
		case int:
			return &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: int64(x)}}
		case float64:
			return &yrdv1.Literal{Value: &yrdv1.Literal_DoubleValue{DoubleValue: x}}
		case bool:
			return &yrdv1.Literal{Value: &yrdv1.Literal_BoolValue{BoolValue: x}}
		}
		panic(v)
	}
	gen := generated(t, d, testRows)
	district := gen[0]["district"].(string)
	all := func() *yrdv1.Query { return onDataset(d) }
	rowsAll := decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo, "gender": masked, "age": masked, "care_level": withheld})
	rowsAll.RowCap = testRows
	pseudoAll := decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo, "district": pseudo, "age": pseudo, "living_alone": pseudo, "care_level": pseudo, "gender": masked})
	pseudoAll.RowCap = testRows
	filtered := onDataset(d)
	filtered.Select = []*yrdv1.SelectItem{col("person_id"), col("age"), col("care_level")}
	filtered.Where = &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: []*yrdv1.Expr{
		eqString("district", district),
		{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: "age", Low: lit(70), High: lit(79.5)}}},
		{Node: &yrdv1.Expr_Not{Not: &yrdv1.Expr{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "gender", Values: []*yrdv1.Literal{lit("F")}}}}}},
		{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: []*yrdv1.Expr{
			{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "living_alone", Op: yrdv1.CompareOp_COMPARE_OP_EQ, Value: lit(true)}}},
			{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: "care_level"}}},
			{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "age", Op: yrdv1.CompareOp_COMPARE_OP_GT, Value: lit(75.5)}}},
		}}}},
	}}}}
	grouped := onDataset(d)
	grouped.Select = []*yrdv1.SelectItem{col("district"), col("gender"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, "person_id", "people"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, "age", "youngest"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX, "age", "oldest"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "care_level", "with_care")}
	grouped.GroupBy = []string{"district", "gender"}
	groupDec := decision(d, aggs, map[string]yrdv1.ColumnTreatment{"gender": masked})
	groupDec.MinGroupSize = 50

	for _, tc := range []struct {
		name string
		q    *yrdv1.Query
		dec  *yrdv1.Decision
	}{
		{"select * pseudonymised and masked", all(), rowsAll},
		{"every type pseudonymised", all(), pseudoAll},
		{"filters", filtered, decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo})},
		{"k-suppressed groups", grouped, groupDec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sql, args, err := Compile(d, tc.q, tc.dec, key)
			if err != nil {
				t.Fatal(err)
			}
			_, want := collect(t, duck, sql, args)
			r, err := p.Run(context.Background(), d.GetId(), tc.q, tc.dec, key)
			if err != nil {
				t.Fatal(err)
			}
			_, got := drain(t, r)
			if len(want) == 0 {
				t.Fatal("empty result proves nothing")
			}
			w, g := sortedRows(want), sortedRows(got)
			if !slices.Equal(w, g) {
				for i := range min(len(w), len(g)) {
					if w[i] != g[i] {
						t.Fatalf("%d vs %d rows; first difference:\nduckdb   %s\npostgres %s", len(w), len(g), w[i], g[i])
					}
				}
				t.Fatalf("%d rows from DuckDB, %d from PostgreSQL", len(w), len(g))
			}
		})
	}

	// The pseudonyms are the keyed hash of the raw ids, never the ids.
	r, err := p.Run(context.Background(), d.GetId(), all(), rowsAll, key)
	if err != nil {
		t.Fatal(err)
	}
	_, got := drain(t, r)
	want := map[string]bool{}
	for _, g := range gen {
		want[pseudonym(key, g["person_id"].(string))] = true
	}
	for _, row := range got {
		if !want[row[0].(string)] {
			t.Fatalf("%v is not the keyed hash of any person id", row[0])
		}
	}
	// The key is a parameter, not SQL text.
	sql, _, err := CompilePostgres(d, PGTable{Schema: pgSchema, Table: pgTable}, all(), rowsAll, key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sql, string(key)) || strings.Contains(sql, hex.EncodeToString(key)) {
		t.Fatal("key spliced into the SQL")
	}
}

func TestPGLiteralInjection(t *testing.T) {
	p, tbl := openPGElderly(t)
	d := elderly(t)
	for _, evil := range []string{"x' OR 1=1 --", `x"; DROP TABLE civil_affairs.elderly_population; --`, "$1", "?", `'); SELECT pg_sleep(10); --`} {
		q := onDataset(d)
		q.Select = []*yrdv1.SelectItem{col("district"), col("age")}
		q.Where = &yrdv1.Expr{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: []*yrdv1.Expr{
			eqString("district", evil),
			{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "gender", Values: []*yrdv1.Literal{{Value: &yrdv1.Literal_StringValue{StringValue: evil}}}}}},
		}}}}
		dec := decision(d, rows, nil)
		sql, args, err := CompilePostgres(d, tbl, q, dec, nil)
		if err != nil {
			t.Fatal(err)
		}
		// ("$1" is also a placeholder: only longer texts are telling.)
		if (len(evil) > 2 && strings.Contains(sql, evil)) || strings.Contains(sql, "?") || strings.Contains(sql, "OR 1=1") || strings.Contains(sql, "DROP") || strings.Contains(sql, "pg_sleep") {
			t.Fatalf("user text %q in SQL: %s", evil, sql)
		}
		if !slices.Contains(args, any(evil)) {
			t.Fatalf("literal not bound: %v", args)
		}
		r, err := p.Run(context.Background(), d.GetId(), q, dec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := drain(t, r); len(got) != 0 {
			t.Fatalf("%q returned %d rows", evil, len(got))
		}
	}
	// The table is still there.
	if _, got := pgCollect(t, p, `SELECT count(*) FROM civil_affairs.elderly_population`, nil); got[0][0] != int64(testRows) {
		t.Fatalf("table has %v rows", got[0][0])
	}
	// Configured identifiers are quoted, not spliced.
	sql, _, err := CompilePostgres(d, PGTable{Schema: `s"; DROP TABLE x; --`, Table: "t"}, onDataset(d), decision(d, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, `FROM "s""; DROP TABLE x; --"."t"`) {
		t.Errorf("schema not quoted: %s", sql)
	}
	// A hostile alias never compiles.
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{{Item: &yrdv1.SelectItem_Column{Column: "district"}, Alias: `d" FROM x --`}}
	if _, err := p.Run(context.Background(), d.GetId(), q, decision(d, rows, nil), nil); err == nil {
		t.Fatal("hostile alias accepted")
	}
}

func TestPGUnknownColumn(t *testing.T) {
	p, _ := openPGElderly(t)
	d := elderly(t)
	dec := decision(d, rows, nil)
	for name, q := range map[string]*yrdv1.Query{
		"select":   {Select: []*yrdv1.SelectItem{col("salary")}},
		"where":    {Select: []*yrdv1.SelectItem{col("district")}, Where: eqString("salary", "1")},
		"group by": {Select: []*yrdv1.SelectItem{col("salary")}, GroupBy: []string{"salary"}},
		"order by": {Select: []*yrdv1.SelectItem{col("district")}, OrderBy: []*yrdv1.OrderItem{{Key: &yrdv1.OrderItem_Column{Column: "salary"}}}},
		"agg":      {Select: []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "salary", "")}},
	} {
		q.Source = &yrdv1.Query_DatasetId{DatasetId: d.GetId()}
		_, err := p.Run(context.Background(), d.GetId(), q, dec, nil)
		if err == nil || !strings.Contains(err.Error(), `unknown column "salary"`) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := p.Run(context.Background(), d.GetId(), onDataset(d), &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_DENY}, nil); err == nil {
		t.Error("denied query ran")
	}
}

func TestPGRowCap(t *testing.T) {
	p, _ := openPGElderly(t)
	d := elderly(t)
	dec := decision(d, rows, nil)
	dec.RowCap = 100
	for _, tc := range []struct{ limit, want int }{{0, 100}, {10, 10}, {1000, 100}} {
		q := onDataset(d)
		q.Limit = uint64(tc.limit)
		r, err := p.Run(context.Background(), d.GetId(), q, dec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := drain(t, r); len(got) != tc.want {
			t.Errorf("limit %d under cap 100: %d rows, want %d", tc.limit, len(got), tc.want)
		}
	}
	dec.RowCap = 0
	if _, err := p.Run(context.Background(), d.GetId(), onDataset(d), dec, nil); err == nil {
		t.Error("row decision without a cap ran")
	}
}

// TestPGCancelStopsQuery checks that cancelling the context stops the
// query on the server, not only in the client. The queries would run for
// ten minutes; the cancel comes once the server is running them, and both
// the client and the server must be done within 10 s of it (a working
// cancel takes milliseconds; a broken one leaves the query running for
// minutes).
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

func TestPGConcurrentQueries(t *testing.T) {
	p, _ := openPGElderly(t)
	d := elderly(t)
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, "person_id", "people")}
	q.GroupBy = []string{"district"}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Run(context.Background(), d.GetId(), q, decision(d, aggs, nil), nil)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			var total int64
			for r.Next() {
				total += r.Values()[1].(int64)
			}
			if err := r.Err(); err != nil {
				errs <- err
			} else if total != testRows {
				errs <- fmt.Errorf("%d people, want %d", total, testRows)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
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

// TestPGEverySampleDatasetParity loads every sample dataset (every
// catalog type) into PostgreSQL by COPY and into DuckDB from the same
// CSV, and wants the same rows from both, raw and with every column
// pseudonymised.
func TestPGEverySampleDatasetParity(t *testing.T) {
	const n = 2000
	dsn := pgDSN(t)
	key := []byte("parity key, long enough for use")
	for i, d := range sample.Datasets() {
		t.Run(d.GetId(), func(t *testing.T) {
			table := fmt.Sprintf("sample_%d", i)
			var cols []string
			for _, c := range d.GetSchema().GetColumns() {
				typ, ok := pgCastType(c.GetType())
				if !ok {
					t.Fatalf("column %s: type %s", c.GetName(), c.GetType())
				}
				cols = append(cols, pgx.Identifier{c.GetName()}.Sanitize()+" "+typ)
			}
			pgExec(t, "DROP TABLE IF EXISTS public."+table, "CREATE TABLE public."+table+" ("+strings.Join(cols, ", ")+")")
			var csv bytes.Buffer
			if err := synth.WriteCSV(&csv, d, n, testSeed); err != nil {
				t.Fatal(err)
			}
			if got := pgCopyCSV(t, "public."+table, csv.Bytes()); got != n {
				t.Fatalf("COPY loaded %d rows", got)
			}
			p, err := OpenPostgres(context.Background(), dsn, []PGTable{{DatasetID: d.GetId(), Table: table}}, catalogOf(d))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !p.Serving(d.GetId()) {
				t.Fatalf("not served: %v", p.Check(context.Background()))
			}
			duck, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{writeCSV(t, t.TempDir(), d, n)}}}, catalogOf(d))
			if err != nil {
				t.Fatal(err)
			}
			defer duck.Close()
			treatAll := map[string]yrdv1.ColumnTreatment{}
			for _, c := range d.GetSchema().GetColumns() {
				treatAll[c.GetName()] = pseudo
			}
			for name, dec := range map[string]*yrdv1.Decision{"raw": decision(d, rows, nil), "pseudonymised": decision(d, rows, treatAll)} {
				dec.RowCap = n
				sql, args, err := Compile(d, onDataset(d), dec, key)
				if err != nil {
					t.Fatal(err)
				}
				_, want := collect(t, duck, sql, args)
				r, err := p.Run(context.Background(), d.GetId(), onDataset(d), dec, key)
				if err != nil {
					t.Fatal(err)
				}
				_, got := drain(t, r)
				w, g := sortedRows(want), sortedRows(got)
				if len(w) != n || !slices.Equal(w, g) {
					for i := range min(len(w), len(g)) {
						if w[i] != g[i] {
							t.Fatalf("%s: %d vs %d rows; first difference:\nduckdb   %s\npostgres %s", name, len(w), len(g), w[i], g[i])
						}
					}
					t.Fatalf("%s: %d rows from DuckDB, %d from PostgreSQL", name, len(w), len(g))
				}
			}
		})
	}
}

// TestPGDoubleTextMatchesDuckDB checks pgDoubleText, on which DOUBLE
// pseudonyms depend, against DuckDB's own CAST(DOUBLE AS VARCHAR).
func TestPGDoubleTextMatchesDuckDB(t *testing.T) {
	duck, _ := openElderly(t)
	p, _ := openPGElderly(t)
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 45, 45.5, 0.1, 0.0001, 0.00001, -0.00001, 1.5e-7, 2.5e-300, 1e300,
		1e15, -1e15, 1e15 + 0.5, 1234567890123456.25, 4503599627370495.5, 999999999999999.9, 9007199254740992, 1e16, 1e17, 1e21, 1e22,
		123456789.125, 0.30000000000000004, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		e := rng.IntN(44) - 22
		v := (rng.Float64() - 0.5) * math.Pow(10, float64(e))
		vals = append(vals, v, math.Round(v), math.Round(v*100)/100)
	}
	c, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(c)
	for _, v := range vals {
		_, want := collect(t, duck, "SELECT CAST(CAST(? AS DOUBLE) AS VARCHAR)", []any{v})
		var got string
		if err := c.QueryRow(context.Background(), "SELECT "+pgDoubleText("$1::float8"), v).Scan(&got); err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if got != want[0][0] {
			t.Errorf("%v: postgres %q, duckdb %q", v, got, want[0][0])
		}
	}
}

// TestPGTextMatchesDuckDB checks that the other catalog types render as
// the same text in both databases, as pseudonyms hash that text.
func TestPGTextMatchesDuckDB(t *testing.T) {
	duck, _ := openElderly(t)
	p, _ := openPGElderly(t)
	c, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(c)
	for typ, vals := range map[string][]string{
		"DECIMAL":   {"0", "12.34", "-0.5", "12.34567", "99999999999999.9999", "-12.00005", "1e3"},
		"TIMESTAMP": {"2024-03-01 12:34:56", "2024-03-01 12:34:56.5", "2024-03-01 12:34:56.123456", "2024-03-01 00:00:00.01", "1970-01-01 00:00:00", "1900-02-28 23:59:59.999999"},
		"DATE":      {"2024-02-29", "1970-01-01", "0001-01-01", "9999-12-31"},
		"BOOLEAN":   {"true", "false"},
		"INTEGER":   {"0", "-2147483648", "2147483647"},
		"BIGINT":    {"-9223372036854775808", "9223372036854775807"},
		"VARCHAR":   {"", "浦东新区", "a'b\"c"},
	} {
		dt, _ := duckType(typ)
		pt, _ := pgCastType(typ)
		for _, v := range vals {
			_, want := collect(t, duck, "SELECT CAST(CAST(? AS "+dt+") AS VARCHAR)", []any{v})
			var got string
			if err := c.QueryRow(context.Background(), "SELECT CAST(CAST($1::text AS "+pt+") AS text)", v).Scan(&got); err != nil {
				t.Fatalf("%s %s: %v", typ, v, err)
			}
			if got != want[0][0] {
				t.Errorf("%s %s: postgres %q, duckdb %q", typ, v, got, want[0][0])
			}
		}
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
