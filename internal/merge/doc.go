// Package merge answers a query on a dataset family (Query.source =
// family) from the partial results of every city that owns a dataset of
// the family's standard schema.
//
// A family query fans out: each owner runs a partial query on its own
// dataset, under its own policy (k-suppression, masking, row caps), and
// the requester's home node merges what the owners released. [Plan]
// checks that the query can be merged exactly and builds a [*Merge];
// [Merge.Partial] is the query each owner runs; [Merge.Add] takes one
// owner's released result; [Merge.Result] is the merged answer, with the
// columns, names and order the requester would get from one dataset
// holding every owner's rows (internal/connector's semantics). The
// package does no I/O.
//
// # Aggregate queries
//
// An aggregate query (any aggregate or GROUP BY) is split into
// decomposable parts; what merges across cities, and how, is
// internal/querylang's table. count, sum, min and max are kept as they are;
// avg(x) becomes sum(x) and count(x), in hidden helper columns with
// reserved aliases (__yrd_sum_N and __yrd_count_N, N the avg's 1-based
// select position), and is their quotient after merging: the weighted
// mean over all cities, not a mean of the cities' means. GROUP BY columns
// the requester did not select are added as hidden columns
// (__yrd_group_N, N the 1-based GROUP BY position). ORDER BY and LIMIT
// are taken out of the partial query and applied to the merged groups,
// since each owner's top N of its partial aggregates is not the top N of
// the merged ones. count(DISTINCT x) is refused ([ErrNotMergeable]): the
// same value may be counted by several owners, and the distinct values
// themselves are not released.
//
// Groups are merged by the values of the GROUP BY columns, compared by
// kind and value; NULL is a group of its own. count adds counts; sum adds
// sums, integers exactly (a total beyond BIGINT is [ErrOverflow], never a
// wrapped number) and doubles as doubles, ignoring NULL sums and giving
// NULL when every owner's is NULL; min and max take the least and
// greatest non-NULL value; avg is total sum / total count, NULL when the
// count is 0.
//
// An owner releases no row for a group it suppressed, so a merged group
// combines only the owners that released it; its figures cover those
// owners' data. A global aggregate (no GROUP BY) gives one row combining
// the owners that returned one, and no row at all when none did: a count
// of 0 made up for owners that suppressed their answer would be false.
//
// # Row queries
//
// A row query (no aggregate, no GROUP BY) runs as written at every owner,
// ORDER BY and LIMIT included, since the overall top N is among the
// owners' top Ns. An ORDER BY column that is not selected is added as a
// hidden column (__yrd_order_N, N the 1-based ORDER BY position) so the
// merged rows can be sorted. The merged rows are the owners' rows in
// the order of their owners (city names or dataset ids, see
// [Merge.Add]), each owner's in the order received, then sorted by the
// ORDER BY keys (a stable sort) and cut to LIMIT. That the owners' top Ns
// hold the overall top N assumes every owner orders as the merge does
// (below), NULLs and string collation included.
//
// # Order
//
// Sorting follows DuckDB's defaults: NULLs last, ascending and
// descending alike (DuckDB's default_null_order has been nulls_last since
// 0.8; checked against the linked DuckDB 1.5.6), strings by bytes,
// false before true, NaN above every other double. Timestamps that parse
// as RFC 3339 compare as instants, dates as text. Merged groups that tie
// on every ORDER BY key, or all of them when there is no ORDER BY, are in
// GROUP BY key order, so a result never depends on which owner answered
// first.
//
// # Names
//
// Result columns are named as DuckDB names them for one dataset: the
// alias, else the column's name, else DuckDB's default for the aggregate
// (count_star(), sum(age), avg("year") with the name quoted where DuckDB
// quotes it). The name never depends on the owners' engines, whose
// defaults differ (PostgreSQL calls sum(age) "sum"). Aliases beginning
// with __yrd_ are reserved for the helper columns.
package merge
