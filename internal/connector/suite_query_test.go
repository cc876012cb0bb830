package connector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	withheld = yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD
	masked   = yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED
	pseudo   = yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED
	rows     = yrdv1.Effect_EFFECT_ALLOW_ROWS
	aggs     = yrdv1.Effect_EFFECT_ALLOW_AGGREGATES
)

func onDataset(d *yrdv1.Dataset) *yrdv1.Query {
	return &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: d.GetId()}}
}

func suiteGroupByWithKSuppression(t *testing.T, e engineUnderTest) {
	d := e.d
	// Expected distinct people per (district, care_level), from the same
	// generator that wrote the file.
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
	for _, p := range people {
		counts = append(counts, len(p))
	}
	slices.Sort(counts)
	kMin := counts[len(counts)/2] // half the groups fall under k
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
	sql, _, err := e.compile(q, dec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `HAVING count(DISTINCT "__yrd_person_key") >= ` + e.param(t, 1, int64(0)); !strings.Contains(sql, "HAVING count(DISTINCT") || !strings.Contains(sql, want) {
		t.Fatalf("no k-suppression in %s", sql)
	}
	names, got := e.runQuery(t, q, dec, nil)
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
	for k, p := range people {
		if len(p) >= kMin && !seen[k] {
			t.Errorf("group %v of %d >= k people is missing", k, len(p))
		}
	}
	if len(seen) == 0 || len(seen) == len(people) {
		t.Errorf("%d of %d groups shown; the test proves nothing", len(seen), len(people))
	}
}

func suiteAggregateOnlyRejectsRowQueries(t *testing.T, e engineUnderTest) {
	d := e.d
	dec := decision(d, aggs, nil)
	for name, q := range map[string]*yrdv1.Query{
		"select *":       onDataset(d),
		"plain columns":  {Source: &yrdv1.Query_DatasetId{DatasetId: d.GetId()}, Select: []*yrdv1.SelectItem{col("district")}},
		"ungrouped cols": {Source: &yrdv1.Query_DatasetId{DatasetId: d.GetId()}, Select: []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "")}},
	} {
		if _, _, err := e.compile(q, dec, Options{}); err == nil {
			t.Errorf("%s: compiled under an aggregates-only decision", name)
		}
	}
	// No direct identifier, no k-anonymity: refuse.
	nd := clone(d)
	for _, c := range nd.Schema.Columns {
		c.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_NONE
	}
	q := onDataset(nd)
	q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "")}
	if _, _, err := CompileWith(nd, q, decision(nd, aggs, nil), Options{}); err == nil || !strings.Contains(err.Error(), "DIRECT") {
		t.Errorf("no person key: %v", err)
	}
	// A whole-table count under k is suppressed too.
	q = onDataset(d)
	q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "")}
	dec = decision(d, aggs, nil)
	dec.MinGroupSize = testRows + 1
	sql, args, err := e.compile(q, dec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, got := e.query(t, sql, args); len(got) != 0 {
		t.Errorf("count over %d < k people shown: %v", testRows, got)
	}
}

func pseudonym(key []byte, v string) string {
	h := sha256.Sum256([]byte(hex.EncodeToString(key) + v))
	return hex.EncodeToString(h[:])[:16]
}

// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func suiteMaskingAndPseudonymisation(t *testing.T, e engineUnderTest) {
	d := e.d
	treat := map[string]yrdv1.ColumnTreatment{"person_id": pseudo, "gender": masked, "age": masked, "care_level": withheld}
	dec := decision(d, rows, treat)
	dec.RowCap = testRows
	key1 := []byte("grant-1 key for shanghai elderly")
	key2 := []byte("grant-2 key for shanghai elderly")

	q := onDataset(d) // SELECT *: withheld columns left out
	sql, args, err := e.compile(q, dec, Options{PseudonymKey: key1})
	if err != nil {
		t.Fatal(err)
	}
	names, got := e.query(t, sql, args)
	if !slices.Equal(names, []string{"person_id", "district", "age", "gender", "living_alone"}) {
		t.Fatalf("columns %v", names)
	}
	if len(got) != testRows {
		t.Fatalf("%d rows, want %d", len(got), testRows)
	}
	raw := map[string]bool{}
	want := map[string]bool{}
	for _, r := range generated(t, d, testRows) {
		id := r["person_id"].(string)
		raw[id] = true
		want[pseudonym(key1, id)] = true
	}
	gotP := map[string]bool{}
	for _, r := range got {
		p, _ := r[0].(string)
		if raw[p] || len(p) != 16 {
			t.Fatalf("person_id %q is not a pseudonym", p)
		}
		if !want[p] {
			t.Fatalf("pseudonym %q is not the keyed hash of any person id", p)
		}
		gotP[p] = true
		if r[2] != nil {
			t.Fatalf("masked age %v", r[2])
		}
		if r[3] != "***" {
			t.Fatalf("masked gender %v", r[3])
		}
		for _, v := range r {
			if s, ok := v.(string); ok && raw[s] {
				t.Fatalf("raw person id %q in the output", s)
			}
		}
	}
	if len(gotP) != len(want) {
		t.Errorf("%d distinct pseudonyms, want %d", len(gotP), len(want))
	}

	// Same key, same pseudonyms; another key, disjoint ones.
	q2 := onDataset(d)
	q2.Select = []*yrdv1.SelectItem{col("person_id")}
	for _, tc := range []struct {
		key  []byte
		same bool
	}{{key1, true}, {key2, false}} {
		sql, args, err := e.compile(q2, dec, Options{PseudonymKey: tc.key})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sql, string(tc.key)) || strings.Contains(sql, hex.EncodeToString(tc.key)) {
			t.Fatal("key spliced into the SQL")
		}
		_, got := e.query(t, sql, args)
		for _, r := range got {
			if gotP[r[0].(string)] != tc.same {
				t.Fatalf("key %q: pseudonym %v shared with key1: %v", tc.key, r[0], !tc.same)
			}
		}
	}

	// Explicitly asking for a withheld column fails, wherever it is named.
	for _, q := range []*yrdv1.Query{
		{Source: q.Source, Select: []*yrdv1.SelectItem{col("care_level")}},
		{Source: q.Source, Select: []*yrdv1.SelectItem{col("district")}, Where: &yrdv1.Expr{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: "care_level"}}}},
		{Source: q.Source, Select: []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG, "care_level", "")}, GroupBy: []string{"district"}},
	} {
		if _, _, err := e.compile(q, dec, Options{PseudonymKey: key1}); err == nil || !strings.Contains(err.Error(), "withheld") {
			t.Errorf("withheld column: %v", err)
		}
	}
	// Values of a masked column cannot be computed on.
	qa := onDataset(d)
	qa.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX, "age", "")}
	if _, _, err := e.compile(qa, dec, Options{PseudonymKey: key1}); err == nil {
		t.Error("max over a masked column compiled")
	}
	// A short key is refused.
	if _, _, err := e.compile(q2, dec, Options{PseudonymKey: []byte("short")}); err == nil {
		t.Error("short pseudonym key accepted")
	}
	// A column the decision does not mention is withheld.
	partial := &yrdv1.Decision{Effect: rows, RowCap: 10, Columns: []*yrdv1.ColumnDecision{{Column: "district", Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW}}}
	sql, args, err = e.compile(onDataset(d), partial, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := e.query(t, sql, args); !slices.Equal(names, []string{"district"}) {
		t.Errorf("columns under a partial decision: %v", names)
	}
}

