package connector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestEverySampleDatasetLoads checks every catalog type end to end: each
// sample dataset's generated CSV passes the schema check and every row
// parses under the catalog types, with the generator's values.
func TestEverySampleDatasetLoads(t *testing.T) {
	const n = 2000
	for _, d := range sample.Datasets() {
		for _, format := range []string{"csv", "json"} {
			t.Run(format+"/"+d.GetId(), func(t *testing.T) {
				var p string
				if format == "csv" {
					p = writeCSV(t, t.TempDir(), d, n)
				} else {
					p = filepath.Join(t.TempDir(), "data.jsonl")
					var buf bytes.Buffer
					if err := synth.WriteJSONLines(&buf, d, n, testSeed); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: format, Paths: []string{p}}}, catalogOf(d))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if !db.Serving(d.GetId()) {
					t.Fatalf("not served: %v", db.Check(context.Background()))
				}
				dec := decision(d, rows, nil)
				dec.RowCap = n
				q := onDataset(d)
				sql, args, err := Compile(d, q, dec, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, got := collect(t, db, sql, args)
				if len(got) != n {
					t.Fatalf("%d rows, want %d", len(got), n)
				}
				// Compare multisets of rendered rows: the row order of a
				// parallel scan is not guaranteed.
				gen := generated(t, d, n)
				cols := d.GetSchema().GetColumns()
				want := map[string]int{}
				for _, r := range gen {
					want[render(cols, func(i int) any { return r[cols[i].GetName()] })]++
				}
				for _, r := range got {
					k := render(cols, func(i int) any { return r[i] })
					if want[k] == 0 {
						t.Fatalf("row %s not generated", k)
					}
					want[k]--
				}
			})
		}
	}
}

// render is a row as text that is the same for the generator's Go values
// and DuckDB's, whatever the integer width.
func render(cols []*yrdv1.Column, v func(i int) any) string {
	s := ""
	for i, c := range cols {
		x := v(i)
		switch y := x.(type) {
		case int32:
			x = int64(y)
		case float64:
			x = fmt.Sprintf("%.4f", y)
		}
		if c.GetType() == "DATE" || c.GetType() == "TIMESTAMP" {
			x = fmt.Sprint(x)
		}
		s += fmt.Sprint(x) + "|"
	}
	return s
}
