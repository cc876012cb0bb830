package querylang_test

import (
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The expectations below are what each part of the query path hard-coded
// before the table (commit 16a316a), copied from its switches and maps, so
// that reading the table instead changes nothing.

// TestWhatTheNamesWere: node/query_plan.go aggregateName (the access
// request's function, and node/aggregate.go's noise measurement names);
// sqlq/format.go aggregateNames and merge/names.go funcName (the SQL name,
// count for both counts); sqlq/parse.go aggregates (the written names).
func TestWhatTheNamesWere(t *testing.T) {
	for fn, want := range map[yrdv1.AggregateFunction]struct{ key, sql string }{
		count:         {"count", "count"},
		countDistinct: {"count_distinct", "count"},
		sum:           {"sum", "sum"},
		avg:           {"avg", "avg"},
		minFn:         {"min", "min"},
		maxFn:         {"max", "max"},
	} {
		a, _ := querylang.AggregateOf(fn)
		if a.Key != want.key || a.SQL != want.sql {
			t.Errorf("%v: key %q, SQL %q; want %q, %q", fn, a.Key, a.SQL, want.key, want.sql)
		}
	}
	parsed := map[string]yrdv1.AggregateFunction{"count": count, "sum": sum, "avg": avg, "min": minFn, "max": maxFn}
	for name, fn := range parsed {
		if a, ok := querylang.AggregateWritten(name, false); !ok || a.Function != fn {
			t.Errorf("AggregateWritten(%q) = %v, want %v", name, a.Function, fn)
		}
	}
	// sqlq/parse.go: DISTINCT only as count(DISTINCT column).
	for name := range parsed {
		a, ok := querylang.AggregateWritten(name, true)
		if want := name == "count"; ok != want || ok && a.Function != countDistinct {
			t.Errorf("AggregateWritten(%q, DISTINCT) = %v, %v", name, a.Function, ok)
		}
	}
}

// TestWhatTheArgumentsWere: sqlq/parse.go ("only count accepts '*'"),
// policy/validate.go (only count may omit the column; sum and avg need a
// numeric one), connector/compile.go checkAggregate (only COUNT without a
// column; sum, avg, min and max need the RAW column; sum and avg a
// numeric type) and aggregateSQL (sum and avg are clamped to the bound).
func TestWhatTheArgumentsWere(t *testing.T) {
	type args struct{ star, numeric, raw, clamped bool }
	for fn, want := range map[yrdv1.AggregateFunction]args{
		count:         {star: true},
		countDistinct: {},
		sum:           {numeric: true, raw: true, clamped: true},
		avg:           {numeric: true, raw: true, clamped: true},
		minFn:         {raw: true},
		maxFn:         {raw: true},
	} {
		a, _ := querylang.AggregateOf(fn)
		if got := (args{a.StarAllowed, a.Numeric, a.ReadsValues, a.NeedsSumBound()}); got != want {
			t.Errorf("%v: %+v, want %+v", fn, got, want)
		}
	}
}

// TestWhatThePolicyDid: policy/rules.go (min and max over personal
// information reveal a value) and policy/noise.go noiseGate (min and max
// cannot carry noise; sum and avg need a declared bound; counts need
// nothing); node/aggregate.go planAggregates (counts get a count's scale,
// sum a sum's, anything else on a partial is an error).
func TestWhatThePolicyDid(t *testing.T) {
	type rules struct {
		reveals bool
		noise   querylang.Noise
	}
	for fn, want := range map[yrdv1.AggregateFunction]rules{
		count:         {noise: querylang.NoiseCount},
		countDistinct: {noise: querylang.NoiseCount},
		sum:           {noise: querylang.NoiseBoundedSum},
		avg:           {noise: querylang.NoiseParts},
		minFn:         {reveals: true, noise: querylang.NoiseNone},
		maxFn:         {reveals: true, noise: querylang.NoiseNone},
	} {
		a, _ := querylang.AggregateOf(fn)
		if got := (rules{a.RevealsValue, a.Noise}); got != want {
			t.Errorf("%v: %+v, want %+v", fn, got, want)
		}
	}
}

// TestWhatTheMergeDid: merge/plan.go (count distinct is refused across
// cities; counts merge as BIGINT counts, sum adds BIGINT or DOUBLE, min
// and max keep the partial's type, avg is a sum over a count) and
// node/results.go resultColumns (counts BIGINT, avg DOUBLE, sum the
// argument's type or DOUBLE when bounded, min and max the argument's).
func TestWhatTheMergeDid(t *testing.T) {
	type merging struct {
		across bool
		merge  querylang.Merge
		result querylang.Result
	}
	for fn, want := range map[yrdv1.AggregateFunction]merging{
		count:         {true, querylang.MergeAdd, querylang.ResultCount},
		countDistinct: {false, querylang.MergeAdd, querylang.ResultCount},
		sum:           {true, querylang.MergeAdd, querylang.ResultSum},
		avg:           {true, querylang.MergeAverage, querylang.ResultDouble},
		minFn:         {true, querylang.MergeMin, querylang.ResultArgument},
		maxFn:         {true, querylang.MergeMax, querylang.ResultArgument},
	} {
		a, _ := querylang.AggregateOf(fn)
		if got := (merging{a.AcrossCities, a.Merge, a.Result}); got != want {
			t.Errorf("%v: %+v, want %+v", fn, got, want)
		}
	}
}

// TestWhatTheSQLWas: connector/compile.go aggregateSQL and
// sqlq/format.go writeAggregate.
func TestWhatTheSQLWas(t *testing.T) {
	for fn, want := range map[yrdv1.AggregateFunction]string{
		count: `count("c")`, countDistinct: `count(DISTINCT "c")`, sum: `sum("c")`,
		avg: `avg("c")`, minFn: `min("c")`, maxFn: `max("c")`,
	} {
		a, _ := querylang.AggregateOf(fn)
		if got := a.Call(`"c"`); got != want {
			t.Errorf("%v: %s, want %s", fn, got, want)
		}
	}
	if a, _ := querylang.AggregateOf(count); a.Call("") != "count(*)" || !a.Star("") || a.Star("c") {
		t.Errorf("count(*) is not written as count(*)")
	}
}
