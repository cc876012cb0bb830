package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the central comparison's engine

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// federatedSQL is the federated group-by; centralSQL the same question to
// one DuckDB over every city's file, with the same k floor (10 distinct
// persons per group), as a data lake holding everyone's raw rows would
// answer it.
const (
	federatedSQL = "SELECT district, count(*), avg(age) FROM family:" + sample.ElderlyPopulationSchemaID + " GROUP BY district"
	centralSQL   = "SELECT district, count(*), avg(age) FROM read_csv(?) GROUP BY district HAVING count(DISTINCT person_id) >= 10"
)

// RunFederated asks the family group-by reps times from the first city, as
// an analyst of an organisation of its own (each answer spends privacy
// budget), and the same question reps times of one DuckDB over all the
// cities' files, in the same window.
func RunFederated(ctx context.Context, t *chaos.Testnet, reps int) (*Federated, error) {
	files, rows, err := elderlyFiles(t)
	if err != nil {
		return nil, err
	}
	org := fmt.Sprintf("%s-bench-%d", t.State.Cities[0].ID, time.Now().UnixNano())
	analyst, err := t.Procs.ConnAs(0, org, yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		return nil, err
	}
	cl := yrdv1grpc.NewQueryServiceClient(analyst)
	q := &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: federatedSQL}, Purpose: "elderly-care-planning"}
	if err := everyOwnerAnswers(ctx, cl, q); err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	f := &Federated{Command: "yrdnode testnet bench --parts federated", Query: federatedSQL, Cities: len(files), Rows: rows}
	for range reps {
		d, err := timeFederated(ctx, cl, q, len(files))
		if err != nil {
			return nil, err
		}
		f.Federated = append(f.Federated, d)
		if d, err = timeCentral(ctx, db, files); err != nil {
			return nil, err
		}
		f.Central = append(f.Central, d)
	}
	return f, nil
}

// elderlyFiles are the cities' elderly-population files, as testnet up
// wrote them, and their rows in all.
func elderlyFiles(t *chaos.Testnet) ([]string, int64, error) {
	var files []string
	var rows int64
	for _, c := range t.State.Cities {
		for _, d := range synth.ForCity(c.ID) {
			if d.GetStandardSchemaId() != sample.ElderlyPopulationSchemaID {
				continue
			}
			path := filepath.Join(c.DataDir, "data", d.GetId()+".csv")
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, 0, fmt.Errorf("bench: %s has no sample data (testnet up --rows): %w", c.ID, err)
			}
			files, rows = append(files, path), rows+int64(strings.Count(string(data), "\n")-1)
		}
	}
	return files, rows, nil
}

// timeFederated runs q and wants every owner's part.
func timeFederated(ctx context.Context, cl yrdv1grpc.QueryServiceClient, q *yrdv1.QueryRequest, owners int) (time.Duration, error) {
	start := time.Now()
	parts, err := familyParts(ctx, cl, q)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	ok := 0
	for _, p := range parts {
		if p.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			ok++
		}
	}
	if ok != owners {
		return 0, fmt.Errorf("bench: the federated query had %d of %d parts: %v", ok, owners, parts)
	}
	return d, nil
}

// timeCentral runs the central query to its last row.
func timeCentral(ctx context.Context, db *sql.DB, files []string) (time.Duration, error) {
	start := time.Now()
	rows, err := db.QueryContext(ctx, centralSQL, files)
	if err != nil {
		return 0, fmt.Errorf("bench: central query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("bench: central query: %w", err)
	}
	return time.Since(start), nil
}

// Stream asks the first city for every row of the family (a GENERAL row
// query, as column batches) and returns the rows per second it received.
func Stream(ctx context.Context, t *chaos.Testnet) (Single, error) {
	analyst, err := t.Procs.ConnAs(0, t.State.Cities[0].ID+"-bench-rows", yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		return Single{}, err
	}
	sqlText := "SELECT district, age FROM family:" + sample.ElderlyPopulationSchemaID
	q := &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sqlText}, Purpose: "elderly-care-planning", Columnar: true}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	stream, err := yrdv1grpc.NewQueryServiceClient(analyst).Query(ctx, q)
	if err != nil {
		return Single{}, err
	}
	var n int64
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Single{}, fmt.Errorf("bench: row stream: %w", err)
		}
		n += int64(resp.GetColumns().GetRows()) + int64(len(resp.GetBatch().GetRows()))
	}
	d := time.Since(start)
	return Single{Name: fmt.Sprintf("rows streamed end to end through %s (%s; %d rows from %d cities, TLS, column batches)",
		t.State.Cities[0].ID, sqlText, n, len(t.State.Cities)), Command: "yrdnode testnet bench --parts stream",
		Value: float64(n) / d.Seconds(), Unit: "rows/s"}, nil
}
