package console

import (
	"io/fs"
	"strings"
	"testing"
)

// TestStylesheetBracesBalance: a rule block left open (a merge can drop a
// closing brace) makes the browser read every later rule as part of it.
func TestStylesheetBracesBalance(t *testing.T) {
	data, err := fs.ReadFile(staticFS, "static/console.css")
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for i, line := range strings.Split(string(data), "\n") {
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if depth < 0 || depth > 1 && !strings.Contains(line, "{") {
			t.Fatalf("console.css line %d: blocks nest %d deep; a closing brace is missing or extra", i+1, depth)
		}
	}
	if depth != 0 {
		t.Fatalf("console.css ends with %d blocks open", depth)
	}
}
