package sqlq

import (
	"slices"
	"testing"
)

// TestParseColumnsInTextOrder: every column the text names, where it names
// it, in text order, whatever clause; aliases and positions are not
// columns. Columns gives the same names for the parsed query.
func TestParseColumnsInTextOrder(t *testing.T) {
	text := "SELECT district AS d, count(DISTINCT person_id)\nFROM shanghai.a.b\nWHERE age > 60 AND \"gender\" IN ('F')\nGROUP BY distrct ORDER BY d, age"
	q, refs, err := ParseColumns(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []ColumnRef{{"district", 1, 8}, {"person_id", 1, 38}, {"age", 3, 7}, {"gender", 3, 20},
		{"distrct", 4, 10}, {"age", 4, 30}}
	if !slices.Equal(refs, want) {
		t.Fatalf("refs %v\nwant %v", refs, want)
	}
	var names []string
	for _, r := range Columns(q) {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"district", "person_id", "age", "gender", "distrct", "age"}) {
		t.Fatalf("Columns: %v", names)
	}
	if got := want[4].String(); got != "distrct at line 4, column 10" {
		t.Fatalf("String: %q", got)
	}
}
