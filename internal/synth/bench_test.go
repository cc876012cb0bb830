package synth

import (
	"bytes"
	"io"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func sampleDataset(tb testing.TB, id string) *yrdv1.Dataset {
	tb.Helper()
	for _, d := range sample.Datasets() {
		if d.GetId() == id {
			return d
		}
	}
	tb.Fatalf("no sample dataset %s", id)
	return nil
}

// benchRows is the size the brief asks for: a city's elderly population at
// the top of the range tests and benchmarks use.
const benchRows = 2_000_000

// BenchmarkWriteCSV writes 2,000,000 rows of each sample dataset to
// io.Discard and reports rows/s.
func BenchmarkWriteCSV(b *testing.B) {
	for _, id := range []string{
		"shanghai.civil-affairs.elderly-population",
		"nanjing.health.hospital-visits",
		"nanjing.transport.road-traffic-flow",
		"shanghai.connected-vehicles.lingang-trips",
		"hangzhou.fintech.enterprise-credit",
		"shanghai.public-security.household-registry",
	} {
		d := sampleDataset(b, id)
		b.Run(id, func(b *testing.B) {
			var cw countingWriter
			for b.Loop() {
				cw = 0
				if err := WriteCSV(&cw, d, benchRows, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(cw))
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkWriteJSONLines is BenchmarkWriteCSV's elderly case as JSON Lines.
func BenchmarkWriteJSONLines(b *testing.B) {
	d := sampleDataset(b, "shanghai.civil-affairs.elderly-population")
	for b.Loop() {
		if err := WriteJSONLines(io.Discard, d, benchRows, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteCSVBuffer writes the elderly rows into a bytes.Buffer, the
// way a test that loads them into a database would.
func BenchmarkWriteCSVBuffer(b *testing.B) {
	d := sampleDataset(b, "shanghai.civil-affairs.elderly-population")
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := WriteCSV(&buf, d, benchRows, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
