package sqlq

import (
	"math"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestFormatHandBuilt covers queries Parse would not produce but that a
// caller could build: Format still renders them, and equivalently.
func TestFormatHandBuilt(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    *yrdv1.Query
		want string
	}{
		{"one-operand AND is its operand", where(fromDS("x.y"), and(cmp("a", opEQ, num(1)))), "SELECT * FROM x.y WHERE a = 1"},
		{"one-operand OR inside AND keeps parentheses", where(fromDS("x.y"), and(or(or(cmp("a", opEQ, num(1)), cmp("b", opEQ, num(2)))), cmp("c", opEQ, num(3)))),
			"SELECT * FROM x.y WHERE (a = 1 OR b = 2) AND c = 3"},
		{"nested same operator", where(fromDS("x.y"), or(or(cmp("a", opEQ, num(1)), cmp("b", opEQ, num(2))), cmp("c", opEQ, num(3)))),
			"SELECT * FROM x.y WHERE (a = 1 OR b = 2) OR c = 3"},
		{"reserved and odd names are quoted", &yrdv1.Query{
			Source:  &yrdv1.Query_DatasetId{DatasetId: "select"},
			Select:  []*yrdv1.SelectItem{aliased(colItem("Where"), "order")},
			GroupBy: []string{"a b"},
			OrderBy: []*yrdv1.OrderItem{orderCol("desc", true)},
		}, `SELECT "Where" AS "order" FROM "select" GROUP BY "a b" ORDER BY "desc" DESC`},
		{"duplicate alias falls back to the position", &yrdv1.Query{
			Source:  &yrdv1.Query_DatasetId{DatasetId: "x.y"},
			Select:  []*yrdv1.SelectItem{aliased(colItem("a"), "n"), aliased(colItem("b"), "n")},
			OrderBy: []*yrdv1.OrderItem{orderIdx(1, false)},
		}, "SELECT a AS n, b AS n FROM x.y ORDER BY 2"},
		{"doubles always read back as doubles", where(fromDS("x.y"), in("a", false, dbl(2), dbl(-0.0), dbl(1e21), dbl(1e-7), dbl(math.MaxFloat64))),
			"SELECT * FROM x.y WHERE a IN (2.0, 0.0, 1e+21, 1e-07, 1.7976931348623157e+308)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Format(tc.q); got != tc.want {
				t.Fatalf("Format =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestFormatInvalid checks that what no valid query has is rendered as a
// placeholder that Parse rejects, never as some other valid query.
func TestFormatInvalid(t *testing.T) {
	valid := func() *yrdv1.Query { return where(fromDS("x.y", colItem("a")), cmp("b", opEQ, num(1))) }
	for _, tc := range []struct {
		name   string
		mutate func(q *yrdv1.Query)
	}{
		{"nil query", nil},
		{"no source", func(q *yrdv1.Query) { q.Source = nil }},
		{"empty select item", func(q *yrdv1.Query) { q.Select[0] = &yrdv1.SelectItem{} }},
		{"empty column", func(q *yrdv1.Query) { q.Select[0] = colItem("") }},
		{"unspecified aggregate", func(q *yrdv1.Query) { q.Select[0] = aggItem(0, "a") }},
		{"sum without column", func(q *yrdv1.Query) { q.Select[0] = aggItem(fnSum, "") }},
		{"count distinct without column", func(q *yrdv1.Query) { q.Select[0] = aggItem(fnCountDistinct, "") }},
		{"empty condition", func(q *yrdv1.Query) { q.Where = &yrdv1.Expr{} }},
		{"empty AND", func(q *yrdv1.Query) { q.Where = and() }},
		{"empty OR", func(q *yrdv1.Query) { q.Where = or() }},
		{"NOT of nothing", func(q *yrdv1.Query) { q.Where = not(nil) }},
		{"unspecified operator", func(q *yrdv1.Query) { q.Where = cmp("b", 0, num(1)) }},
		{"missing literal", func(q *yrdv1.Query) { q.Where = cmp("b", opEQ, nil) }},
		{"empty literal", func(q *yrdv1.Query) { q.Where = cmp("b", opEQ, &yrdv1.Literal{}) }},
		{"NaN", func(q *yrdv1.Query) { q.Where = cmp("b", opEQ, dbl(math.NaN())) }},
		{"infinity", func(q *yrdv1.Query) { q.Where = cmp("b", opEQ, dbl(math.Inf(-1))) }},
		{"empty IN list", func(q *yrdv1.Query) { q.Where = in("b", false) }},
		{"missing BETWEEN bound", func(q *yrdv1.Query) { q.Where = between("b", false, num(1), nil) }},
		{"select index out of range", func(q *yrdv1.Query) { q.OrderBy = []*yrdv1.OrderItem{orderIdx(1, false)} }},
		{"negative select index", func(q *yrdv1.Query) { q.OrderBy = []*yrdv1.OrderItem{orderIdx(-1, false)} }},
		{"empty order key", func(q *yrdv1.Query) { q.OrderBy = []*yrdv1.OrderItem{{}} }},
		{"empty group column", func(q *yrdv1.Query) { q.GroupBy = []string{""} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q *yrdv1.Query
			if tc.mutate != nil {
				q = valid()
				tc.mutate(q)
			}
			text := Format(q)
			if !strings.Contains(text, "<") {
				t.Errorf("Format = %q, want a <...> placeholder", text)
			}
			if back, err := Parse(text); err == nil {
				t.Errorf("Parse(%q) accepted it: %v", text, back)
			}
		})
	}
}
