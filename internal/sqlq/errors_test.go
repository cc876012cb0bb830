package sqlq

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
)

type errorCase struct {
	in        string
	line, col int
	msg       string // the whole message after "line L, column C: "
}

const (
	sel = "SELECT a FROM x.y "
	sw  = sel + "WHERE " // columns 25 on
)

// colOf is the 1-based column of the first occurrence of marker in s, on its
// line, so that the table does not count by hand. s must be one line.
func colOf(s, marker string) int {
	i := strings.Index(s, marker)
	if i < 0 {
		panic(fmt.Sprintf("%q not in %q", marker, s))
	}
	return len([]rune(s[:i])) + 1
}

// idMsg is the message for an invalid dataset id: the catalog's own words,
// which this package passes on rather than restates.
func idMsg(id string) string {
	var fe *catalogspec.FieldError
	if !errors.As(catalogspec.ValidateID(id), &fe) {
		panic("valid id " + id)
	}
	return "dataset id: " + fe.Msg
}

// errorCases is the table of rejected SQL, one entry per error with its
// line, column and message; long because it is the table.
func errorCases() []errorCase {
	join := "SELECT count(*) FROM shanghai.civil-affairs.pop JOIN hangzhou.civil-affairs.pop ON true"
	end := func(s string) int { return len([]rune(s)) + 1 }
	e := func(in, marker, msg string) errorCase { return errorCase{in, 1, colOf(in, marker), msg} }
	return []errorCase{
		// The statement.
		{"", 1, 1, "expected SELECT, found end of input; yrdnode queries are single read-only SELECT statements"},
		{"   \n  ", 2, 3, "expected SELECT, found end of input; yrdnode queries are single read-only SELECT statements"},
		e("DELETE FROM x.y", "DELETE", "expected SELECT, found 'DELETE'; yrdnode queries are single read-only SELECT statements"),
		e("(SELECT a FROM x.y)", "(", "expected SELECT, found '('; yrdnode queries are single read-only SELECT statements"),
		e("WITH t AS (SELECT a FROM x.y) SELECT a FROM t", "WITH", "unsupported WITH (common table expressions); yrdnode queries read one dataset or one dataset family"),
		e(sel+"; SELECT b FROM x.y", "SELECT b", "expected end of input after ';', found 'SELECT'; one statement per query"),
		e(sel+"UNION SELECT b FROM x.y", "UNION", "unsupported UNION; yrdnode queries read one dataset or one dataset family"),
		e(sw+"b = 1 EXCEPT SELECT b FROM x.y", "EXCEPT", "unsupported EXCEPT; yrdnode queries read one dataset or one dataset family"),

		// The select list.
		e("SELECT DISTINCT a FROM x.y", "DISTINCT", "unsupported SELECT DISTINCT; use GROUP BY"),
		e("SELECT FROM x.y", "FROM", "expected a column name, an aggregate or '*', found 'FROM'"),
		e("SELECT 1 FROM x.y", "1", "expected a column name, an aggregate or '*', found '1'"),
		e("SELECT 'a' FROM x.y", "'a'", "expected a column name, an aggregate or '*', found string 'a'"),
		e("SELECT order FROM x.y", "order", `expected a column name, an aggregate or '*', found 'order' (a reserved word; write "order" to use it as a name)`),
		e("SELECT a, FROM x.y", "FROM", "expected a column name or an aggregate, found 'FROM'"),
		e("SELECT a, * FROM x.y", "*", "'*' must be the only select item"),
		e("SELECT *, a FROM x.y", ",", "'*' must be the only select item"),
		e("SELECT t.* FROM x.y", ".", "qualified names are not supported; yrdnode queries read one dataset or one dataset family"),
		e("SELECT t.a FROM x.y", ".", "qualified names are not supported; yrdnode queries read one dataset or one dataset family"),
		e("SELECT a b FROM x.y", "b", "expected ',', AS or FROM, found 'b'"),
		{"SELECT a", 1, 9, "expected FROM, found end of input"},
		e("SELECT a AS FROM x.y", "FROM", "expected an alias after AS, found 'FROM'"),
		e("SELECT a AS 'n' FROM x.y", "'n'", "expected an alias after AS, found string 'n'"),
		e("SELECT a AS n, count(*) AS n FROM x.y", "n FROM", "alias 'n' is already used by select item 1"),
		e("SELECT a + 1 FROM x.y", "+", "unsupported arithmetic operator '+'; select columns and aggregates"),
		e("SELECT a || b FROM x.y", "||", "unsupported arithmetic operator '||'; select columns and aggregates"),
		e("SELECT count(*) * 2 FROM x.y", "* 2", "unsupported arithmetic operator '*'; select columns and aggregates"),
		e("SELECT a::int FROM x.y", "::", "unsupported cast '::'; select columns and aggregates"),
		e("SELECT lower(a) FROM x.y", "lower", "unsupported function lower(); select columns and aggregates (count, sum, avg, min, max) of columns"),
		e("SELECT CAST(a AS int) FROM x.y", "CAST", "unsupported function cast(); select columns and aggregates (count, sum, avg, min, max) of columns"),
		e("SELECT row_number() OVER () FROM x.y", "row_number", "unsupported function row_number(); select columns and aggregates (count, sum, avg, min, max) of columns"),
		e("SELECT CASE WHEN a THEN 1 END FROM x.y", "CASE", "unsupported CASE expression; select columns and aggregates"),
		e("SELECT sum(*) FROM x.y", "*", "only count accepts '*'; sum needs a column"),
		e("SELECT sum(DISTINCT a) FROM x.y", "DISTINCT", "DISTINCT is supported only as count(DISTINCT column)"),
		e("SELECT count(DISTINCT *) FROM x.y", "*", "expected a column name, found '*'"),
		e("SELECT count() FROM x.y", ")", "expected a column name, found ')'"),
		e("SELECT count(a, b) FROM x.y", ",", "expected ')', found ','"),
		e("SELECT sum(a * 2) FROM x.y", "*", "unsupported arithmetic operator '*'; aggregates take a column"),
		e("SELECT sum(abs(a)) FROM x.y", "abs", "unsupported function abs(); aggregates take a column"),
		e("SELECT count(*) OVER (PARTITION BY a) FROM x.y", "OVER", "unsupported window function (OVER); aggregate with GROUP BY"),
		e("SELECT count(*) FILTER (WHERE a = 1) FROM x.y", "FILTER", "unsupported FILTER clause; filter rows with WHERE"),
		e(`SELECT "count"(a) FROM x.y`, "(", "expected ',', AS or FROM, found '('"),

		// The source.
		{"SELECT a FROM", 1, 14, "expected a dataset id or family:<standard schema id>, found end of input"},
		e("SELECT a FROM WHERE a = 1", "WHERE", "expected a dataset id or family:<standard schema id>, found 'WHERE'"),
		e("SELECT a FROM 'x.y'", "'x.y'", "expected a dataset id or family:<standard schema id>, found string 'x.y'"),
		e("SELECT a FROM (SELECT a FROM x.y)", "(", "unsupported subquery; yrdnode queries read one dataset or one dataset family"),
		{join, 1, 49, "unsupported JOIN; yrdnode queries read one dataset or one dataset family"},
		e("SELECT a FROM x.y, z.w", ",", "unsupported JOIN; yrdnode queries read one dataset or one dataset family"),
		e("SELECT a FROM x.y LEFT OUTER JOIN z.w ON a = b", "LEFT", "unsupported JOIN; yrdnode queries read one dataset or one dataset family"),
		e("SELECT a FROM x.y CROSS JOIN z.w", "CROSS", "unsupported JOIN; yrdnode queries read one dataset or one dataset family"),
		e("SELECT a FROM x.y t", "t", "unsupported table alias; name columns alone, yrdnode queries read one dataset or one dataset family"),
		e("SELECT a FROM x.y AS t", "AS", "unsupported table alias; name columns alone, yrdnode queries read one dataset or one dataset family"),
		e("SELECT a FROM Shanghai.pop", "Shanghai", idMsg("Shanghai.pop")),
		e("SELECT a FROM x.-y", "x.-y", idMsg("x.-y")),
		e("SELECT a FROM xy", "xy", idMsg("xy")),
		e(`SELECT a FROM "x y"`, `"x y"`, idMsg("x y")),
		e(`SELECT a FROM ""`, `""`, "empty quoted identifier"),
		e("SELECT a FROM family:", "family", "expected a standard schema id after family:, e.g. family:yrd.elderly-population.v1"),
		e("SELECT a FROM family:yrd.pop", "family", `invalid standard schema id 'yrd.pop', want dot-separated lowercase segments ending in a version, e.g. "yrd.elderly-population.v1"`),
		e("SELECT a FROM family:x.v1"+strings.Repeat("1", 130), "family", "standard schema id 'x.v1111111111111111111111111111111111111…' is 134 characters, at most 128"),

		// Conditions.
		e(sw+"b = c", "c", "comparing two columns is not supported; WHERE compares columns with literals"),
		e(sw+`"b" < "c"`, `"c"`, "comparing two columns is not supported; WHERE compares columns with literals"),
		e(sw+"1 = 2", "2", "comparing two literals is not supported; a comparison needs a column on one side"),
		e(sw+"b = NULL", "NULL", "a comparison with NULL is never true; use IS NULL or IS NOT NULL"),
		e(sw+"NULL = b", "NULL", "expected a column name, found 'NULL'; test a column with IS NULL"),
		e(sw+"5 IN (b)", "5", "expected a column name, found '5'; IN, BETWEEN and IS need the column on the left"),
		e(sw+"5 BETWEEN b AND c", "5", "expected a column name, found '5'; IN, BETWEEN and IS need the column on the left"),
		e(sw+"5 + b = 1", "+", "unsupported arithmetic operator '+'; WHERE compares columns with literals"),
		e(sw+"5 b", "b", "expected a comparison operator, found 'b'"),
		e(sw+"b IS TRUE", "TRUE", "expected NULL (only IS NULL and IS NOT NULL are supported), found 'TRUE'"),
		e(sw+"b IS DISTINCT FROM 1", "DISTINCT", "expected NULL (only IS NULL and IS NOT NULL are supported), found 'DISTINCT'"),
		e(sw+"b LIKE 'x%'", "LIKE", "unsupported pattern match LIKE; compare with =, IN or BETWEEN"),
		e(sw+"b not ilike 'x%'", "ilike", "unsupported pattern match ILIKE; compare with =, IN or BETWEEN"),
		e(sw+"b ~ 'x'", "~", "unsupported pattern match ~; compare with =, IN or BETWEEN"),
		e(sw+"b NOT 5", "5", "expected IN or BETWEEN after NOT, found '5'"),
		e(sw+"b + 1 = 2", "+", "unsupported arithmetic operator '+'; WHERE compares columns with literals"),
		e(sw+"b = 1 + 1", "+", "unsupported arithmetic operator '+'; WHERE compares columns with literals"),
		e(sw+"b = 1 - 1", "-", "unsupported arithmetic operator '-'; WHERE compares columns with literals"),
		e(sw+"b BETWEEN 1 AND 2 * 3", "*", "unsupported arithmetic operator '*'; WHERE compares columns with literals"),
		e(sw+"b / 2 = 1", "/", "unsupported arithmetic operator '/'; WHERE compares columns with literals"),
		e(sw+"t.b = 1", ".b", "qualified names are not supported; yrdnode queries read one dataset or one dataset family"),
		e(sw+"b::int = 1", "::", "unsupported cast '::'; WHERE compares columns with literals"),
		e(sw+"lower(b) = 'x'", "lower", "unsupported function lower(); WHERE compares columns with literals"),
		e(sw+"b = upper('x')", "upper", "unsupported function upper(); WHERE compares columns with literals"),
		e(sw+"count(*) > 5", "count", "aggregates are not allowed in WHERE, and HAVING is not supported; WHERE compares columns with literals"),
		e(sw+"b IN (SELECT c FROM z.w)", "SELECT c", "unsupported subquery; yrdnode queries read one dataset or one dataset family"),
		e(sw+"b = (SELECT max(c) FROM z.w)", "SELECT m", "unsupported subquery; yrdnode queries read one dataset or one dataset family"),
		e(sw+"b = (1)", "(", "expected a literal, found '('"),
		e(sw+"EXISTS (SELECT c FROM z.w)", "EXISTS", "unsupported subquery (EXISTS); yrdnode queries read one dataset or one dataset family"),
		e(sw+"(SELECT c FROM z.w) = 1", "SELECT c", "unsupported subquery; yrdnode queries read one dataset or one dataset family"),
		e(sw+"b IN ()", ")", "expected a literal in an IN list, found ')'"),
		e(sw+"b IN (1, c)", "c)", "expected a literal in an IN list, found column 'c'; WHERE compares columns with literals"),
		e(sw+"b IN (1, NULL)", "NULL", "NULL is not allowed in an IN list; test with IS NULL"),
		e(sw+"b IN (1 2)", "2", "expected ',' or ')' in the IN list, found '2'"),
		e(sw+"b IN (1,)", ")", "expected a literal in an IN list, found ')'"),
		e(sw+"b IN 1", "1", "expected '(' after IN, found '1'"),
		e(sw+"b BETWEEN 1 OR 2", "OR", "expected AND, found 'OR'"),
		e(sw+"b BETWEEN c AND 2", "c", "expected a literal in BETWEEN, found column 'c'; WHERE compares columns with literals"),
		{sw + "b", 1, end(sw + "b"), "expected a comparison operator, IN, BETWEEN or IS after column 'b', found end of input"},
		e(sw+"b c", "c", "expected a comparison operator, IN, BETWEEN or IS after column 'b', found 'c'"),
		{sw + "(b = 1", 1, end(sw + "(b = 1"), "expected AND, OR or ')', found end of input"},
		e(sw+"b = 1)", ")", "expected AND, OR, GROUP BY, ORDER BY, LIMIT or end of query, found ')'"),
		e(sw+"b = 'x' 'y'", "'y'", "expected AND, OR, GROUP BY, ORDER BY, LIMIT or end of query, found string 'y'"),
		e(sw+"b = 'x' 'a long string\nthat goes on and on and on'", "'a", "expected AND, OR, GROUP BY, ORDER BY, LIMIT or end of query, found string 'a long string that goes on and on and o…"),
		{sw + "b = 1 AND", 1, end(sw + "b = 1 AND"), "expected a column name or a literal, found end of input"},
		{sw + "NOT", 1, end(sw + "NOT"), "expected a column name or a literal, found end of input"},
		{sw, 1, end(sw), "expected a column name or a literal, found end of input"},
		e(sw+"b = AND", "AND", "expected a literal, found 'AND'"),
		e(sw+"b = CASE WHEN c THEN 1 END", "CASE", "unsupported CASE expression; WHERE compares columns with literals"),
		e(sw+"b = ?", "?", "query parameters are not supported; write the value as a literal"),
		e(sw+"b = $1", "$", "query parameters are not supported; write the value as a literal"),
		e(sw+"b = -c", "c", "expected a number after '-', found 'c'"),
		e(sw+"b = - -1", "-1", "expected a number after '-', found '-'"),

		// Literals.
		e(sw+"b = 'abc", "'abc", "unterminated string literal"),
		e(sw+`"b = 1`, `"b`, "unterminated quoted identifier"),
		e(sw+"b = DATE '2024-02-30'", "'2024", "invalid DATE '2024-02-30', want YYYY-MM-DD, e.g. DATE '2024-01-31'"),
		e(sw+"b = DATE '2024-1-5'", "'2024", "invalid DATE '2024-1-5', want YYYY-MM-DD, e.g. DATE '2024-01-31'"),
		e(sw+"b = TIMESTAMP '2024-01-31 08:00:00'", "'2024", "invalid TIMESTAMP '2024-01-31 08:00:00', want RFC 3339 with an offset, e.g. TIMESTAMP '2024-01-31T08:00:00+08:00'"),
		e(sw+"b = TIMESTAMP '2024-01-31T08:00:00'", "'2024", "invalid TIMESTAMP '2024-01-31T08:00:00', want RFC 3339 with an offset, e.g. TIMESTAMP '2024-01-31T08:00:00+08:00'"),
		e(sw+"b > INTERVAL '1 day'", "INTERVAL", "unsupported typed literal INTERVAL; only DATE '...' and TIMESTAMP '...' are supported"),
		e(sw+"b = 9223372036854775808", "9223", "integer 9223372036854775808 is out of the 64-bit range"),
		e(sw+"b = -9223372036854775809", "9223", "integer -9223372036854775809 is out of the 64-bit range"),
		e(sw+"b = 1e400", "1e400", "number 1e400 is out of the range of a double"),
		e(sw+"b = 1abc", "1abc", "invalid number '1abc'"),
		e(sw+"b = 1e", "1e", "invalid number '1e': the exponent has no digits"),
		errorCase{sw + "b = 1.5.5", 1, end(sw + "b = 1.5"), "expected AND, OR, GROUP BY, ORDER BY, LIMIT or end of query, found '.5'"},

		// GROUP BY, HAVING, ORDER BY, LIMIT and what follows.
		errorCase{sel + "GROUP a", 1, end(sel + "GROUP "), "expected BY, found 'a'"},
		e(sel+"GROUP BY 1", "1", "expected a column name, found '1'"),
		{sel + "GROUP BY a,", 1, end(sel + "GROUP BY a,"), "expected a column name, found end of input"},
		e(sel+"GROUP BY lower(a)", "lower", "unsupported function lower(); group by columns"),
		e(sel+"GROUP BY a + 1", "+", "unsupported arithmetic operator '+'; group by columns"),
		e(sel+"GROUP BY a b", "b", "expected ',', ORDER BY, LIMIT or end of query, found 'b'"),
		e(sel+"GROUP BY a HAVING count(*) > 5", "HAVING", "unsupported HAVING; filter rows with WHERE, before grouping"),
		e(sel+"HAVING count(*) > 5", "HAVING", "unsupported HAVING; filter rows with WHERE, before grouping"),
		errorCase{sel + "ORDER a", 1, end(sel + "ORDER "), "expected BY, found 'a'"},
		e(sel+"ORDER BY 0", "0", "ORDER BY position 0 is not a select item; want 1 to 1"),
		e(sel+"ORDER BY 2", "2", "ORDER BY position 2 is not a select item; want 1 to 1"),
		e(sel+"ORDER BY 1.5", "1.5", "ORDER BY position 1.5 is not a select item; want 1 to 1"),
		e(sel+"ORDER BY 99999999999999999999", "9999", "ORDER BY position 99999999999999999999 is not a select item; want 1 to 1"),
		e("SELECT * FROM x.y ORDER BY 1", "1", "ORDER BY position 1 needs a select list; with SELECT * order by column names"),
		e(sel+"ORDER BY count(*) DESC", "count", "ORDER BY count() must be in the select list; select it and order by its alias or position"),
		e(sel+"ORDER BY lower(a)", "lower", "unsupported function lower(); select columns and aggregates (count, sum, avg, min, max) of columns"),
		e(sel+"ORDER BY 'a'", "'a'", "expected a column name, alias or select item position, found string 'a'"),
		e(sel+"ORDER BY -1", "-", "expected a column name, alias or select item position, found '-'"),
		e(sel+"ORDER BY a NULLS FIRST", "NULLS", "unsupported NULLS FIRST/LAST; order by columns, aliases or positions, ASC or DESC"),
		e(sel+"ORDER BY a DESC b", "b", "expected ',', LIMIT or end of query, found 'b'"),
		e(sel+"LIMIT 0", "0", "LIMIT must be at least 1"),
		e(sel+"LIMIT -1", "-", "expected a positive integer, found '-'"),
		e(sel+"LIMIT 1.5", "1.5", "expected a positive integer, found '1.5'"),
		e(sel+"LIMIT 1e3", "1e3", "expected a positive integer, found '1e3'"),
		e(sel+"LIMIT ALL", "ALL", "expected a positive integer, found 'ALL'"),
		e(sel+"LIMIT 18446744073709551616", "1844", "LIMIT 18446744073709551616 is out of range"),
		e(sel+"LIMIT 10 OFFSET 5", "OFFSET", "unsupported OFFSET; paging through results is not supported, use LIMIT alone"),
		e(sel+"OFFSET 5", "OFFSET", "unsupported OFFSET; paging through results is not supported, use LIMIT alone"),
		e(sel+"FETCH FIRST 5 ROWS ONLY", "FETCH", "unsupported FETCH; use LIMIT"),
		e(sel+"LIMIT 5, 10", ",", "expected end of query, found ','"),
		e(sel+"LIMIT 5 LIMIT 6", "LIMIT 6", "LIMIT is out of place; clauses go in the order WHERE, GROUP BY, ORDER BY, LIMIT, each at most once"),
		e(sel+"ORDER BY a WHERE b = 1", "WHERE", "WHERE is out of place; clauses go in the order WHERE, GROUP BY, ORDER BY, LIMIT, each at most once"),
		e(sel+"WINDOW w AS (PARTITION BY a)", "WINDOW", "unsupported WINDOW clause; window functions are not supported"),
		e(sel+"FOR UPDATE", "FOR", "expected WHERE, GROUP BY, ORDER BY, LIMIT or end of query, found 'FOR'"),

		// Characters.
		e(sel+"/* c */", "/*", "block comments are not supported; use -- comments"),
		e("SELECT a，b FROM x.y", "，", "unexpected character '，' (a full-width character: write ',')"),
		e("SELECT 人口 FROM x.y", "人", `unexpected character '人' (write names with non-ASCII letters in double quotes, e.g. "人口")`),
		e(sw+"b = ‘x’", "‘", "unexpected character '‘' (a typographic quote: quote strings with ')"),
		e(sw+"b = 'x\xffy'", "\xff", "invalid UTF-8 byte 0xff"),
		e(sw+"b\xc3 = 1", "\xc3", "invalid UTF-8 byte 0xc3"),
		e(sw+"b = 'x\x00'", "\x00", "control character U+0000 is not allowed"),
		e(sw+"b = 1 \x00", "\x00", "control character U+0000 is not allowed"),
		e(sw+"b = 1 -- \x1b[2J", "\x1b", "control character U+001B is not allowed"),
		e(sw+`"b`+"\x07"+`" = 1`, "\x07", "control character U+0007 is not allowed"),
		e(sw+"b = 'admin\u202e'", "\u202e", "bidirectional control character U+202E is not allowed"),
		e(sw+"b = 1 # x", "#", "expected AND, OR, GROUP BY, ORDER BY, LIMIT or end of query, found '#'"),

		// Positions count runes and lines; a tab is one column.
		{"SELECT a,\n       (b) FROM x.y", 2, 8, "expected a column name or an aggregate, found '('"},
		{"SELECT a\nFROM x.y\nWHERE b = '黄浦区' AND c = d", 3, 25, "comparing two columns is not supported; WHERE compares columns with literals"},
		{"SELECT\ta\tFROM\tx.y\tJOIN\tz.w", 1, 19, "unsupported JOIN; yrdnode queries read one dataset or one dataset family"},
		{"SELECT a FROM x.y WHERE b = 'line one\nline two' AND c = d", 2, 19, "comparing two columns is not supported; WHERE compares columns with literals"},
		{"-- comment\r\nSELECT a FROM x.y JOIN", 2, 19, "unsupported JOIN; yrdnode queries read one dataset or one dataset family"},
		{"SELECT a FROM x.y WHERE b = 'a\nb", 1, 29, "unterminated string literal"},
		{"SELECT a\n", 2, 1, "expected FROM, found end of input"},
		{"SELECT \"a\nb\" FROM x.y", 1, 10, "line breaks and tabs are not allowed in a quoted identifier"},
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases() {
		t.Run(tc.in, func(t *testing.T) {
			q, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tc.in, q)
			}
			if q != nil {
				t.Errorf("Parse(%q) returned a query with its error", tc.in)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", tc.in, err, err)
			}
			want := fmt.Sprintf("line %d, column %d: %s", tc.line, tc.col, tc.msg)
			if err.Error() != want {
				t.Errorf("Parse(%q)\n got: %v\nwant: %s", tc.in, err, want)
			}
		})
	}
}

func TestErrorCasesAreInsideTheirInput(t *testing.T) {
	for _, tc := range errorCases() {
		if _, err := Parse(tc.in); err != nil {
			checkPosition(t, tc.in, err.(*SyntaxError))
		}
	}
}

// TestErrorPositionReadsWhatSyntaxErrorWrites: a client reads back the
// position of a SyntaxError from any message that carries its text.
func TestErrorPositionReadsWhatSyntaxErrorWrites(t *testing.T) {
	msg := "sql: " + (&SyntaxError{Line: 3, Column: 17, Msg: "expected FROM"}).Error()
	if line, col, ok := ErrorPosition(msg); !ok || line != 3 || col != 17 {
		t.Fatalf("ErrorPosition(%q) = %d, %d, %v", msg, line, col, ok)
	}
	for _, msg := range []string{"purpose: must be a slug", "line 1, column 99999999999999999999: x", ""} {
		if _, _, ok := ErrorPosition(msg); ok {
			t.Errorf("ErrorPosition(%q) found a position", msg)
		}
	}
}
