package connector

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// TestPreparedStatementSeesReplacedView: a statement prepared and kept
// before a check recreates a dataset's view over new files reads the new
// files, and is refused once the view is dropped.
func TestPreparedStatementSeesReplacedView(t *testing.T) {
	d := elderly(t)
	path := writeCSV(t, t.TempDir(), d, testRows)
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{path}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func() int64 {
		t.Helper()
		_, rows := collect(t, db, "SELECT count(*) + ? FROM "+quoteIdent(d.GetId()), []any{0})
		return rows[0][0].(int64)
	}
	if n := count(); n != testRows {
		t.Fatalf("%d rows, want %d", n, testRows)
	}
	if count() != testRows || db.stmts.cache.Len() != 1 {
		t.Fatalf("%d statements kept, want 1", db.stmts.cache.Len())
	}
	if err := os.Rename(writeCSV(t, t.TempDir(), d, testRows/2), path); err != nil {
		t.Fatal(err)
	}
	if ms := db.CheckDataset(context.Background(), d.GetId()); len(ms) != 0 {
		t.Fatal(ms)
	}
	if n := count(); n != testRows/2 {
		t.Fatalf("after the view was recreated: %d rows, want %d", n, testRows/2)
	}
	db.mu.Lock()
	db.problems[d.GetId()] = []Mismatch{{DatasetID: d.GetId(), Problem: "test"}}
	db.mu.Unlock()
	if _, err := db.Query(context.Background(), "SELECT count(*) + ? FROM "+quoteIdent(d.GetId()), []any{0}); err == nil {
		t.Fatal("a dataset no longer served was read through a kept statement")
	}
}

// TestStatementCacheIsBounded: at most maxCachedStatements are kept, and
// rows read from an evicted statement stay readable to their end.
func TestStatementCacheIsBounded(t *testing.T) {
	db, _ := openElderly(t)
	held, err := db.Query(context.Background(), "SELECT * FROM range(3)", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for i := range maxCachedStatements + 10 {
		collect(t, db, "SELECT "+strconv.Itoa(i), nil)
	}
	if n := db.stmts.cache.Len(); n != maxCachedStatements {
		t.Fatalf("%d statements kept, want %d", n, maxCachedStatements)
	}
	n := 0
	for held.Next() {
		n++
	}
	if err := held.Err(); err != nil || n != 3 {
		t.Fatalf("rows of an evicted statement: %d, %v", n, err)
	}
}
