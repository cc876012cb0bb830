package ledger

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func persons(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("3101%014d", from+i)
	}
	return out
}

func TestRecordCountsDistinctIndividualsAndRefusesPastLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exports.db")
	l, err := Open(path, []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	total, added, err := l.Record("sh-transport", 2026, Personal, persons(0, 60), 100)
	if err != nil || total != 60 || added != 60 {
		t.Fatalf("first flow: total %d added %d err %v, want 60 60 nil", total, added, err)
	}
	// 30 repeat individuals and 30 new ones: only the new ones count.
	total, added, err = l.Record("sh-transport", 2026, Personal, persons(30, 60), 100)
	if err != nil || total != 90 || added != 30 {
		t.Fatalf("second flow: total %d added %d err %v, want 90 30 nil", total, added, err)
	}
	// 11 new would make 101 > 100: refused, nothing recorded.
	if _, added, err = l.Record("sh-transport", 2026, Personal, persons(80, 21), 100); !errors.Is(err, ErrLimit) || added != 11 {
		t.Fatalf("flow past the limit: added %d err %v, want 11 ErrLimit", added, err)
	}
	if n, _ := l.Count("sh-transport", 2026, Personal); n != 90 {
		t.Errorf("count after a refused flow = %d, want 90 (unchanged)", n)
	}
	// Other org, other year and the sensitive count are separate.
	for _, c := range []struct {
		org  string
		year int
		k    Kind
	}{{"hz-transport", 2026, Personal}, {"sh-transport", 2027, Personal}, {"sh-transport", 2026, Sensitive}} {
		if n, _ := l.Count(c.org, c.year, c.k); n != 0 {
			t.Errorf("count %v = %d, want 0", c, n)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, _ := l.Count("sh-transport", 2026, Personal); n != 90 {
		t.Errorf("count after reopen = %d, want 90", n)
	}
}

func TestOpenRefusesShortKey(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), []byte("short")); err == nil {
		t.Fatal("Open with a 5-byte key succeeded")
	}
}

func TestPreviewCountsWithoutRecording(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "exports.db"), []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.Record("nb-port", 2026, Sensitive, persons(0, 10), 100); err != nil {
		t.Fatal(err)
	}
	total, fresh, err := l.Preview("nb-port", 2026, Sensitive, append(persons(5, 10), persons(5, 1)...))
	if err != nil || total != 10 || fresh != 5 {
		t.Fatalf("Preview = %d, %d, %v; want 10, 5, nil", total, fresh, err)
	}
	if n, _ := l.Count("nb-port", 2026, Sensitive); n != 10 {
		t.Errorf("count after Preview = %d, want 10", n)
	}
}
