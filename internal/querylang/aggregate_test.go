package querylang_test

import (
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	count         = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT
	countDistinct = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT
	sum           = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM
	avg           = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG
	minFn         = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN
	maxFn         = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX
)

// TestEveryFunctionOnce checks that the table has each enum value but
// UNSPECIFIED exactly once, in enum order (AggregateOf indexes by it).
func TestEveryFunctionOnce(t *testing.T) {
	table := querylang.Aggregates()
	seen := map[yrdv1.AggregateFunction]int{}
	for i, a := range table {
		seen[a.Function]++
		if int(a.Function) != i+1 {
			t.Errorf("entry %d is %v, want enum value %d", i, a.Function, i+1)
		}
	}
	for v := range yrdv1.AggregateFunction_name {
		fn := yrdv1.AggregateFunction(v)
		want := 1
		if fn == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_UNSPECIFIED {
			want = 0
		}
		if seen[fn] != want {
			t.Errorf("%v is in the table %d times, want %d", fn, seen[fn], want)
		}
		if a, ok := querylang.AggregateOf(fn); ok != (want == 1) || ok && a.Function != fn {
			t.Errorf("AggregateOf(%v) = %v, %v", fn, a.Function, ok)
		}
	}
	if len(table) != len(yrdv1.AggregateFunction_name)-1 {
		t.Errorf("table has %d entries, the enum %d values", len(table), len(yrdv1.AggregateFunction_name))
	}
	for _, fn := range []yrdv1.AggregateFunction{-1, 0, 7, 1000} {
		if _, ok := querylang.AggregateOf(fn); ok {
			t.Errorf("AggregateOf(%d) found an entry", fn)
		}
	}
}

// TestAggregateNamesRoundTrip checks that each entry is found again by its
// key and by its SQL spelling, and that no two entries share either.
func TestAggregateNamesRoundTrip(t *testing.T) {
	keys, written := map[string]bool{}, map[string]bool{}
	for _, a := range querylang.Aggregates() {
		if b, ok := querylang.AggregateByKey(a.Key); !ok || b != a {
			t.Errorf("AggregateByKey(%q) = %v, %v; want %v", a.Key, b.Function, ok, a.Function)
		}
		if b, ok := querylang.AggregateWritten(a.SQL, a.Distinct); !ok || b != a {
			t.Errorf("AggregateWritten(%q, %v) = %v, %v; want %v", a.SQL, a.Distinct, b.Function, ok, a.Function)
		}
		w := a.Call("x")
		if keys[a.Key] || written[w] {
			t.Errorf("%v: key %q or call %q is not unique", a.Function, a.Key, w)
		}
		keys[a.Key], written[w] = true, true
	}
	for _, bad := range []struct {
		name     string
		distinct bool
	}{{"sum", true}, {"median", false}, {"COUNT", false}, {"", false}, {"count_distinct", false}} {
		if a, ok := querylang.AggregateWritten(bad.name, bad.distinct); ok {
			t.Errorf("AggregateWritten(%q, %v) = %v, want none", bad.name, bad.distinct, a.Function)
		}
	}
	if a, ok := querylang.AggregateByKey("median"); ok {
		t.Errorf("AggregateByKey(median) = %v", a.Function)
	}
}

// TestCountDistinctKey pins the canonical name of count(DISTINCT x):
// access requests, their audit fingerprints and noise measurements carry
// it, so it is "count_distinct" (what node wrote before the table), never
// the SQL name "count".
func TestCountDistinctKey(t *testing.T) {
	a, _ := querylang.AggregateOf(countDistinct)
	if a.Key != "count_distinct" || a.SQL != "count" || !a.Distinct {
		t.Errorf("count distinct: key %q, SQL %q, distinct %v", a.Key, a.SQL, a.Distinct)
	}
}

func TestCall(t *testing.T) {
	for _, c := range []struct {
		fn   yrdv1.AggregateFunction
		arg  string
		want string
	}{
		{count, "", "count(*)"},
		{count, `"x"`, `count("x")`},
		{countDistinct, "x", "count(DISTINCT x)"},
		{countDistinct, "", "count(DISTINCT )"},
		{sum, "age", "sum(age)"},
		{avg, "age", "avg(age)"},
		{minFn, "age", "min(age)"},
		{maxFn, "age", "max(age)"},
	} {
		a, _ := querylang.AggregateOf(c.fn)
		if got := a.Call(c.arg); got != c.want {
			t.Errorf("%v.Call(%q) = %q, want %q", c.fn, c.arg, got, c.want)
		}
	}
}

func TestLists(t *testing.T) {
	// policy's message and sqlq's hint, as they read before the table.
	if got, want := querylang.Keys(), "count, count_distinct, sum, avg, min, max"; got != want {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	if got, want := querylang.WrittenNames(), "count, sum, avg, min, max"; got != want {
		t.Errorf("WrittenNames() = %q, want %q", got, want)
	}
}

func TestResultType(t *testing.T) {
	for _, c := range []struct {
		fn      yrdv1.AggregateFunction
		arg     string
		clamped bool
		want    string
	}{
		{count, "VARCHAR", false, "BIGINT"},
		{countDistinct, "DATE", true, "BIGINT"},
		{sum, "BIGINT", false, "BIGINT"},
		{sum, "BIGINT", true, "DOUBLE"},
		{avg, "BIGINT", false, "DOUBLE"},
		{minFn, "DATE", true, "DATE"},
		{maxFn, "VARCHAR", false, "VARCHAR"},
	} {
		a, _ := querylang.AggregateOf(c.fn)
		if got := a.ResultType(c.arg, c.clamped); got != c.want {
			t.Errorf("%v.ResultType(%s, %v) = %s, want %s", c.fn, c.arg, c.clamped, got, c.want)
		}
	}
}

func TestNumericType(t *testing.T) {
	for typ, want := range map[string]bool{"INTEGER": true, "bigint": true, "Double": true, "DECIMAL": true,
		"VARCHAR": false, "DATE": false, "TIMESTAMP": false, "BOOLEAN": false, "": false} {
		if got := querylang.NumericType(typ); got != want {
			t.Errorf("NumericType(%q) = %v", typ, got)
		}
	}
}
