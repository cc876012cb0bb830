package node_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/pgtest"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestQueriesOnDataKeptInPostgreSQL: Shanghai keeps its elderly population
// in its own PostgreSQL database (a real server started by the test); a
// query forwarded from Hangzhou and a family query mixing PostgreSQL and
// DuckDB owners give the permitted results, equal to the same computation
// over the raw rows.
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestQueriesOnDataKeptInPostgreSQL(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("PostgreSQL test server: %v", err)
	}
	t.Cleanup(pg.Stop)
	const id = "shanghai.civil-affairs.elderly-population"
	var csvPath string
	dd := startDelta(t, deltaOptions{rows: 2000, noiseOff: true, configure: func(i int, cfg *node.Config) {
		if i != 0 {
			return
		}
		// Shanghai's elderly rows live in PostgreSQL, not in a file.
		cfg.Data.Files = slices.DeleteFunc(cfg.Data.Files, func(s connector.Source) bool {
			if s.DatasetID == id {
				csvPath = s.Paths[0]
				return true
			}
			return false
		})
		loadElderlyTable(t, pg.DSN, csvPath)
		cfg.Data.Postgres = &node.PostgresData{DSN: pg.DSN, Tables: []connector.PGTable{{DatasetID: id, Schema: "city_data", Table: "elderly"}}}
	}})

	// A row query forwarded to the PostgreSQL-backed owner.
	district := synth.Districts("shanghai")[1]
	r := sqlQuery(t, dd.analyst(t, "hangzhou"), elderlyPurpose, "SELECT person_id, district FROM "+id+" WHERE district = '"+district+"' LIMIT 50")
	if len(r.rows) == 0 || !strings.Contains(r.header.GetPlans()[0].GetPlan(), `"city_data"."elderly"`) {
		t.Fatalf("%d rows; plan %q does not read the city's table", len(r.rows), r.header.GetPlans()[0].GetPlan())
	}
	for _, row := range r.rows {
		if d := cell(row.GetValues()[1]); d != district {
			t.Fatalf("row of district %v passed the filter district = %q", d, district)
		}
	}
	if r.header.GetColumns()[0].GetTreatment() == yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
		t.Error("person_id left PostgreSQL raw")
	}
	rc := r.trailer.GetCities()[0].GetReceipt()
	if err := receipt.Verify(rc); err != nil {
		t.Fatal(err)
	}
	if err := receipt.CheckRows(rc, r.rows); err != nil {
		t.Fatal(err)
	}

	// A family aggregate: Shanghai from PostgreSQL, the others from files.
	r = sqlQuery(t, dd.analyst(t, "nanjing"), elderlyPurpose,
		"SELECT district, count(*) AS n FROM family:yrd.elderly-population.v1 GROUP BY district ORDER BY district")
	if r.trailer.GetPartial() || len(r.trailer.GetCities()) != 3 {
		t.Fatalf("trailer %v", r.trailer)
	}
	k := r.header.GetPlans()[0].GetDecision().GetMinGroupSize()
	got := map[string]int64{}
	for _, row := range r.rows {
		d, _ := cell(row.GetValues()[0]).(string)
		got[d] = cell(row.GetValues()[1]).(int64)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []string
	for did, path := range dd.files {
		if strings.HasSuffix(did, ".elderly-population") {
			parts = append(parts, fmt.Sprintf("SELECT district, count(*) AS n FROM read_csv('%s', header = true) GROUP BY district HAVING count(DISTINCT person_id) >= %d", path, k))
		}
	}
	rows, err := db.Query("SELECT coalesce(district, ''), sum(n) FROM (" + strings.Join(parts, " UNION ALL ") + ") GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string]int64{}
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			t.Fatal(err)
		}
		want[d] = n
	}
	if len(got) != len(want) {
		t.Fatalf("%d districts federated, %d directly", len(got), len(want))
	}
	for d, n := range want {
		if got[d] != n {
			t.Errorf("district %q: federated %d, direct %d", d, got[d], n)
		}
	}
}

// loadElderlyTable creates city_data.elderly with PostgreSQL's own types
// and loads the CSV into it.
func loadElderlyTable(t *testing.T, dsn, csvPath string) {
	t.Helper()
	loadTable(t, dsn, elderlyDatasetOf(t, "shanghai"), "elderly", csvPath)
}

// loadTable creates city_data.TABLE with d's columns and copies the CSV
// file at csvPath into it.
func loadTable(t *testing.T, dsn string, d *yrdv1.Dataset, table, csvPath string) {
	t.Helper()
	pgTypes := map[string]string{"BOOLEAN": "boolean", "INTEGER": "integer", "BIGINT": "bigint", "DOUBLE": "double precision",
		"DECIMAL": "numeric(18,4)", "VARCHAR": "text", "DATE": "date", "TIMESTAMP": "timestamp"}
	var cols []string
	for _, c := range d.GetSchema().GetColumns() {
		cols = append(cols, pgx.Identifier{c.GetName()}.Sanitize()+" "+pgTypes[c.GetType()])
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range []string{"CREATE SCHEMA IF NOT EXISTS city_data", "CREATE TABLE city_data." + table + " (" + strings.Join(cols, ", ") + ")"} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	data, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PgConn().CopyFrom(ctx, bytes.NewReader(data), "COPY city_data."+table+" FROM STDIN WITH (FORMAT csv, HEADER true)"); err != nil {
		t.Fatalf("COPY: %v", err)
	}
}
