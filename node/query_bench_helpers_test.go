package node_test

// Helpers of the query benchmarks (query_bench_test.go): the Parquet
// delta they run on and the draining of a query's stream.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

const (
	benchSeed      = 7
	trafficID      = "nanjing.transport.road-traffic-flow"
	trafficPurpose = "traffic-management"
	elderlyFamily  = "yrd.elderly-population.v1"
	// benchOpTimeout bounds one benchmarked query (a 2M-row stream or a
	// 10M-row group-by takes seconds, not minutes).
	benchOpTimeout = 5 * time.Minute
)

// parquetFile is one dataset served from one Parquet file.
type parquetFile struct {
	d    *yrdv1.Dataset
	rows int
	path string
}

// datasetOf is city's dataset id from synth.ForCity (a fresh copy).
func datasetOf(tb testing.TB, city, id string) *yrdv1.Dataset {
	tb.Helper()
	for _, d := range synth.ForCity(city) {
		if d.GetId() == id {
			return d
		}
	}
	tb.Fatalf("synth.ForCity(%q) has no dataset %s", city, id)
	return nil
}

// elderlyDatasetOf is city's dataset of the elderly-population family.
func elderlyDatasetOf(tb testing.TB, city string) *yrdv1.Dataset {
	tb.Helper()
	for _, d := range synth.ForCity(city) {
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			return d
		}
	}
	tb.Fatalf("synth.ForCity(%q) has no elderly dataset", city)
	return nil
}

func sqlIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func sqlString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// writeSynthParquet writes f.rows synthetic rows of f.d to f.path as
// Parquet: synth writes CSV (its only bulk format), DuckDB reads it with
// the catalog's column types (as a node would) and copies it to Parquet;
// the CSV is removed.
func writeSynthParquet(f parquetFile) error {
	csvPath := strings.TrimSuffix(f.path, ".parquet") + ".csv"
	w, err := os.Create(csvPath)
	if err != nil {
		return err
	}
	defer os.Remove(csvPath)
	if err := synth.WriteCSV(w, f.d, f.rows, benchSeed); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	id := f.d.GetId()
	db, err := connector.OpenDuckDB(context.Background(), []connector.Source{{DatasetID: id, Format: "csv", Paths: []string{csvPath}}},
		func(string) (*yrdv1.Dataset, bool) { return f.d, true })
	if err != nil {
		return err
	}
	defer db.Close()
	if !db.Serving(id) {
		return fmt.Errorf("%s: generated CSV does not match the schema: %v", id, db.Problems(id))
	}
	_, err = db.DB().Exec(`COPY (SELECT * FROM ` + sqlIdent(id) + `) TO ` + sqlString(f.path) + ` (FORMAT parquet)`)
	return err
}

// writeParquetFiles generates every file, two at a time (the machine the
// targets are stated for has two cores).
func writeParquetFiles(tb testing.TB, files []parquetFile) {
	tb.Helper()
	start := time.Now()
	sem := make(chan struct{}, 2)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = writeSynthParquet(files[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	total := 0
	for _, f := range files {
		total += f.rows
	}
	tb.Logf("generated %d rows in %d Parquet files in %v", total, len(files), time.Since(start).Round(time.Millisecond))
}

// startParquetDelta starts one node per city with production raft timing
// (fsync on), each serving its files, publishes the files' datasets and
// waits until every owner serves its data. Unlike startDataDelta it serves
// only the datasets given, from Parquet.
func startParquetDelta(tb testing.TB, dir string, cities []string, files []parquetFile) *dataDelta {
	tb.Helper()
	dd := &dataDelta{datasets: map[string]*yrdv1.Dataset{}, files: map[string]string{}}
	perCity := map[string][]connector.Source{}
	for _, f := range files {
		city := f.d.GetOwnerCity()
		dd.datasets[f.d.GetId()], dd.files[f.d.GetId()] = f.d, f.path
		perCity[city] = append(perCity[city], connector.Source{DatasetID: f.d.GetId(), Format: "parquet", Paths: []string{f.path}})
	}
	dd.Cluster = startCluster(tb, testnet.Options{Cities: cities, Voters: min(len(cities), 3), DataDir: filepath.Join(dir, "nodes"),
		Raft: defaultRaft(), Configure: func(i int, cfg *node.Config) { cfg.Data.Files = perCity[cities[i]] }})
	// The benchmarks compare exact answers; every noisy query still spends
	// budget through raft, as it would with noise.
	if err := dd.UpdatePolicy(testCtx(tb), 0, testnet.NoiseOff); err != nil {
		tb.Fatal(err)
	}
	dd.publishAndWait(tb, 60*time.Second)
	return dd
}

// streamStats is what a drained query stream carried.
type streamStats struct {
	header  *yrdv1.ResultHeader
	trailer *yrdv1.ResultTrailer
	rows    int
	bytes   int          // protobuf payload of every message (sized only if asked)
	kept    []*yrdv1.Row // the rows, only if asked
	// columnBatches counts ColumnBatch messages.
	columnBatches int
}

// drainQuery runs sql through the client API and reads the whole stream,
// counting rows without keeping them unless keep is set, so that the
// client's memory does not grow with the result.
func drainQuery(ctx context.Context, conn *grpc.ClientConn, sqlText, purpose string, keep, size bool) (*streamStats, error) {
	return drainQueryAs(ctx, conn, sqlText, purpose, keep, size, false)
}

// drainQueryAs is drainQuery asking for column batches if columnar; the
// stream is decoded (as any client does) and column batches are counted by
// their rows field, converted to rows only when kept.
func drainQueryAs(ctx context.Context, conn *grpc.ClientConn, sqlText, purpose string, keep, size, columnar bool) (*streamStats, error) {
	st, err := yrdv1grpc.NewQueryServiceClient(conn).Query(ctx, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sqlText}, Purpose: purpose,
		Columnar: columnar})
	if err != nil {
		return nil, err
	}
	s := &streamStats{}
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if size {
			s.bytes += proto.Size(msg)
		}
		switch x := msg.GetPart().(type) {
		case *yrdv1.QueryResponse_Header:
			s.header = x.Header
		case *yrdv1.QueryResponse_Batch:
			s.rows += len(x.Batch.GetRows())
			if keep {
				s.kept = append(s.kept, x.Batch.GetRows()...)
			}
		case *yrdv1.QueryResponse_Columns:
			s.rows += int(x.Columns.GetRows())
			s.columnBatches++
			if keep {
				rows, err := resultcodec.ColumnsToRows(x.Columns)
				if err != nil {
					return s, err
				}
				s.kept = append(s.kept, rows...)
			}
		case *yrdv1.QueryResponse_Trailer:
			s.trailer = x.Trailer
		}
	}
}

// checkComplete fails unless every city answered and the trailer counts
// want rows (want < 0: any).
func checkComplete(tb testing.TB, s *streamStats, want int) {
	tb.Helper()
	if s.trailer == nil || s.trailer.GetPartial() {
		tb.Fatalf("incomplete result: trailer %v", s.trailer)
	}
	for _, c := range s.trailer.GetCities() {
		if c.GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK {
			tb.Fatalf("%s: %v %s", c.GetCity(), c.GetStatus(), c.GetReason())
		}
	}
	if want >= 0 && (s.rows != want || s.trailer.GetRows() != uint64(want)) {
		tb.Fatalf("%d rows streamed, trailer says %d; want %d", s.rows, s.trailer.GetRows(), want)
	}
}

func benchCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), benchOpTimeout)
}