func suiteLiteralInjection(t *testing.T, e engineUnderTest) {
	d := e.d
	for _, evil := range []string{"x' OR 1=1 --", `x"; DROP TABLE civil_affairs.elderly_population; --`, "$1", "?", `'); SELECT pg_sleep(10); --`} {
		eq := onDataset(d)
		eq.Select = []*yrdv1.SelectItem{col("district"), col("age")}
		eq.Where = eqString("district", evil)
		either := onDataset(d)
		either.Select = eq.Select
		either.Where = &yrdv1.Expr{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: []*yrdv1.Expr{
			eqString("district", evil),
			{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "gender", Values: []*yrdv1.Literal{{Value: &yrdv1.Literal_StringValue{StringValue: evil}}}}}},
		}}}}
		for _, q := range []*yrdv1.Query{eq, either} {
			dec := decision(d, rows, nil)
			sql, args, err := e.compile(q, dec, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// ("$1" and "?" are also placeholders: only longer texts are telling.)
			if len(evil) > 2 && strings.Contains(sql, evil) {
				t.Fatalf("user text %q in SQL: %s", evil, sql)
			}
			for _, frag := range []string{"OR 1=1", "--", "x'", "DROP", "pg_sleep"} {
				if strings.Contains(sql, frag) {
					t.Fatalf("user text %q in SQL: %s", frag, sql)
				}
			}
			if e.name == "postgres" && strings.Contains(sql, "?") {
				t.Fatalf("user text %q in SQL: %s", "?", sql)
			}
			if !slices.Contains(args, any(evil)) {
				t.Fatalf("literal not bound: %v", args)
			}
			if _, got := e.query(t, sql, args); len(got) != 0 {
				t.Fatalf("injection %q returned %d rows", evil, len(got))
			}
			if _, got := e.runQuery(t, q, dec, nil); len(got) != 0 {
				t.Fatalf("%q returned %d rows", evil, len(got))
			}
		}
	}
	// The data is still there.
	if _, got := e.query(t, `SELECT count(*) FROM `+e.table, nil); got[0][0] != int64(testRows) {
		t.Fatalf("table has %v rows", got[0][0])
	}
	// An alias is the one requester text in SQL, so it must be plain.
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{{Item: &yrdv1.SelectItem_Column{Column: "district"}, Alias: `d" FROM x --`}}
	if _, _, err := e.compile(q, decision(d, rows, nil), Options{}); err == nil {
		t.Fatal("hostile alias accepted")
	}
	if _, err := e.run(context.Background(), q, decision(d, rows, nil), nil); err == nil {
		t.Fatal("hostile alias accepted")
	}
}

func suiteFilters(t *testing.T, e engineUnderTest) {
	d := e.d
	gen := generated(t, d, testRows)
	district := gen[0]["district"].(string)
	where := &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: []*yrdv1.Expr{
		eqString("district", district),
		{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: "age", Low: literal(70), High: literal(79)}}},
		{Node: &yrdv1.Expr_Not{Not: &yrdv1.Expr{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "gender", Values: []*yrdv1.Literal{literal("F")}}}}}},
		{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: []*yrdv1.Expr{
			{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "living_alone", Op: yrdv1.CompareOp_COMPARE_OP_EQ, Value: literal(true)}}},
			{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: "care_level"}}},
		}}}},
	}}}}
	want := 0
	for _, r := range gen {
		a, ok := r["age"].(int64)
		if r["district"] == district && ok && a >= 70 && a <= 79 && r["gender"] != nil && r["gender"] != "F" &&
			(r["living_alone"] == true || r["care_level"] == nil) {
			want++
		}
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
	q.Where = where
	sql, args, err := e.compile(q, decision(d, rows, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, got := e.query(t, sql, args)
	if got[0][0] != int64(want) || want == 0 {
		t.Errorf("filtered count %v, want %d\n%s", got[0][0], want, sql)
	}
	// Filters read raw values inside the node even when the column is
	// masked in the result: what a filter may reveal is the policy's call.
	wantF := 0
	for _, r := range gen {
		if r["gender"] == "F" {
			wantF++
		}
	}
	qm := onDataset(d)
	qm.Select = []*yrdv1.SelectItem{col("gender"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
	qm.GroupBy = []string{"gender"}
	qm.Where = eqString("gender", "F")
	sql, args, err = e.compile(qm, decision(d, rows, map[string]yrdv1.ColumnTreatment{"gender": masked}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, got := e.query(t, sql, args); len(got) != 1 || got[0][0] != "***" || got[0][1] != int64(wantF) {
		t.Errorf("filter on masked gender: %v, want [*** %d]", got, wantF)
	}
	// A literal of the wrong type is caught before DuckDB.
	q.Where = &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "age", Op: yrdv1.CompareOp_COMPARE_OP_EQ, Value: literal("70")}}}
	if _, _, err := e.compile(q, decision(d, rows, nil), Options{}); err == nil {
		t.Error("string literal against an INTEGER column accepted")
	}
}

func suiteUnknownColumn(t *testing.T, e engineUnderTest) {
	d := e.d
	dec := decision(d, rows, nil)
	for name, q := range map[string]*yrdv1.Query{
		"select":   {Select: []*yrdv1.SelectItem{col("salary")}},
		"where":    {Select: []*yrdv1.SelectItem{col("district")}, Where: eqString("salary", "1")},
		"group by": {Select: []*yrdv1.SelectItem{col("salary")}, GroupBy: []string{"salary"}},
		"order by": {Select: []*yrdv1.SelectItem{col("district")}, OrderBy: []*yrdv1.OrderItem{{Key: &yrdv1.OrderItem_Column{Column: "salary"}}}},
		"agg":      {Select: []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "salary", "")}},
	} {
		q.Source = &yrdv1.Query_DatasetId{DatasetId: d.GetId()}
		_, _, err := e.compile(q, dec, Options{})
		if err == nil || !strings.Contains(err.Error(), `unknown column "salary"`) {
			t.Errorf("%s: %v", name, err)
		}
		_, err = e.run(context.Background(), q, dec, nil)
		if err == nil || !strings.Contains(err.Error(), `unknown column "salary"`) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A query on another dataset, or a denial, never compiles.
	q := &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: "other"}}
	if _, _, err := e.compile(q, dec, Options{}); err == nil {
		t.Error("query on another dataset compiled")
	}
	if _, _, err := e.compile(onDataset(d), &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_DENY}, Options{}); err == nil {
		t.Error("denied query compiled")
	}
	if _, err := e.run(context.Background(), onDataset(d), &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_DENY}, nil); err == nil {
		t.Error("denied query ran")
	}
}

