package connector

import (
	"context"
	"path/filepath"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const benchRows = 2_000_000

// benchGroupBy runs a k-suppressed group-by over benchRows rows of the
// elderly dataset read from format files, reporting rows scanned per second.
func benchGroupBy(b *testing.B, format string) {
	d := elderly(b)
	dir := b.TempDir()
	csv := writeCSV(b, dir, d, benchRows)
	path := csv
	if format == "parquet" {
		path = filepath.Join(dir, "elderly.parquet")
		tmp, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{csv}}}, catalogOf(d))
		if err != nil {
			b.Fatal(err)
		}
		lit, _ := quoteString(path)
		if _, err := tmp.DB().Exec(`COPY (SELECT * FROM ` + quoteIdent(d.GetId()) + `) TO ` + lit + ` (FORMAT parquet)`); err != nil {
			b.Fatal(err)
		}
		tmp.Close()
	}
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: format, Paths: []string{path}}}, catalogOf(d))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if !db.Serving(d.GetId()) {
		b.Fatal(db.Check(context.Background()))
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), col("care_level"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG, "age", "avg_age")}
	q.GroupBy = []string{"district", "care_level"}
	dec := decision(d, yrdv1.Effect_EFFECT_ALLOW_AGGREGATES, nil)
	sql, args, err := Compile(d, q, dec, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r, err := db.Query(context.Background(), sql, args)
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
		}
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkGroupByCSV(b *testing.B)     { benchGroupBy(b, "csv") }
func BenchmarkGroupByParquet(b *testing.B) { benchGroupBy(b, "parquet") }
