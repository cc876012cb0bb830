// Package querylang is the one table of what the query language means:
// for each aggregate function, its names, how it is written, what it
// takes, its result type, how it merges and how noise applies; for each
// comparison operator, how it is written and how it flips. It is pure: it
// imports only the standard library and the wire types.
//
// Each part of the query path reads the table instead of keeping its own
// switch, so that adding an aggregate means adding one entry here (and the
// code that computes it), and no two parts can disagree on a name.
//
// # Names
//
// An aggregate has two names. [Aggregate.Key] is the canonical one:
// "count_distinct" for count(DISTINCT x). It is what an access request
// carries (yrd.v1.Aggregate.function), what the policy decides on, what
// the audit log fingerprints and what a noise measurement is called
// ("count_distinct(person_id)"); it must never change for an existing
// function. [Aggregate.SQL] with [Aggregate.Distinct] is how SQL writes
// the call, "count" and DISTINCT; [Aggregate.Call] writes it.
//
// # Who reads what
//
// The parser (internal/sqlq) maps a written function name and DISTINCT to
// a function with [AggregateWritten], refuses '*' unless
// [Aggregate.StarAllowed] and reads comparison operators with
// [ComparisonWritten], turning "5 < age" round with
// [Comparison.Flipped]. Format writes calls with [Aggregate.Call] and
// operators with [ComparisonOf].
//
// The policy (internal/policy) validates an access request's functions
// with [AggregateByKey] and [Keys], requires a column unless
// [Aggregate.StarAllowed] and a numeric one where [Aggregate.Numeric]
// ([NumericType]); it refuses [Aggregate.RevealsValue] aggregates over
// personal information, and under noise refuses [NoiseNone] aggregates
// and asks a declared bound of those that [Aggregate.NeedsSumBound].
//
// The planner of a family or noisy query (internal/merge) refuses
// aggregates that are not [Aggregate.AcrossCities] when there are several
// parts, decomposes a [MergeAverage] aggregate into a sum and a count,
// expects each partial column of the type [Aggregate.Result] gives, and
// names an unaliased result column from [Aggregate.SQL]. The merger
// combines each group's parts as [Aggregate.Merge] says.
//
// The compiler (internal/connector) reads [Aggregate.Call] for the SQL of an
// aggregate (count(*), count(DISTINCT "x")), [Aggregate.ReadsValues] for
// the aggregates that need a RAW column, [Aggregate.Numeric] with
// [NumericType] for its type, [Aggregate.NeedsSumBound] for the arguments
// it clamps to a sum bound, and [Comparison.SQL] for operators. The
// owner's pipeline (internal/owner) reads [Aggregate.Key] for an access
// request and a noise measurement's name, [Aggregate.ResultType] for a
// result column's type and [Aggregate.Noise] for the scale of the noise
// on a partial column ([NoiseCount] or [NoiseBoundedSum]; a partial query
// never holds a [NoiseParts] aggregate, which the merge decomposed).
//
// Lookups return entries by value, so a caller cannot change the table.
package querylang
