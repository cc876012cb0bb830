package sqlq

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that every error is a
// *SyntaxError pointing inside the input (or just past its end), and that
// whatever Parse accepts survives the Format/Parse round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.in)
	}
	for _, tc := range errorCases() {
		f.Add(tc.in)
	}
	for _, s := range []string{
		benchQuery,
		"SELECT * FROM x.y WHERE " + strings.Repeat("NOT ", MaxDepth) + "a = 1",
		"SELECT * FROM x.y WHERE " + strings.Repeat("(", MaxDepth) + "a = 1" + strings.Repeat(")", MaxDepth),
		"SELECT * FROM x.y WHERE NOT (a = 1 OR NOT (b = 2 AND (c = 3 OR d = 4)))",
		"SELECT \"a\"\"\" AS \"SELECT\" FROM \"x.y\" ORDER BY \"SELECT\" DESC",
		"SELECT a FROM x.y WHERE a = -0.0 OR a = 5e-324 OR a = 1.7976931348623157e308 OR a = 0.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		q, err := Parse(in)
		if err != nil {
			if q != nil {
				t.Fatal("a query with an error")
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *SyntaxError", err, err)
			}
			checkPosition(t, in, se)
			return
		}
		checkRoundTrip(t, in)
	})
}

// checkPosition fails unless the error's line exists in the input and its
// column is on that line or just past its end. Columns count runes, an
// invalid byte counting as one, as the lexer does.
func checkPosition(t *testing.T, in string, se *SyntaxError) {
	t.Helper()
	lines := strings.Split(in, "\n")
	if se.Line < 1 || se.Line > len(lines) {
		t.Fatalf("Parse(%q): line %d of %d: %v", in, se.Line, len(lines), se)
	}
	if n := utf8.RuneCountInString(lines[se.Line-1]); se.Column < 1 || se.Column > n+1 {
		t.Fatalf("Parse(%q): column %d on a line of %d runes: %v", in, se.Column, n, se)
	}
	if se.Msg == "" {
		t.Fatalf("Parse(%q): empty message", in)
	}
}
