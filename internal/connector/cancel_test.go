package connector

import (
	"context"
	"testing"
	"time"
)

// TestCancelStopsQuery checks that cancelling the context interrupts
// DuckDB mid-query instead of waiting for a huge cross join to finish.
func TestCancelStopsQuery(t *testing.T) {
	db, _ := openElderly(t)
	// 10^10 row pairs: minutes of work if nothing interrupts it.
	const long = `SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b`
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	r, err := db.Query(ctx, long, nil)
	if err == nil {
		for r.Next() {
		}
		err = r.Err()
		r.Close()
	}
	took := time.Since(start)
	if err == nil {
		t.Fatalf("cancelled query finished without error after %v", took)
	}
	if took > 5*time.Second {
		t.Fatalf("cancelled query ran %v", took)
	}
	t.Logf("stopped after %v: %v", took, err)

	// The database is still usable afterwards.
	if _, got := collect(t, db, `SELECT 1`, nil); len(got) != 1 {
		t.Fatal("database unusable after a cancellation")
	}
}
