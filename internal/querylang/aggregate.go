package querylang

import (
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Aggregate is what one aggregate function means, everywhere a query goes.
// The fields are facts; each consumer derives its behaviour from them (see
// the package doc for who reads which).
type Aggregate struct {
	// Function is the wire enum.
	Function yrdv1.AggregateFunction
	// Key is the canonical name: the function of an access request
	// (yrd.v1.Aggregate.function, which the policy decides on and the
	// audit log fingerprints) and the name of a noise measurement, e.g.
	// "count_distinct(person_id)". It is never SQL.
	Key string
	// SQL is the function's name as SQL writes it, e.g. "count" for
	// count(DISTINCT x); with Distinct, the pair is what a requester wrote.
	SQL string
	// Distinct says the call is written with DISTINCT before its argument.
	Distinct bool
	// StarAllowed says the argument may be '*' (an empty column): count(*).
	StarAllowed bool
	// Numeric says the argument must be of a numeric type (NumericType).
	Numeric bool
	// ReadsValues says the aggregate computes on the argument's values, so
	// the owner needs them raw; counting needs only that a value is there.
	ReadsValues bool
	// RevealsValue says the result is one row's value (min, max), which
	// over personal information is one person's value.
	RevealsValue bool
	// Result is the type of the result.
	Result Result
	// Merge is how the values of one group's parts combine.
	Merge Merge
	// AcrossCities says Merge is exact over parts from different cities.
	// A distinct count is not: one value may be counted by several
	// cities; with one part (one city's dataset) it merges as Merge says.
	AcrossCities bool
	// Noise is how calibrated noise applies to the aggregate.
	Noise Noise
}

// Result is the type of an aggregate's result.
type Result uint8

const (
	// ResultCount is a count: BIGINT, never NULL.
	ResultCount Result = iota + 1
	// ResultDouble is DOUBLE whatever the argument (avg).
	ResultDouble
	// ResultSum is the argument's numeric type, BIGINT or DOUBLE, and
	// DOUBLE when the argument is clamped to a sum bound (sum).
	ResultSum
	// ResultArgument is the argument's own type (min, max).
	ResultArgument
)

// Merge is how the partial values of one group combine into its value.
type Merge uint8

const (
	// MergeAdd adds the parts' values (counts and sums).
	MergeAdd Merge = iota + 1
	// MergeMin takes the least non-NULL value.
	MergeMin
	// MergeMax takes the greatest non-NULL value.
	MergeMax
	// MergeAverage divides the added sums by the added counts: the parts
	// carry a sum and a count, not the average.
	MergeAverage
)

// Noise is how calibrated noise applies to an aggregate.
type Noise uint8

const (
	// NoiseNone: the aggregate cannot carry calibrated noise, as one
	// individual's effect on it is unbounded; a noisy decision refuses it.
	NoiseNone Noise = iota
	// NoiseCount: noise scaled to a count's sensitivity of one.
	NoiseCount
	// NoiseBoundedSum: noise scaled to the declared bound its argument is
	// clamped to (sum_bound).
	NoiseBoundedSum
	// NoiseParts: the aggregate is computed from noisy parts, a bounded
	// sum over a count (avg), so it needs the sum's bound too.
	NoiseParts
)

// aggregates is the table: one entry per AggregateFunction but
// UNSPECIFIED, in enum order.
var aggregates = [...]Aggregate{
	{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, Key: "count", SQL: "count",
		StarAllowed: true, Result: ResultCount, Merge: MergeAdd, AcrossCities: true, Noise: NoiseCount},
	{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, Key: "count_distinct", SQL: "count", Distinct: true,
		Result: ResultCount, Merge: MergeAdd, Noise: NoiseCount},
	{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, Key: "sum", SQL: "sum",
		Numeric: true, ReadsValues: true, Result: ResultSum, Merge: MergeAdd, AcrossCities: true, Noise: NoiseBoundedSum},
	{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG, Key: "avg", SQL: "avg",
		Numeric: true, ReadsValues: true, Result: ResultDouble, Merge: MergeAverage, AcrossCities: true, Noise: NoiseParts},
	{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, Key: "min", SQL: "min",
		ReadsValues: true, RevealsValue: true, Result: ResultArgument, Merge: MergeMin, AcrossCities: true},
	{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX, Key: "max", SQL: "max",
		ReadsValues: true, RevealsValue: true, Result: ResultArgument, Merge: MergeMax, AcrossCities: true},
}

// Aggregates returns the table, in enum order; the caller may keep it.
func Aggregates() []Aggregate { return append([]Aggregate(nil), aggregates[:]...) }

// AggregateOf is the entry of fn; false for UNSPECIFIED and unknown values.
func AggregateOf(fn yrdv1.AggregateFunction) (Aggregate, bool) {
	// The table is in enum order from 1, which the tests check.
	if i := int(fn) - 1; i >= 0 && i < len(aggregates) {
		return aggregates[i], true
	}
	return Aggregate{}, false
}

// AggregateByKey is the entry whose Key is key, e.g. "count_distinct".
func AggregateByKey(key string) (Aggregate, bool) {
	for i := range aggregates { // by index: no copy of the entries passed over
		if aggregates[i].Key == key {
			return aggregates[i], true
		}
	}
	return Aggregate{}, false
}

// AggregateWritten is the entry a requester means by the SQL function
// name (lower case) and whether DISTINCT precedes the argument: ("count",
// true) is count(DISTINCT x). False for a name or a DISTINCT the language
// does not have.
func AggregateWritten(name string, distinct bool) (Aggregate, bool) {
	for i := range aggregates {
		if aggregates[i].SQL == name && aggregates[i].Distinct == distinct {
			return aggregates[i], true
		}
	}
	return Aggregate{}, false
}

// Keys lists the canonical names, comma-separated in table order, for
// messages: "count, count_distinct, sum, avg, min, max".
func Keys() string {
	keys := make([]string, len(aggregates))
	for i, a := range aggregates {
		keys[i] = a.Key
	}
	return strings.Join(keys, ", ")
}

// WrittenNames lists the SQL function names, each once, comma-separated
// in table order, for messages: "count, sum, avg, min, max".
func WrittenNames() string {
	var names []string
	for _, a := range aggregates {
		if !a.Distinct {
			names = append(names, a.SQL)
		}
	}
	return strings.Join(names, ", ")
}

// Star reports whether a call with this column argument is a '*' call:
// an empty column where '*' is allowed.
func (a Aggregate) Star(column string) bool { return a.StarAllowed && column == "" }

// Call writes the call as SQL: name(arg), count(DISTINCT arg), or
// count(*) for an empty arg where '*' is allowed. The caller quotes arg
// as its context quotes names.
func (a Aggregate) Call(arg string) string {
	if arg == "" && a.StarAllowed {
		arg = "*"
	}
	if a.Distinct {
		return a.SQL + "(DISTINCT " + arg + ")"
	}
	return a.SQL + "(" + arg + ")"
}

// NeedsSumBound reports whether noise on the aggregate is scaled to a
// declared bound its argument is clamped to: a sum, and an avg through its
// sum. The owner clamps exactly these arguments when a bound applies.
func (a Aggregate) NeedsSumBound() bool {
	return a.Noise == NoiseBoundedSum || a.Noise == NoiseParts
}

// ResultType is the SQL type of the result, given the argument's result
// type and whether the argument is clamped to a sum bound (which makes a
// sum a DOUBLE).
func (a Aggregate) ResultType(argType string, clamped bool) string {
	switch a.Result {
	case ResultCount:
		return "BIGINT"
	case ResultDouble:
		return "DOUBLE"
	case ResultSum:
		if clamped {
			return "DOUBLE"
		}
	}
	return argType
}

// NumericType reports whether a catalog column type is numeric, which a
// Numeric aggregate's argument must be.
func NumericType(typ string) bool {
	switch strings.ToUpper(typ) {
	case "INTEGER", "BIGINT", "DOUBLE", "DECIMAL":
		return true
	}
	return false
}
