package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The 100k-dataset catalog is built once per test binary and shared by the
// list benchmarks (go test calls each benchmark function several times).
var (
	bigOnce sync.Once
	bigDir  string
	bigCat  *Catalog
	bigErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bigCat != nil {
		bigCat.Close()
	}
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

const bigSize = 100_000

func bigCatalog(b *testing.B) *Catalog {
	b.Helper()
	bigOnce.Do(func() {
		start := time.Now()
		if bigDir, bigErr = os.MkdirTemp("", "yrd-store-bench-"); bigErr != nil {
			return
		}
		if bigCat, bigErr = OpenCatalog(filepath.Join(bigDir, "catalog.db"), Options{NoSync: true}); bigErr != nil {
			return
		}
		bigErr = bigCat.Update(1, func(tx *Tx) error {
			for i := range bigSize {
				if err := tx.PutDataset(genDataset(i)); err != nil {
					return err
				}
			}
			return nil
		})
		fmt.Fprintf(os.Stderr, "built %d-dataset catalog in %v\n", bigSize, time.Since(start).Round(time.Millisecond))
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigCat
}

// benchList runs one query per iteration and reports latency percentiles,
// which matter more than the mean for a p99 target.
func benchList(b *testing.B, c *Catalog, query func(i int) ListFilter) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	results := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f := query(i)
		start := time.Now()
		ds, _, err := c.ListDatasets(f)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		results += len(ds)
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e6, "max-ms")
	b.ReportMetric(float64(results)/float64(len(lat)), "results/op")
}

func BenchmarkListFiltered100k(b *testing.B) {
	c := bigCatalog(b)
	mid := encodePageToken(genDataset(bigSize / 2).Id)
	b.Run("city+level", func(b *testing.B) {
		benchList(b, c, func(i int) ListFilter {
			f := ListFilter{
				OwnerCity: testCities[i%len(testCities)],
				Level:     yrdv1.ClassificationLevel(1 + (i/len(testCities))%3),
				PageSize:  100,
			}
			if i%2 == 1 {
				f.PageToken = mid
			}
			return f
		})
	})
	// A combination few datasets have: the whole smallest posting list is
	// walked without filling the page, the worst case for this strategy.
	b.Run("five-filters-sparse", func(b *testing.B) {
		benchList(b, c, func(i int) ListFilter {
			city := testCities[i%len(testCities)]
			return ListFilter{OwnerCity: city, Sector: "finance", Tag: "open-data", Level: yrdv1.ClassificationLevel_LEVEL_CORE, StandardSchemaID: "yrd.metro.v1", PageSize: 100}
		})
	})
}

func BenchmarkListText100k(b *testing.B) {
	c := bigCatalog(b)
	words := []string{"养老", "metro 统计", "pension 水质", "open-data hospital", "交通 monthly", "医院"}
	b.Run("words", func(b *testing.B) {
		benchList(b, c, func(i int) ListFilter { return ListFilter{Text: words[i%len(words)], PageSize: 100} })
	})
	b.Run("words+city", func(b *testing.B) {
		benchList(b, c, func(i int) ListFilter {
			return ListFilter{Text: words[i%len(words)], OwnerCity: testCities[i%len(testCities)], PageSize: 100}
		})
	})
	// Nothing matches: every dataset's text is scanned.
	b.Run("no-match-full-scan", func(b *testing.B) {
		benchList(b, c, func(i int) ListFilter { return ListFilter{Text: fmt.Sprintf("缺失%d", i), PageSize: 100} })
	})
}

func benchUpdate(b *testing.B, perUpdate int) {
	c, err := OpenCatalog(filepath.Join(b.TempDir(), "catalog.db"), Options{}) // fsync on
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fill(b, c, 1, 10_000)
	index := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		index++
		err := c.Update(index, func(tx *Tx) error {
			for j := range perUpdate {
				d := genDataset((i*perUpdate + j) % 20_000)
				d.Version = index
				if err := tx.PutDataset(d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perUpdate)/b.Elapsed().Seconds(), "datasets/s")
}

func BenchmarkUpdate(b *testing.B) { benchUpdate(b, 1) }

// BenchmarkUpdateBatch64 shows what the FSM gains by applying a raft batch
// in one Update.
func BenchmarkUpdateBatch64(b *testing.B) { benchUpdate(b, 64) }

// BenchmarkLogStoreStoreLogs is the bbolt log store's append, fsync on:
// every commit writes the changed pages, fdatasyncs, writes the meta page
// and fdatasyncs again.
func BenchmarkLogStoreStoreLogs(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s, err := OpenLogStore(filepath.Join(b.TempDir(), "raft.db"), Options{}) // fsync on
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchStoreLogs(b, s, n)
		})
	}
}

// benchStoreLogs appends batches of n 256-byte commands, as raft does.
func benchStoreLogs(b *testing.B, s raft.LogStore, n int) {
	data := make([]byte, 256)
	batch := make([]*raft.Log, n)
	next := uint64(1)
	lat := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			batch[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
			next++
		}
		start := time.Now()
		if err := s.StoreLogs(batch); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "logs/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
