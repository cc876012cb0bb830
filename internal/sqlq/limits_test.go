package sqlq

import (
	"fmt"
	"strings"
	"testing"
)

func TestQuerySizeLimit(t *testing.T) {
	head := "SELECT a FROM x.y WHERE b = '"
	fit := head + strings.Repeat("x", MaxQueryBytes-len(head)-1) + "'"
	if len(fit) != MaxQueryBytes {
		t.Fatal(len(fit))
	}
	if _, err := Parse(fit); err != nil {
		t.Fatalf("a query of exactly MaxQueryBytes: %v", err)
	}
	over := fit + " "
	_, err := Parse(over)
	want := fmt.Sprintf("line 1, column %d: the query is %d bytes, more than the limit of %d", MaxQueryBytes+1, MaxQueryBytes+1, MaxQueryBytes)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	// The position counts runes and lines up to the limit.
	multi := "SELECT a FROM x.y\nWHERE b = '" + strings.Repeat("黄", MaxQueryBytes/3) + "'"
	_, err = Parse(multi)
	se, ok := err.(*SyntaxError)
	if !ok || se.Line != 2 || se.Column < 2 || se.Column > len("WHERE b = '")+MaxQueryBytes/3+1 {
		t.Fatalf("got %v", err)
	}
	checkPosition(t, multi, se)
	// Huge input is refused without being scanned whole.
	if _, err := Parse(strings.Repeat("(", 10<<20)); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("got %v", err)
	}
}

func TestSelectItemLimit(t *testing.T) {
	items := func(n int) string {
		cols := make([]string, n)
		for i := range cols {
			cols[i] = fmt.Sprintf("c%d", i)
		}
		return strings.Join(cols, ", ")
	}
	q, err := Parse("SELECT " + items(MaxSelectItems) + " FROM x.y")
	if err != nil || len(q.Select) != MaxSelectItems {
		t.Fatalf("MaxSelectItems items: %v", err)
	}
	in := "SELECT " + items(MaxSelectItems+1) + " FROM x.y"
	_, err = Parse(in)
	want := fmt.Sprintf("line 1, column %d: more than %d select items", colOf(in, fmt.Sprintf("c%d ", MaxSelectItems)), MaxSelectItems)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestDepthLimit(t *testing.T) {
	const head = "SELECT a FROM x.y WHERE "
	for _, tc := range []struct {
		name       string
		open, shut string
	}{
		{"NOT", "NOT ", ""},
		{"parentheses", "(", ")"},
		{"NOT and parentheses", "NOT (", ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// depth counts every NOT and every parenthesis, so the mixed
			// form nests two levels per repetition.
			per := 1
			if tc.name == "NOT and parentheses" {
				per = 2
			}
			n := MaxDepth / per
			ok := head + strings.Repeat(tc.open, n) + "b = 1" + strings.Repeat(tc.shut, n)
			if _, err := Parse(ok); err != nil {
				t.Fatalf("depth %d: %v", MaxDepth, err)
			}
			checkRoundTrip(t, ok)
			deep := head + strings.Repeat(tc.open, n+1) + "b = 1" + strings.Repeat(tc.shut, n+1)
			_, err := Parse(deep)
			se, isSE := err.(*SyntaxError)
			if !isSE || !strings.Contains(se.Msg, "nests more than 100 levels") {
				t.Fatalf("depth %d: got %v", MaxDepth+per, err)
			}
			// The error points at the token that went one level too deep.
			if wantCol := len(head) + n*len(tc.open) + 1; se.Column != wantCol {
				t.Errorf("column %d, want %d: %v", se.Column, wantCol, err)
			}
		})
	}
	// Far deeper input within the size limit is an error, not a crash.
	for _, s := range []string{"NOT ", "("} {
		in := head + strings.Repeat(s, MaxQueryBytes/len(s))
		in = in[:MaxQueryBytes]
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), "nests more than") {
			t.Fatalf("got %v", err)
		}
	}
}
