package connector

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// CompilePostgres is Compile for a dataset kept in table t of a PostgreSQL
// database: the same plan, in PostgreSQL's dialect. The table is read
// through a common table expression named like the dataset, projecting
// the catalog's columns in catalog order cast to the catalog's types (as
// the DuckDB views do), so no column the catalog does not describe is
// ever visible to the query.
func CompilePostgres(d *yrdv1.Dataset, t PGTable, q *yrdv1.Query, dec *yrdv1.Decision, pseudonymKey []byte) (string, []any, error) {
	return CompilePostgresWith(d, t, q, dec, Options{PseudonymKey: pseudonymKey})
}

// CompilePostgresWith is CompilePostgres with the node's options.
func CompilePostgresWith(d *yrdv1.Dataset, t PGTable, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (string, []any, error) {
	o.cellRows = false // the SQL alone is the result
	st, err := compileStatement(pgDialect{table: t}, d, q, dec, o)
	return st.SQL, st.Args, err
}

// pgDialect is PostgreSQL's SQL over the city's table. Each parameter is
// cast to the type of its bound Go value, so the plan does not depend on
// PostgreSQL's parameter type inference (a DOUBLE literal compared with
// an INTEGER column compares as a double, as in DuckDB).
type pgDialect struct {
	table PGTable
}

func (pgDialect) ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func (pgDialect) placeholder(n int, v any) (string, error) {
	p := "$" + strconv.Itoa(n)
	switch v.(type) {
	case string:
		return p + "::text", nil
	case int64:
		return p + "::bigint", nil
	case float64:
		return p + "::double precision", nil
	case bool:
		return p + "::boolean", nil
	}
	return "", fmt.Errorf("connector: postgres: argument %d of unexpected type %T", n, v)
}

func (pgDialect) typeName(catalogType string) (string, bool) { return pgCastType(catalogType) }

// pgCastType is the PostgreSQL type a catalog type is read as. DECIMAL
// is read as DuckDB reads it, DECIMAL(18,4), so values round alike and a
// pseudonymised decimal renders as the same text in both connectors.
func pgCastType(catalogType string) (string, bool) {
	switch strings.ToUpper(catalogType) {
	case "BOOLEAN":
		return "boolean", true
	case "INTEGER":
		return "integer", true
	case "BIGINT":
		return "bigint", true
	case "DOUBLE":
		return "double precision", true
	case "DECIMAL":
		return "numeric(18,4)", true
	case "VARCHAR":
		return "text", true
	case "DATE":
		return "date", true
	case "TIMESTAMP":
		return "timestamp", true
	}
	return "", false
}

// valueText is PostgreSQL's text of a value, which is DuckDB's for every
// catalog type but DOUBLE (see TestPGTextMatchesDuckDB), whose DuckDB
// text pgDoubleText imitates.
func (pgDialect) valueText(expr, catalogType string) string {
	if strings.EqualFold(catalogType, "DOUBLE") {
		return pgDoubleText(expr)
	}
	return "CAST(" + expr + " AS text)"
}

// keyedHash gives DuckDB's pseudonym: sha256 of the UTF-8 text, in hex.
func (pgDialect) keyedHash(key, text string) string {
	return "substr(encode(sha256(convert_to(" + key + " || " + text + ", 'UTF8')), 'hex'), 1, 16)"
}

// sketchSeed is the bigint seed of hashtextextended for seed.
func (pgDialect) sketchSeed(seed []byte) any { return pgSketchSeed(seed) }

// pgSketchSeed is the bigint seed of hashtextextended for seed: the
// first 8 bytes of a SHA-256 of it, big endian.
func pgSketchSeed(seed []byte) int64 {
	h := sha256.Sum256(append([]byte("yrd.sketch.pg-seed\x00"), seed...))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// sketchHash is hashtextextended, which hash partitioning relies on, so
// it does not change across versions. It is strict: NULL for a NULL key.
func (pgDialect) sketchHash(expr, seed string) string {
	return "hashtextextended(CAST(" + expr + " AS text), " + seed + ")"
}

func (pgDialect) listAgg(expr string) string { return "array_agg(" + expr + ")" }

// defaultName: PostgreSQL names a function call by the function, exactly:
// count for count(DISTINCT x) too.
func (pgDialect) defaultName(a *yrdv1.AggregateCall) string { return aggregateOf(a).SQL }

// with reads the city's table under the dataset's id (see
// CompilePostgres).
func (dl pgDialect) with(d *yrdv1.Dataset) (string, error) {
	t := dl.table
	if t.Schema == "" {
		t.Schema = "public"
	}
	cols := d.GetSchema().GetColumns()
	sel := make([]string, len(cols))
	for i, c := range cols {
		typ, ok := pgCastType(c.GetType())
		if !ok {
			return "", fmt.Errorf("connector: dataset %q: column %q has unknown type %q", d.GetId(), c.GetName(), c.GetType())
		}
		id := dl.ident(c.GetName())
		sel[i] = "CAST(" + id + " AS " + typ + ") AS " + id
	}
	return "WITH " + dl.ident(d.GetId()) + " AS (SELECT " + strings.Join(sel, ", ") + " FROM " + pgTableName(t) + ") ", nil
}

// pgDoubleText renders a double precision expression as DuckDB's CAST(x
// AS VARCHAR) does, so a pseudonymised DOUBLE hashes the same text in
// both connectors. Both print the shortest digits that round-trip and
// switch to exponents alike, except that DuckDB writes integral values
// below 1e16 in full with ".0" (45.0, 1000000000000000.0, -0.0) and any
// value below 1e16 without an exponent, while PostgreSQL writes 45 and
// 1e+15, and spells NaN and infinities differently. Above 1e16 a value
// whose shortest form needs 16 or 17 digits may still render
// differently if it is beyond 2^63 (see below).
func pgDoubleText(x string) string {
	t := "CAST(" + x + " AS text)"
	digits := "replace(split_part(ltrim(" + t + ", '-'), 'e', 1), '.', '')"
	// From 1e16 on, PostgreSQL may print more digits than the shortest
	// (-1.1066037372116099e+17 for DuckDB's -1.10660373721161e+17). So
	// the shortest digits are found here: the value rounded to 15, 16 or
	// 17 significant digits, whichever first converts back to it, written
	// in DuckDB's d.ddde+NN form. Below 2^63 the exact value is the
	// bigint; above, only PostgreSQL's 15-digit numeric conversion is at
	// hand, and a value needing more digits keeps PostgreSQL's text.
	sign := "(CASE WHEN " + x + " < 0 THEN '-' ELSE '' END)"
	sci := func(r string) string {
		n := "ltrim(CAST(" + r + " AS text), '-')"
		sig := "rtrim(" + n + ", '0')"
		return sign + " || substr(" + sig + ", 1, 1) ||" +
			" (CASE WHEN length(" + sig + ") > 1 THEN '.' || substr(" + sig + ", 2) ELSE '' END) ||" +
			" 'e+' || CAST(length(" + n + ") - 1 AS text)"
	}
	exact := "CAST(CAST(" + x + " AS bigint) AS numeric)"
	round := func(digits int) string {
		return "round(" + exact + ", " + strconv.Itoa(digits) + " - length(ltrim(CAST(" + exact + " AS text), '-')))"
	}
	back := func(r string) string { return "CAST(" + r + " AS float8) = " + x }
	approx := "CAST(" + x + " AS numeric)"
	huge := " WHEN abs(" + x + ") >= 1e16 AND abs(" + x + ") < 9e18 THEN (CASE" +
		" WHEN " + back(round(15)) + " THEN " + sci(round(15)) +
		" WHEN " + back(round(16)) + " THEN " + sci(round(16)) +
		" ELSE " + sci(round(17)) + " END)" +
		" WHEN abs(" + x + ") >= 9e18 AND abs(" + x + ") < 1e308 THEN" +
		" (CASE WHEN " + back(approx) + " THEN " + sci(approx) + " ELSE " + t + " END)"
	return "(CASE WHEN " + x + " = 'NaN'::float8 THEN 'nan'" +
		" WHEN " + x + " = 'Infinity'::float8 THEN 'inf'" +
		" WHEN " + x + " = '-Infinity'::float8 THEN '-inf'" +
		" WHEN " + x + " = trunc(" + x + ") AND abs(" + x + ") < 1e16 THEN" +
		" (CASE WHEN " + t + " = '-0' THEN '-0' ELSE CAST(CAST(" + x + " AS bigint) AS text) END) || '.0'" +
		" WHEN abs(" + x + ") >= 1e15 AND abs(" + x + ") < 1e16 THEN" +
		" (CASE WHEN " + x + " < 0 THEN '-' ELSE '' END) || substr(" + digits + ", 1, 16) || '.' || substr(" + digits + ", 17)" +
		huge +
		" ELSE " + t + " END)"
}
