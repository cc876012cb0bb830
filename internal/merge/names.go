package merge

import (
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// defaultName is the name DuckDB gives the result column of an aggregate
// that has no alias, as the connector compiles it: count_star() for
// count(*), else the function and its column, e.g. sum(age).
func defaultName(a *yrdv1.AggregateCall) string {
	if a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT && a.GetColumn() == "" {
		return "count_star()"
	}
	return funcName(a.GetFunction()) + "(" + duckName(a.GetColumn()) + ")"
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

func funcName(f yrdv1.AggregateFunction) string {
	switch f {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
		return "count"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
		return "sum"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
		return "avg"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN:
		return "min"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		return "max"
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
	switch {
	case a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
		return "count(DISTINCT " + ident(a.GetColumn()) + ")"
	case a.GetColumn() == "":
		return funcName(a.GetFunction()) + "(*)"
	}
	return funcName(a.GetFunction()) + "(" + ident(a.GetColumn()) + ")"
}

// itemText writes a select item as a requester would, without its alias.
func itemText(it *yrdv1.SelectItem) string {
	if a := it.GetAggregate(); a != nil {
		return aggText(a)
	}
	return ident(it.GetColumn())
}
