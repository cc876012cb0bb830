package sqlq

import (
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

type parseCase struct {
	name string
	in   string
	want *yrdv1.Query
	// format is Format(want); empty means the same as in.
	format string
}

// parseCases is the table of SQL the parser accepts and the query it
// makes of each; long because it is the table, one entry per form.
func parseCases() []parseCase {
	const ds = "FROM " + elderly
	q := func(sel ...*yrdv1.SelectItem) *yrdv1.Query { return fromDS(elderly, sel...) }
	w := func(e *yrdv1.Expr) *yrdv1.Query { return where(q(colItem("a")), e) }
	const sw = "SELECT a " + ds + " WHERE "
	return []parseCase{
		// Projection.
		{name: "star", in: "SELECT * " + ds, want: q()},
		{name: "columns", in: "SELECT a, b_2, _c " + ds, want: q(colItem("a"), colItem("b_2"), colItem("_c"))},
		{name: "alias", in: "SELECT district AS d " + ds, want: q(aliased(colItem("district"), "d"))},
		{name: "count star", in: "SELECT count(*) " + ds, want: q(aggItem(fnCount, ""))},
		{name: "count column", in: "SELECT count(age) " + ds, want: q(aggItem(fnCount, "age"))},
		{name: "count distinct", in: "SELECT count(DISTINCT person_id) " + ds, want: q(aggItem(fnCountDistinct, "person_id"))},
		{
			name: "every aggregate",
			in:   "SELECT sum(a) AS s, avg(a), min(a), max(a) AS hi " + ds,
			want: q(aliased(aggItem(fnSum, "a"), "s"), aggItem(fnAvg, "a"), aggItem(fnMin, "a"), aliased(aggItem(fnMax, "a"), "hi")),
		},
		{
			name:   "keywords and names in any case",
			in:     "select District As D, COUNT(*), Count(Distinct X) from " + elderly,
			want:   q(aliased(colItem("district"), "d"), aggItem(fnCount, ""), aggItem(fnCountDistinct, "x")),
			format: "SELECT district AS d, count(*), count(DISTINCT x) " + ds,
		},
		{
			name:   "quoted names keep case and may be reserved words",
			in:     `SELECT "order", "Mixed Case" AS "from", "a""b", "人口" ` + ds,
			want:   q(colItem("order"), aliased(colItem("Mixed Case"), "from"), colItem(`a"b`), colItem("人口")),
			format: `SELECT "order", "Mixed Case" AS "from", "a""b", "人口" ` + ds,
		},
		{
			name:   "quoted plain name is formatted bare",
			in:     `SELECT "age" ` + ds,
			want:   q(colItem("age")),
			format: "SELECT age " + ds,
		},
		{
			name: "aggregate and type names are not reserved",
			in:   "SELECT count, sum AS date, timestamp " + ds,
			want: q(colItem("count"), aliased(colItem("sum"), "date"), colItem("timestamp")),
		},

		// Source.
		{name: "family", in: "SELECT * FROM family:yrd.elderly-population.v1", want: fromFamily("yrd.elderly-population.v1")},
		{
			name:   "family prefix in any case",
			in:     "SELECT * FROM FAMILY:yrd.elderly-population.v1",
			want:   fromFamily("yrd.elderly-population.v1"),
			format: "SELECT * FROM family:yrd.elderly-population.v1",
		},
		{name: "quoted dataset id", in: `SELECT * FROM "` + elderly + `"`, want: q(), format: "SELECT * " + ds},
		{name: "dataset id that is a keyword", in: `SELECT * FROM "limit"`, want: fromDS("limit")},
		{name: "dataset id with digits", in: "SELECT * FROM hangzhou.2024.x-1", want: fromDS("hangzhou.2024.x-1")},

		// Conditions.
		{name: "equals", in: sw + "b = 'x'", want: w(cmp("b", opEQ, str("x")))},
		{name: "every operator", in: sw + "b = 1 AND b <> 1 AND b < 1 AND b <= 1 AND b > 1 AND b >= 1",
			want: w(and(cmp("b", opEQ, num(1)), cmp("b", opNE, num(1)), cmp("b", opLT, num(1)), cmp("b", opLE, num(1)), cmp("b", opGT, num(1)), cmp("b", opGE, num(1))))},
		{name: "bang equals", in: sw + "b != 1", want: w(cmp("b", opNE, num(1))), format: sw + "b <> 1"},
		{name: "literal first is turned round", in: sw + "1 = b AND 1 <> b AND 1 < b AND 1 <= b AND 1 > b AND 1 >= b",
			want:   w(and(cmp("b", opEQ, num(1)), cmp("b", opNE, num(1)), cmp("b", opGT, num(1)), cmp("b", opGE, num(1)), cmp("b", opLT, num(1)), cmp("b", opLE, num(1)))),
			format: sw + "b = 1 AND b <> 1 AND b > 1 AND b >= 1 AND b < 1 AND b <= 1"},
		{name: "no spaces", in: "SELECT a " + ds + " WHERE b>=1 AND c<>'x'", want: w(and(cmp("b", opGE, num(1)), cmp("c", opNE, str("x")))),
			format: sw + "b >= 1 AND c <> 'x'"},
		{name: "in", in: sw + "b IN ('x', 'y')", want: w(in("b", false, str("x"), str("y")))},
		{name: "not in", in: sw + "b NOT IN (1)", want: w(in("b", true, num(1)))},
		{name: "between", in: sw + "b BETWEEN 60 AND 80", want: w(between("b", false, num(60), num(80)))},
		{name: "not between", in: sw + "b NOT BETWEEN 1.5 AND 2.5", want: w(between("b", true, dbl(1.5), dbl(2.5)))},
		{name: "between inside and", in: sw + "b BETWEEN 1 AND 2 AND c = 3", want: w(and(between("b", false, num(1), num(2)), cmp("c", opEQ, num(3))))},
		{name: "is null", in: sw + "b IS NULL", want: w(isNull("b", false))},
		{name: "is not null", in: sw + "b IS NOT NULL", want: w(isNull("b", true))},
		{name: "not", in: sw + "NOT b = 1", want: w(not(cmp("b", opEQ, num(1))))},
		{name: "not not", in: sw + "NOT NOT b IS NULL", want: w(not(not(isNull("b", false))))},
		{name: "not in parentheses", in: sw + "NOT (b = 1)", want: w(not(cmp("b", opEQ, num(1)))), format: sw + "NOT b = 1"},
		{name: "not over in", in: sw + "NOT b IN (1, 2)", want: w(not(in("b", false, num(1), num(2))))},
		{name: "not over and", in: sw + "NOT (b = 1 AND c = 2)", want: w(not(and(cmp("b", opEQ, num(1)), cmp("c", opEQ, num(2)))))},
		{name: "and binds tighter than or", in: sw + "b = 1 OR c = 2 AND d = 3",
			want: w(or(cmp("b", opEQ, num(1)), and(cmp("c", opEQ, num(2)), cmp("d", opEQ, num(3)))))},
		{name: "not binds tighter than and", in: sw + "NOT b = 1 AND c = 2",
			want: w(and(not(cmp("b", opEQ, num(1))), cmp("c", opEQ, num(2))))},
		{name: "parentheses group", in: sw + "(b = 1 OR c = 2) AND d = 3",
			want: w(and(or(cmp("b", opEQ, num(1)), cmp("c", opEQ, num(2))), cmp("d", opEQ, num(3))))},
		{name: "chains are flat", in: sw + "b = 1 OR c = 2 OR d = 3",
			want: w(or(cmp("b", opEQ, num(1)), cmp("c", opEQ, num(2)), cmp("d", opEQ, num(3))))},
		{name: "parenthesised chains nest", in: sw + "(b = 1 AND c = 2) AND d = 3",
			want: w(and(and(cmp("b", opEQ, num(1)), cmp("c", opEQ, num(2))), cmp("d", opEQ, num(3))))},
		{name: "redundant parentheses vanish", in: sw + "((b = 1)) OR (c = 2 AND d = 3)",
			want:   w(or(cmp("b", opEQ, num(1)), and(cmp("c", opEQ, num(2)), cmp("d", opEQ, num(3))))),
			format: sw + "b = 1 OR c = 2 AND d = 3"},
		{name: "keyword operators in any case", in: sw + "b not in (1) and not c is not null or d between 1 and 2",
			want:   w(or(and(in("b", true, num(1)), not(isNull("c", true))), between("d", false, num(1), num(2)))),
			format: sw + "b NOT IN (1) AND NOT c IS NOT NULL OR d BETWEEN 1 AND 2"},
		{name: "quoted column in condition", in: sw + `"group" = 1`, want: w(cmp("group", opEQ, num(1)))},
		{name: "column named date", in: sw + "date >= DATE '2024-01-01'", want: w(cmp("date", opGE, date("2024-01-01")))},

		// Literals.
		{name: "string with quote", in: sw + "b = 'O''Brien'", want: w(cmp("b", opEQ, str("O'Brien")))},
		{name: "empty string", in: sw + "b = ''", want: w(cmp("b", opEQ, str("")))},
		{name: "unicode string", in: sw + "b = '黄浦区'", want: w(cmp("b", opEQ, str("黄浦区")))},
		{name: "multi-line string", in: sw + "b = 'a\nb'", want: w(cmp("b", opEQ, str("a\nb")))},
		{name: "negative integer", in: sw + "b > -5", want: w(cmp("b", opGT, num(-5)))},
		{name: "plus sign", in: sw + "b > +5", want: w(cmp("b", opGT, num(5))), format: sw + "b > 5"},
		{name: "minimum int64", in: sw + "b > -9223372036854775808", want: w(cmp("b", opGT, num(math.MinInt64)))},
		{name: "maximum int64", in: sw + "b < 9223372036854775807", want: w(cmp("b", opLT, num(math.MaxInt64)))},
		{name: "decimal", in: sw + "b = 2.75", want: w(cmp("b", opEQ, dbl(2.75)))},
		{name: "leading point", in: sw + "b = .5", want: w(cmp("b", opEQ, dbl(0.5))), format: sw + "b = 0.5"},
		{name: "whole decimal stays a double", in: sw + "b = 3.0", want: w(cmp("b", opEQ, dbl(3)))},
		{name: "exponent", in: sw + "b = -1.5E3", want: w(cmp("b", opEQ, dbl(-1500))), format: sw + "b = -1500.0"},
		{name: "large exponent", in: sw + "b = 1e300", want: w(cmp("b", opEQ, dbl(1e300))), format: sw + "b = 1e+300"},
		{name: "booleans", in: sw + "b = TRUE OR FALSE <> c", want: w(or(cmp("b", opEQ, boolean(true)), cmp("c", opNE, boolean(false)))),
			format: sw + "b = TRUE OR c <> FALSE"},
		{name: "date", in: sw + "b BETWEEN DATE '2024-01-01' AND date '2024-12-31'",
			want:   w(between("b", false, date("2024-01-01"), date("2024-12-31"))),
			format: sw + "b BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'"},
		{name: "timestamp", in: sw + "TIMESTAMP '2024-01-31T08:00:00.5+08:00' <= b",
			want:   w(cmp("b", opGE, ts("2024-01-31T08:00:00.5+08:00"))),
			format: sw + "b >= TIMESTAMP '2024-01-31T08:00:00.5+08:00'"},
		{name: "mixed in list", in: sw + "b IN ('x', 1, -2.5, TRUE, DATE '2024-02-29')",
			want: w(in("b", false, str("x"), num(1), dbl(-2.5), boolean(true), date("2024-02-29")))},

		// Grouping, ordering, limit.
		{name: "group by", in: "SELECT district, sex, count(*) " + ds + " GROUP BY district, sex",
			want: func() *yrdv1.Query {
				r := q(colItem("district"), colItem("sex"), aggItem(fnCount, ""))
				r.GroupBy = []string{"district", "sex"}
				return r
			}()},
		{name: "order by column", in: "SELECT a " + ds + " ORDER BY b, c DESC, d ASC",
			want: func() *yrdv1.Query {
				r := q(colItem("a"))
				r.OrderBy = []*yrdv1.OrderItem{orderCol("b", false), orderCol("c", true), orderCol("d", false)}
				return r
			}(),
			format: "SELECT a " + ds + " ORDER BY b, c DESC, d"},
		{name: "order by alias and position", in: "SELECT district, count(*) AS n " + ds + " GROUP BY district ORDER BY n DESC, 1",
			want: func() *yrdv1.Query {
				r := q(colItem("district"), aliased(aggItem(fnCount, ""), "n"))
				r.GroupBy = []string{"district"}
				r.OrderBy = []*yrdv1.OrderItem{orderIdx(1, true), orderIdx(0, false)}
				return r
			}()},
		{name: "order by position of an aliased item formats as the alias", in: "SELECT count(*) AS n " + ds + " ORDER BY 1 DESC",
			want: func() *yrdv1.Query {
				r := q(aliased(aggItem(fnCount, ""), "n"))
				r.OrderBy = []*yrdv1.OrderItem{orderIdx(0, true)}
				return r
			}(),
			format: "SELECT count(*) AS n " + ds + " ORDER BY n DESC"},
		{name: "order by an aggregate in the select list", in: "SELECT district, avg(age) " + ds + " GROUP BY district ORDER BY AVG(age) DESC",
			want: func() *yrdv1.Query {
				r := q(colItem("district"), aggItem(fnAvg, "age"))
				r.GroupBy = []string{"district"}
				r.OrderBy = []*yrdv1.OrderItem{orderIdx(1, true)}
				return r
			}(),
			format: "SELECT district, avg(age) " + ds + " GROUP BY district ORDER BY 2 DESC"},
		{name: "alias shadows a column of the same name", in: "SELECT max(age) AS age " + ds + " ORDER BY age",
			want: func() *yrdv1.Query {
				r := q(aliased(aggItem(fnMax, "age"), "age"))
				r.OrderBy = []*yrdv1.OrderItem{orderIdx(0, false)}
				return r
			}()},
		{name: "limit", in: "SELECT a " + ds + " LIMIT 100", want: func() *yrdv1.Query { r := q(colItem("a")); r.Limit = 100; return r }()},
		{name: "largest limit", in: "SELECT a " + ds + " LIMIT 18446744073709551615",
			want: func() *yrdv1.Query { r := q(colItem("a")); r.Limit = math.MaxUint64; return r }()},
		{name: "everything", in: "SELECT district, count(*) AS n FROM family:yrd.elderly-population.v1 WHERE age >= 60 AND sex = 'F' GROUP BY district ORDER BY n DESC LIMIT 10",
			want: &yrdv1.Query{
				Source:  &yrdv1.Query_Family{Family: "yrd.elderly-population.v1"},
				Select:  []*yrdv1.SelectItem{colItem("district"), aliased(aggItem(fnCount, ""), "n")},
				Where:   and(cmp("age", opGE, num(60)), cmp("sex", opEQ, str("F"))),
				GroupBy: []string{"district"},
				OrderBy: []*yrdv1.OrderItem{orderIdx(1, true)},
				Limit:   10,
			}},

		// Layout.
		{name: "semicolon", in: "SELECT * " + ds + ";", want: q(), format: "SELECT * " + ds},
		{name: "semicolon and space", in: "  SELECT * " + ds + " ; \n", want: q(), format: "SELECT * " + ds},
		{name: "comments", in: "-- who is over 60\nSELECT a -- the column\nFROM " + elderly + " -- the dataset\nWHERE b = '--' -- not a comment in a string\n",
			want: w(cmp("b", opEQ, str("--"))), format: sw + "b = '--'"},
		{name: "tabs, newlines and CJK spaces", in: "SELECT\ta,\r\n\tb\u3000FROM\n" + elderly,
			want: q(colItem("a"), colItem("b")), format: "SELECT a, b " + ds},
		{name: "byte order mark", in: "\ufeffSELECT * " + ds, want: q(), format: "SELECT * " + ds},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("Parse(%q) =\n%v\nwant\n%v", tc.in, prototext.Format(got), prototext.Format(tc.want))
			}
			wantText := tc.format
			if wantText == "" {
				wantText = tc.in
			}
			if text := Format(got); text != wantText {
				t.Errorf("Format = %q\nwant     %q", text, wantText)
			}
		})
	}
}

// TestRoundTrip checks Parse(Format(q)) == q for every parse case, and that
// Format is a fixed point: formatting the re-parsed query changes nothing.
func TestRoundTrip(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			checkRoundTrip(t, tc.in)
		})
	}
}

func checkRoundTrip(t *testing.T, in string) {
	t.Helper()
	q, err := Parse(in)
	if err != nil {
		return
	}
	text := Format(q)
	back, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q) ok, but Parse(Format) = Parse(%q): %v", in, text, err)
	}
	if !proto.Equal(q, back) {
		t.Fatalf("round trip of %q through %q changed\n%v\nto\n%v", in, text, prototext.Format(q), prototext.Format(back))
	}
	if again := Format(back); again != text {
		t.Fatalf("Format is not stable: %q then %q", text, again)
	}
}
