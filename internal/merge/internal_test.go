package merge

import (
	"database/sql"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The keyword list is the linked DuckDB's, and default names are the
// names DuckDB gives: for every keyword, and for names that need no
// quotes or need them for other reasons.
func TestKeywordsMatchDuckDB(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT DISTINCT keyword_name FROM duckdb_keywords()")
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		words = append(words, w)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(words)
	if have := slices.Sorted(maps.Keys(duckKeywords)); !slices.Equal(have, words) {
		t.Errorf("duckKeywords has %d words, DuckDB %d; regenerate it from duckdb_keywords()", len(have), len(words))
	}

	names := append(words, "age", "care_level", "_x", "a1", "Age", "Year", "9lives", `odd"name`, "名字", "count_star")
	for _, name := range names {
		q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		r, err := db.Query("SELECT count(*), avg(" + q + "), count(" + q + "), max(" + q + ") FROM (SELECT 1 AS " + q + ") AS t")
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Columns()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			defaultName(&yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT}),
			defaultName(&yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG, Column: name}),
			defaultName(&yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, Column: name}),
			defaultName(&yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX, Column: name}),
		}
		if !slices.Equal(got, want) {
			t.Errorf("column %q: DuckDB names %q, the merge %q", name, got, want)
		}
	}
}

func TestInt128(t *testing.T) {
	for _, tc := range []struct {
		add  []int64
		want int64
		fits bool
		f    float64
	}{
		{nil, 0, true, 0},
		{[]int64{-1}, -1, true, -1},
		{[]int64{math.MaxInt64, 1}, 0, false, 0x1p63},
		{[]int64{math.MaxInt64, math.MaxInt64, -math.MaxInt64}, math.MaxInt64, true, math.MaxInt64},
		{[]int64{math.MinInt64, -1}, 0, false, -0x1p63 - 1},
		{[]int64{math.MinInt64, math.MinInt64, math.MinInt64}, 0, false, -3 * 0x1p63},
		{[]int64{math.MinInt64, math.MinInt64, math.MaxInt64, math.MaxInt64, 2}, 0, true, 0},
	} {
		var x int128
		for _, v := range tc.add {
			x.add(v)
		}
		got, fits := x.int64()
		if fits != tc.fits || fits && got != tc.want {
			t.Errorf("sum of %v: %d, %v", tc.add, got, fits)
		}
		if f := x.float64(); f != tc.f {
			t.Errorf("sum of %v as double: %v, want %v", tc.add, f, tc.f)
		}
	}
}

func TestCompareAndKeys(t *testing.T) {
	str := func(s string) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: s}} }
	dbl := func(f float64) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: f}} }
	in := func(n int64) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: n}} }
	ts := func(s string) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: s}} }
	date := func(s string) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: s}} }
	key := func(vs ...*yrdv1.Value) string {
		var b []byte
		for _, v := range vs {
			b = appendKey(b, v)
		}
		return string(b)
	}
	// Equal in a GROUP BY.
	for _, p := range [][2]*yrdv1.Value{
		{dbl(0), dbl(math.Copysign(0, -1))},
		{dbl(math.NaN()), dbl(-math.NaN())},
		{ts("2024-01-01T00:00:00Z"), ts("2024-01-01T08:00:00+08:00")},
		{&yrdv1.Value{}, nil},
	} {
		if key(p[0]) != key(p[1]) || compareNullsLast(p[0], p[1], false) != 0 {
			t.Errorf("%v and %v differ", p[0], p[1])
		}
	}
	// Different.
	for _, p := range [][2]*yrdv1.Value{
		{in(1), dbl(1)},
		{str("2024-01-01"), date("2024-01-01")},
		{str(""), {}},
		{in(0), {}},
	} {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%v and %v are one group", p[0], p[1])
		}
	}
	// Tuples are self-delimiting.
	if key(str("ab"), str("c")) == key(str("a"), str("bc")) {
		t.Error("('ab', 'c') and ('a', 'bc') are one group")
	}
	// Order.
	for _, p := range [][2]*yrdv1.Value{
		{in(-5), in(3)},
		{dbl(math.Inf(1)), dbl(math.NaN())},
		{str("Z"), str("a")},
		{str("上海"), str("杭州")},
		{{Kind: &yrdv1.Value_BoolValue{}}, {Kind: &yrdv1.Value_BoolValue{BoolValue: true}}},
		{date("2023-12-31"), date("2024-01-01")},
		{ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:00:00.5Z")},
		{in(math.MaxInt64), {}},
	} {
		if compareNullsLast(p[0], p[1], false) >= 0 || compareNullsLast(p[1], p[0], false) <= 0 {
			t.Errorf("%v is not before %v ascending", p[0], p[1])
		}
	}
	if compareNullsLast(&yrdv1.Value{}, in(1), true) <= 0 {
		t.Error("NULL is not last descending")
	}
}
