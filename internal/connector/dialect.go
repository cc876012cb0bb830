package connector

import (
	"encoding/hex"
	"regexp"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// dialect is everything the compiler asks of the engine that will run a
// statement: what DuckDB and PostgreSQL spell differently. The compiler
// writes each statement once, in the dialect of its engine; nothing
// rewrites the text afterwards.
//
// The contract: expressions given to a method are SQL the compiler wrote,
// never requester text; catalog types are the catalog's names (VARCHAR,
// DOUBLE, DECIMAL, …); whatever a method returns is SQL that binds
// nothing itself (values are bound through placeholder, in text order).
type dialect interface {
	// ident quotes an identifier.
	ident(name string) string
	// placeholder is the text standing for the n-th bound value (from 1),
	// v; it fails for a Go type the compiler never binds.
	placeholder(n int, v any) (string, error)
	// typeName is the engine's type a catalog type is read as.
	typeName(catalogType string) (string, bool)
	// valueText is expr, of catalogType, as text that is the same on
	// every engine for the same value: what a pseudonym hashes.
	valueText(expr, catalogType string) string
	// keyedHash is the pseudonym of text under key (a placeholder bound
	// to the key's hex): the first 16 hex digits of sha256(key || text).
	keyedHash(key, text string) string
	// sketchSeed is the value bound for a sketch's seed, and sketchHash
	// the 64-bit keyed hash of the person key expr under that seed (a
	// placeholder): NULL for a NULL key.
	sketchSeed(seed []byte) any
	sketchHash(expr, seed string) string
	// listAgg aggregates expr's values of a group into a list.
	listAgg(expr string) string
	// defaultName is the name the engine gives an unaliased aggregate in
	// the plain plan, when the engine did not say (see Options.names).
	defaultName(a *yrdv1.AggregateCall) string
	// with is the text that precedes the statement so that d's rows read
	// as a relation named like d's id, with the catalog's columns and
	// types; empty where the engine has such a view already.
	with(d *yrdv1.Dataset) (string, error)
}

// duckDialect is DuckDB's SQL. Datasets are views (see viewSQL) and
// parameters are positional "?".
type duckDialect struct{}

func (duckDialect) ident(name string) string { return quoteIdent(name) }

func (duckDialect) placeholder(int, any) (string, error) { return "?", nil }

func (duckDialect) typeName(catalogType string) (string, bool) { return duckType(catalogType) }

// valueText is DuckDB's own text of a value, which PostgreSQL imitates
// (see pgDialect.valueText).
func (duckDialect) valueText(expr, _ string) string { return "CAST(" + expr + " AS VARCHAR)" }

func (duckDialect) keyedHash(key, text string) string {
	return "substr(sha256(" + key + " || " + text + "), 1, 16)"
}

// sketchSeed goes in as hex text: hash() takes any value, and hex keeps
// arbitrary seed bytes valid UTF-8.
func (duckDialect) sketchSeed(seed []byte) any { return hex.EncodeToString(seed) }

// sketchHash guards NULL: DuckDB hashes NULL to a constant, and || with
// NULL is NULL.
func (duckDialect) sketchHash(expr, seed string) string {
	return "CASE WHEN " + expr + " IS NULL THEN NULL ELSE hash(" + seed + " || CAST(" + expr + " AS VARCHAR)) END"
}

func (duckDialect) listAgg(expr string) string { return "list(" + expr + ")" }

// plainIdentRE is an identifier DuckDB writes unquoted in a column name.
var plainIdentRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// defaultName follows DuckDB's naming by the expression's text, for a
// plainly named column and no sum bound (Plan on a DuckDB asks DuckDB
// instead): the call as the querylang table writes it, count(*) aside.
func (duckDialect) defaultName(a *yrdv1.AggregateCall) string {
	if a.GetColumn() == "" {
		return "count_star()"
	}
	col := a.GetColumn()
	if !plainIdentRE.MatchString(col) {
		col = quoteIdent(col)
	}
	return aggregateOf(a).Call(col)
}

func (duckDialect) with(*yrdv1.Dataset) (string, error) { return "", nil }

// cast is expr cast to the engine's type for catalogType. An unknown
// type leaves the type out, which the engine refuses; the compiler only
// casts to catalog types a check accepted.
func cast(dl dialect, expr, catalogType string) string {
	t, _ := dl.typeName(catalogType)
	return "CAST(" + expr + " AS " + t + ")"
}
