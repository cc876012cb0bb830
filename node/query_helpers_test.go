package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// dataDelta is a running delta whose cities serve synthetic data for the
// datasets synth.ForCity gives them, in CSV files generated per test.
type dataDelta struct {
	*testnet.Cluster
	datasets map[string]*yrdv1.Dataset // by id
	files    map[string]string         // dataset id → CSV path
}

// deltaOptions shape a data delta.
type deltaOptions struct {
	cities []string // default shanghai, hangzhou, nanjing
	rows   int      // rows per dataset
	// adjust changes a dataset before its rows are generated and it is
	// published.
	adjust func(*yrdv1.Dataset)
	// outside marks cities whose nodes are trial partners outside the
	// mainland.
	outside map[string]bool
	// configure adjusts city i's node config after its data is set.
	configure func(i int, cfg *node.Config)
	// copies lists a dataset's CSV file that many times as its source: a
	// heavy dataset made of a small file.
	copies map[string]int
	// noiseOff sets the policy's per-query epsilon so high that noise
	// rounds to nothing (testnet.NoiseOff), for tests of exact mechanics.
	noiseOff bool
}

// startDataDelta starts one node per city, writes rows rows per dataset
// (seed 7) and publishes the datasets, then waits until every owner serves
// its data. Noise is off (testnet.NoiseOff): its callers test exact
// mechanics, which startDelta's tests of the rules do not assume.
func startDataDelta(t testing.TB, cities []string, rows int, adjust func(*yrdv1.Dataset)) *dataDelta {
	t.Helper()
	return startDelta(t, deltaOptions{cities: cities, rows: rows, adjust: adjust, noiseOff: true})
}

func startDelta(t testing.TB, o deltaOptions) *dataDelta {
	t.Helper()
	if o.cities == nil {
		o.cities = []string{"shanghai", "hangzhou", "nanjing"}
	}
	dir := t.TempDir()
	dd := &dataDelta{datasets: map[string]*yrdv1.Dataset{}, files: map[string]string{}}
	perCity := map[string][]connector.Source{}
	for _, city := range o.cities {
		for _, d := range synth.ForCity(city) {
			if o.adjust != nil {
				o.adjust(d)
			}
			path := filepath.Join(dir, d.GetId()+".csv")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := synth.WriteCSV(f, d, o.rows, 7); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			paths := []string{path}
			if n := o.copies[d.GetId()]; n > 1 {
				paths = []string{advCopies(t, dir, d.GetId(), path, n)}
			}
			dd.datasets[d.GetId()], dd.files[d.GetId()] = d, path
			perCity[city] = append(perCity[city], connector.Source{DatasetID: d.GetId(), Format: "csv", Paths: paths})
		}
	}
	dd.Cluster = startCluster(t, testnet.Options{Cities: o.cities, Voters: min(len(o.cities), 3), DataDir: filepath.Join(dir, "nodes"),
		OutsideMainland: o.outside,
		Configure: func(i int, cfg *node.Config) {
			cfg.Data.Files = perCity[o.cities[i]]
			if o.configure != nil {
				o.configure(i, cfg)
			}
		}})
	if o.noiseOff {
		if err := dd.UpdatePolicy(testCtx(t), 0, testnet.NoiseOff); err != nil {
			t.Fatal(err)
		}
	}
	dd.publishAndWait(t, 30*time.Second)
	return dd
}

// publishAndWait publishes every dataset of dd and waits until its owner
// serves it: publishing triggers the owner's schema check.
func (dd *dataDelta) publishAndWait(t testing.TB, within time.Duration) {
	t.Helper()
	for _, d := range dd.datasets {
		conn, err := dd.PublisherConn(d)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, yrdv1grpc.NewCatalogServiceClient(conn), d)
	}
	deadline := time.Now().Add(within)
	for _, d := range dd.datasets {
		for !dd.Node(dd.Index(d.GetOwnerCity())).Serving(d.GetId()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is not served after publishing", d.GetId())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// analyst is a connection as an analyst of city's analytics organisation.
func (dd *dataDelta) analyst(t testing.TB, city string) *grpc.ClientConn {
	t.Helper()
	return connAs(t, dd.Cluster, dd.Index(city), city+"-analytics", yrdv1.Role_ROLE_ANALYST)
}

// result is a whole query response; rows that came as column batches are
// converted to rows (columnBatches counts them).
type result struct {
	header        *yrdv1.ResultHeader
	rows          []*yrdv1.Row
	trailer       *yrdv1.ResultTrailer
	batches       int
	columnBatches int
}

// add takes one stream message into r: a header, a trailer, or a batch in
// either form (a column batch is checked against the header first).
func (r *result) add(msg *yrdv1.QueryResponse) error {
	switch x := msg.GetPart().(type) {
	case *yrdv1.QueryResponse_Header:
		r.header = x.Header
	case *yrdv1.QueryResponse_Batch:
		r.rows = append(r.rows, x.Batch.GetRows()...)
		r.batches++
	case *yrdv1.QueryResponse_Columns:
		if err := resultcodec.Check(x.Columns, r.header.GetColumns()); err != nil {
			return err
		}
		rows, err := resultcodec.ColumnsToRows(x.Columns)
		if err != nil {
			return err
		}
		r.rows = append(r.rows, rows...)
		r.batches++
		r.columnBatches++
	case *yrdv1.QueryResponse_Trailer:
		r.trailer = x.Trailer
	}
	return nil
}

func runQuery(ctx context.Context, conn *grpc.ClientConn, req *yrdv1.QueryRequest) (*result, error) {
	st, err := yrdv1grpc.NewQueryServiceClient(conn).Query(ctx, req)
	if err != nil {
		return nil, err
	}
	return collect(st)
}

// collect reads a query stream (QueryService.Query or PeerService.Execute)
// to its end.
func collect(st grpc.ServerStreamingClient[yrdv1.QueryResponse]) (*result, error) {
	r := &result{}
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return r, nil
		}
		if err != nil {
			return r, err
		}
		if err := r.add(msg); err != nil {
			return r, err
		}
	}
}

// sqlQuery runs sql for purpose, asking for columns (runQuery gives the
// rows either way), and fails the test on error.
func sqlQuery(t testing.TB, conn *grpc.ClientConn, purpose, sql string) *result {
	t.Helper()
	r, err := runQuery(testCtx(t), conn, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sql}, Purpose: purpose, Columnar: true})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return r
}

func cell(v *yrdv1.Value) any {
	switch x := v.GetKind().(type) {
	case *yrdv1.Value_StringValue:
		return x.StringValue
	case *yrdv1.Value_IntValue:
		return x.IntValue
	case *yrdv1.Value_DoubleValue:
		return x.DoubleValue
	case *yrdv1.Value_BoolValue:
		return x.BoolValue
	case *yrdv1.Value_DateValue:
		return x.DateValue
	case *yrdv1.Value_TimestampValue:
		return x.TimestampValue
	}
	return nil
}

func columnNames(cols []*yrdv1.ResultColumn) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.GetName()
	}
	return out
}

var _ = fmt.Sprint