func suiteRowCap(t *testing.T, e engineUnderTest) {
	d := e.d
	dec := decision(d, rows, nil)
	dec.RowCap = 100
	for _, tc := range []struct{ limit, want int }{{0, 100}, {10, 10}, {1000, 100}} {
		q := onDataset(d)
		q.Limit = uint64(tc.limit)
		sql, args, err := e.compile(q, dec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, got := e.query(t, sql, args); len(got) != tc.want {
			t.Errorf("limit %d under cap 100: %d rows, want %d", tc.limit, len(got), tc.want)
		}
		if _, got := e.runQuery(t, q, dec, nil); len(got) != tc.want {
			t.Errorf("run: limit %d under cap 100: %d rows, want %d", tc.limit, len(got), tc.want)
		}
	}
	dec.RowCap = 0
	if _, _, err := e.compile(onDataset(d), dec, Options{}); err == nil {
		t.Error("row decision without a cap compiled")
	}
	if _, err := e.run(context.Background(), onDataset(d), dec, nil); err == nil {
		t.Error("row decision without a cap ran")
	}
}

func suiteRun(t *testing.T, e engineUnderTest) {
	d := e.d
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, "person_id", "people")}
	q.GroupBy = []string{"district"}
	q.OrderBy = []*yrdv1.OrderItem{{Key: &yrdv1.OrderItem_Column{Column: "district"}}}
	_, got := e.runQuery(t, q, decision(d, aggs, nil), nil)
	var total int64
	for _, r := range got {
		total += r[1].(int64)
	}
	if total != testRows {
		t.Errorf("%d people over all districts, want %d", total, testRows)
	}
}

// suiteConcurrentQueries runs a total count 8 times and a per-district
// count of distinct people 32 times at once, through Run.
func suiteConcurrentQueries(t *testing.T, e engineUnderTest) {
	d := e.d
	count := onDataset(d)
	count.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
	perDistrict := onDataset(d)
	perDistrict.Select = []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, "person_id", "people")}
	perDistrict.GroupBy = []string{"district"}
	dec := decision(d, aggs, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		q, people := count, 0
		if i >= 8 {
			q, people = perDistrict, 1
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.run(context.Background(), q, dec, nil)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			var total, n int64
			for r.Next() {
				total += r.Values()[people].(int64)
				n++
			}
			if err := r.Err(); err != nil {
				errs <- err
			} else if total != testRows || (q == count && n != 1) {
				errs <- fmt.Errorf("total %d in %d rows, want %d", total, n, testRows)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
