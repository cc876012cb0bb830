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

// TestCountsInListsOneYear: every organisation and kind recorded in the
// year, with its count, and nothing of another year; a refused flow adds
// no entry.
func TestCountsInListsOneYear(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "exports.db"), []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := l.CountsIn(2026); err != nil || len(got) != 0 {
		t.Fatalf("empty ledger: %v, %v", got, err)
	}
	for _, r := range []struct {
		org  string
		year int
		k    Kind
		n    int
	}{
		{"sh-transport", 2026, Personal, 12}, {"sh-transport", 2026, Sensitive, 3}, {"hz-port", 2026, Personal, 5},
		{"sh-transport", 2025, Personal, 40}, {"a\x002026", 2027, Sensitive, 1},
	} {
		if _, _, err := l.Record(r.org, r.year, r.k, persons(0, r.n), 100); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := l.Record("nb-port", 2026, Personal, persons(0, 11), 10); !errors.Is(err, ErrLimit) {
		t.Fatalf("flow past the limit: %v", err)
	}
	got, err := l.CountsIn(2026)
	if err != nil {
		t.Fatal(err)
	}
	want := []YearCount{{"hz-port", Personal, 5}, {"sh-transport", Personal, 12}, {"sh-transport", Sensitive, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("CountsIn(2026) = %v, want %v", got, want)
	}
	// An organisation's name may hold what the bucket name separates with.
	if got, _ := l.CountsIn(2027); len(got) != 1 || got[0] != (YearCount{"a\x002026", Sensitive, 1}) {
		t.Fatalf("CountsIn(2027) = %+v", got)
	}
}
