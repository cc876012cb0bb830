// Package sqlq is yrdnode's query language: a small SQL subset that a
// requester writes, parsed into a structured [yrdv1.Query].
//
// The structured message, not the text, is what travels: the policy
// decides on it, the audit trail records it, and each owner node plans its
// own backend query from it, binding every literal as a parameter. This
// package therefore produces only the message. It never produces backend
// SQL, and no requester text is ever spliced into SQL anywhere.
//
// # Grammar
//
// Keywords are case-insensitive. Unquoted names are folded to lower case,
// as in PostgreSQL; a double-quoted name is taken as written ("" stands for
// a double quote inside it).
//
//	query     = SELECT items FROM source [WHERE or] [GROUP BY name {, name}]
//	            [ORDER BY key [ASC|DESC] {, key [ASC|DESC]}] [LIMIT integer] [;]
//	items     = * | item {, item}                  (* alone: all columns)
//	item      = (name | aggregate) [AS name]
//	aggregate = count(*) | count(DISTINCT name) | (count|sum|avg|min|max)(name)
//	source    = dataset-id | "dataset-id" | family:standard-schema-id
//	key       = name | alias | position | aggregate (one in the select list)
//	or        = and {OR and}
//	and       = not {AND not}
//	not       = NOT not | ( or ) | predicate
//	predicate = name op literal | literal op name
//	          | name [NOT] IN ( literal {, literal} )
//	          | name [NOT] BETWEEN literal AND literal
//	          | name IS [NOT] NULL
//	op        = = | <> | != | < | <= | > | >=
//	literal   = 'string' | [+|-]integer | [+|-]decimal | TRUE | FALSE
//	          | DATE 'YYYY-MM-DD' | TIMESTAMP 'RFC 3339'
//	name      = [a-z_][a-z0-9_]* (any case, not reserved) | "quoted"
//
// The aggregate names, which of them take '*' or DISTINCT, and the
// operators with their flips are internal/querylang's table, which Parse
// and Format read.
//
// What follows FROM is lexed on its own terms, because dataset ids
// ("shanghai.civil-affairs.elderly-population") contain hyphens. A run of
// id characters is taken whole, so a -- comment must be separated from an
// id by a space. Ids are checked with the catalog's rules
// ([catalogspec.ValidateID]); family references with the rule for
// standard_schema_id.
//
// In a string, a doubled single quote stands for one. A number without a
// point or an exponent is an int64 literal, any other (2.5, 1.5e3) a
// double. DATE and TIMESTAMP values are checked and then kept as written.
// -- comments run to the end of a line.
//
// The reserved words, which must be double-quoted to serve as names, are
// SELECT FROM WHERE GROUP ORDER LIMIT HAVING OFFSET UNION INTERSECT
// EXCEPT AND OR NOT IN BETWEEN IS NULL TRUE FALSE AS ASC DESC DISTINCT
// CASE. Format quotes them where needed.
//
// # Mapping onto the message
//
// "literal op column" is stored turned round ("5 < age" as age > 5), so
// every Comparison has its column on the left. A chain of one operator
// ("a AND b AND c") is one Logical node; parentheses nest, so the tree
// keeps the grouping that was written. "NOT x IN (...)" is a Not over an
// InList, "x NOT IN (...)" a negated InList: both mean the same and both
// round-trip. ORDER BY an alias, a position or an aggregate from the select
// list becomes a select_index (0-based); any other name is a column. An
// alias takes precedence over a column of the same name, as in SQL.
//
// [Format] renders a Query back to canonical text, and Parse(Format(q))
// equals q for every q that Parse returns; the fuzz test holds it to that.
//
// # Rejected
//
// Everything outside the grammar is rejected with a [*SyntaxError] that
// names the line and column (1-based, counted in runes, a tab being one
// column) of the offending token and what was expected there. Among them,
// with messages of their own: JOIN, comma joins, subqueries and WITH
// (a query reads one dataset or one family, which is what the policy and
// the owner's planner reason about); functions other than the five
// aggregates, arithmetic, casts, CASE, LIKE; aggregates in WHERE, HAVING;
// OFFSET, UNION, window functions, NULLS FIRST/LAST; comparisons of two
// columns or two literals, and with NULL; SELECT DISTINCT and table
// aliases; LIMIT 0 (a Query's limit 0 means "no limit").
//
// Text that could not travel or would mislead a reviewer is rejected too:
// invalid UTF-8, control characters, and bidirectional override characters
// (which can make the query shown in the audit trail read differently
// from the one that runs).
//
// Parse bounds its work: at most [MaxQueryBytes] of text,
// [MaxSelectItems] select items and [MaxDepth] levels of NOT and
// parentheses, each an error, not a stack overflow.
//
// # Not checked here
//
// Parse knows no schema. Whether the columns exist, whether literal types
// fit them, whether non-aggregated select items are grouped, and whether
// the policy allows any of it, are for the catalog lookup and the policy.
package sqlq
