package resultcodec_test

import (
	"math/rand/v2"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// benchShape is one batch the codec benchmarks convert, in row form.
type benchShape struct {
	name string
	cols []*yrdv1.ResultColumn
	rows []*yrdv1.Row
}

// benchShapes are the batches the codec benchmarks convert: each column
// kind alone (its loop's cost per row), then all six together. Every
// batch has 4096 rows, a fifth of them NULL.
func benchShapes() []benchShape {
	const n = 4096
	all := randomRows(rand.New(rand.NewPCG(1, 2)), n)
	var shapes []benchShape
	for j, c := range allTypes {
		one := make([]*yrdv1.Row, n)
		for i, r := range all {
			one[i] = &yrdv1.Row{Values: r.GetValues()[j : j+1]}
		}
		shapes = append(shapes, benchShape{resultcodec.KindOfType(c.GetType()).String(), allTypes[j : j+1], one})
	}
	return append(shapes, benchShape{"all", allTypes, all})
}

// BenchmarkRowsToColumns packs rows into a column batch (what an owner
// does before sending columns); ns/row is per row of the batch.
func BenchmarkRowsToColumns(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := resultcodec.RowsToColumns(s.cols, s.rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(s.rows)), "ns/row")
		})
	}
}

// BenchmarkColumnsToRows unpacks a column batch into rows (what a node
// does for a client that asked for rows); ns/row is per row of the batch.
func BenchmarkColumnsToRows(b *testing.B) {
	for _, s := range benchShapes() {
		batch, err := resultcodec.RowsToColumns(s.cols, s.rows)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := resultcodec.ColumnsToRows(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(s.rows)), "ns/row")
		})
	}
}
