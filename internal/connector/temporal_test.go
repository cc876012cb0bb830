package connector

import (
	"context"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestDateAndTimestampLiterals filters on DATE and TIMESTAMP columns with
// date and RFC 3339 literals (one with a non-UTC offset) and checks the
// counts against the generator.
func TestDateAndTimestampLiterals(t *testing.T) {
	const n = 5000
	byID := map[string]*yrdv1.Dataset{}
	for _, d := range sample.Datasets() {
		byID[d.GetId()] = d
	}
	for _, tc := range []struct{ dataset, column string }{
		{"nanjing.health.hospital-visits", "visit_date"},
		{"nanjing.transport.road-traffic-flow", "interval_start"},
	} {
		d := byID[tc.dataset]
		if d == nil {
			t.Fatalf("no sample dataset %s", tc.dataset)
		}
		gen := generated(t, d, n)
		// The median value splits the rows; count those at or after it.
		var times []time.Time
		for _, r := range gen {
			if v, ok := r[tc.column].(time.Time); ok {
				times = append(times, v)
			}
		}
		mid := times[len(times)/2]
		lit := &yrdv1.Literal{Value: &yrdv1.Literal_DateValue{DateValue: mid.Format(time.DateOnly)}}
		if tc.column == "interval_start" {
			// The same instant written in Shanghai time.
			lit = &yrdv1.Literal{Value: &yrdv1.Literal_TimestampValue{TimestampValue: mid.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339)}}
		}
		var cut time.Time
		if tc.column == "visit_date" {
			cut, _ = time.Parse(time.DateOnly, mid.Format(time.DateOnly))
		} else {
			cut = mid
		}
		want := 0
		for _, v := range times {
			if !v.Before(cut) {
				want++
			}
		}
		p := writeCSV(t, t.TempDir(), d, n)
		db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{p}}}, catalogOf(d))
		if err != nil {
			t.Fatal(err)
		}
		q := onDataset(d)
		q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
		q.Where = &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: tc.column, Op: yrdv1.CompareOp_COMPARE_OP_GE, Value: lit}}}
		sql, args, err := Compile(d, q, decision(d, rows, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, got := collect(t, db, sql, args)
		if got[0][0] != int64(want) {
			t.Errorf("%s >= %v: %v rows, want %d", tc.column, lit, got[0][0], want)
		}
		db.Close()
	}
}
