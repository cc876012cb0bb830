package merge

import (
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// defaultName is the name DuckDB gives the result column of an aggregate
// that has no alias, as the connector compiles it: count_star() for
// count(*), else the function and its column, e.g. sum(age).
//
// A count(DISTINCT x), which only a single-dataset plan has, is named
// count(x) although DuckDB names it count(DISTINCT x): that is the name
// results have carried so far, and changing it changes what clients
// read, so it is left for a deliberate change.
func defaultName(a *yrdv1.AggregateCall) string {
	agg, ok := querylang.AggregateOf(a.GetFunction())
	if ok && agg.Star(a.GetColumn()) {
		return "count_star()"
	}
	return sqlName(a.GetFunction()) + "(" + duckName(a.GetColumn()) + ")"
}

// duckName writes a column name as DuckDB writes it into a default name:
// as it is when it is a plain identifier (letters of either case, digits,
// '_', not starting with a digit) and no keyword, else double-quoted.
func duckName(s string) string {
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
	}
	if plain {
		if _, kw := duckKeywords[strings.ToLower(s)]; !kw {
			return s
		}
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// sqlName is the function's name as SQL writes it; the enum's name for a
// function the table does not have, for messages.
func sqlName(f yrdv1.AggregateFunction) string {
	if agg, ok := querylang.AggregateOf(f); ok {
		return agg.SQL
	}
	return f.String()
}

// ident writes a column name for a message, quoted unless plain.
func ident(s string) string {
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c == '_' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9'
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// aggText writes an aggregate call as a requester would, e.g.
// count(DISTINCT person_id).
func aggText(a *yrdv1.AggregateCall) string {
	agg, ok := querylang.AggregateOf(a.GetFunction())
	switch {
	case ok && agg.Distinct:
		return agg.Call(ident(a.GetColumn()))
	case a.GetColumn() == "":
		return sqlName(a.GetFunction()) + "(*)"
	}
	return sqlName(a.GetFunction()) + "(" + ident(a.GetColumn()) + ")"
}

// itemText writes a select item as a requester would, without its alias.
func itemText(it *yrdv1.SelectItem) string {
	if a := it.GetAggregate(); a != nil {
		return aggText(a)
	}
	return ident(it.GetColumn())
}
