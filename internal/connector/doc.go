// Package connector runs queries where the data lives: it maps catalog
// datasets to the node's local raw files (CSV, Parquet, JSON) through an
// embedded, in-memory DuckDB, checks that the local files still match the
// catalog schema before serving them, and compiles a structured query
// (yrdv1.Query) into parameterised SQL that enforces the policy decision
// in the plan itself, so only what the rules permit ever leaves the node.
//
// Nothing a requester writes is spliced into SQL: identifiers come from
// the catalog schema and are quoted, every literal is a bound parameter.
//
// For the owner's difference checks, Options.Sketch makes an aggregate
// plan also return, per released group, its distinct individuals and a
// linear sketch of their set (see SketchOptions), computed in the same
// scan.
//
// Engines plan a query into a Statement (its SQL, bound values, and how
// its rows become the result) and run it: a total of counts comes from the
// engine as one row per sketch cell and the Statement folds them, which
// spares DuckDB a second aggregation level. DuckDB keeps its prepared
// statements by SQL text, since the values are parameters and a node runs
// the same few plan shapes again and again.
//
// DESIGN.md describes how a decision becomes SQL, the SQL dialects, the
// pseudonym keys and how k-suppression is counted.
package connector
