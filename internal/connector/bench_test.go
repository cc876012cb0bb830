package connector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const benchRows = 2_000_000

var (
	benchOnce sync.Once
	benchDir  string // the benchmarks' files, shared; removed by TestMain
	benchErr  error
)

// benchFiles writes benchRows rows of the elderly dataset once per run, as
// CSV and as Parquet, and returns the path of format's file.
func benchFiles(b *testing.B, d *yrdv1.Dataset, format string) string {
	b.Helper()
	benchOnce.Do(func() {
		if benchDir, benchErr = os.MkdirTemp("", "yrdnode-bench-"); benchErr != nil {
			return
		}
		csv := writeCSV(b, benchDir, d, benchRows)
		tmp, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{csv}}}, catalogOf(d))
		if err != nil {
			benchErr = err
			return
		}
		defer tmp.Close()
		lit, _ := quoteString(filepath.Join(benchDir, "elderly.parquet"))
		_, benchErr = tmp.DB().Exec(`COPY (SELECT * FROM ` + quoteIdent(d.GetId()) + `) TO ` + lit + ` (FORMAT parquet)`)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	if format == "parquet" {
		return filepath.Join(benchDir, "elderly.parquet")
	}
	return filepath.Join(benchDir, "data-2000000.csv")
}

// benchPlan is how a benchmark plans its query.
type benchPlan int

const (
	planPlain          benchPlan = iota // today's plan
	planIndividuals                     // today's plan as the node runs it: with the individuals column
	planSketchFast                      // Plan with Options.Sketch on files verified unique
	planSketchDistinct                  // the sketch plan with its distinct step
)

// benchGroupBy runs a k-suppressed group-by over benchRows rows of the
// elderly dataset read from format files, reporting rows scanned per
// second. With distinct, the query also counts distinct care levels.
func benchGroupBy(b *testing.B, format string, plan benchPlan, distinct bool) {
	d := elderly(b)
	path := benchFiles(b, d, format)
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
	if distinct {
		q.Select = append(q.Select, agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, "gender", "genders"))
	}
	q.GroupBy = []string{"district", "care_level"}
	dec := decision(d, yrdv1.Effect_EFFECT_ALLOW_AGGREGATES, nil)
	// 64 cells: four per unit of k = 10, as the node sizes them.
	sk := &SketchOptions{Cells: 64, Seed: []byte("benchmark sketch seed, 32 bytes!")}
	var st Statement
	switch plan {
	case planPlain:
		st.SQL, st.Args, err = Compile(d, q, dec, nil)
	case planIndividuals:
		st, err = db.Plan(d.GetId(), q, dec, Options{Individuals: true})
	case planSketchFast:
		st, err = db.Plan(d.GetId(), q, dec, Options{Sketch: sk})
		if err == nil && !strings.Contains(st.SQL, `"`+skCell+`"`) || strings.Contains(st.SQL, `GROUPING("`+personAlias+`"`) {
			b.Fatal("not the fast path: the person key was not verified unique")
		}
	case planSketchDistinct:
		st.SQL, st.Args, err = CompileWith(d, q, dec, Options{Sketch: sk}) // never verified: the distinct path
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r, err := db.Exec(context.Background(), st)
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

func BenchmarkGroupByCSV(b *testing.B)     { benchGroupBy(b, "csv", planPlain, false) }
func BenchmarkGroupByParquet(b *testing.B) { benchGroupBy(b, "parquet", planPlain, false) }

func BenchmarkGroupByIndividualsParquet(b *testing.B) {
	benchGroupBy(b, "parquet", planIndividuals, false)
}

func BenchmarkGroupBySketchFastCSV(b *testing.B) { benchGroupBy(b, "csv", planSketchFast, false) }
func BenchmarkGroupBySketchFastParquet(b *testing.B) {
	benchGroupBy(b, "parquet", planSketchFast, false)
}

func BenchmarkGroupBySketchDistinctCSV(b *testing.B) {
	benchGroupBy(b, "csv", planSketchDistinct, false)
}
func BenchmarkGroupBySketchDistinctParquet(b *testing.B) {
	benchGroupBy(b, "parquet", planSketchDistinct, false)
}

// With count(DISTINCT gender): the sketch plan computes it in both
// grouping sets.
func BenchmarkGroupByCountDistinctParquet(b *testing.B) { benchGroupBy(b, "parquet", planPlain, true) }
func BenchmarkGroupByCountDistinctSketchFastParquet(b *testing.B) {
	benchGroupBy(b, "parquet", planSketchFast, true)
}
func BenchmarkGroupByCountDistinctSketchDistinctParquet(b *testing.B) {
	benchGroupBy(b, "parquet", planSketchDistinct, true)
}
