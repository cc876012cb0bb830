package connector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/pgtest"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// A real PostgreSQL server for the package's tests, started on first use
// and stopped by TestMain after every test has run.

var (
	pgOnce   sync.Once
	pgServer *pgtest.Server
	pgErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		pgServer.Stop()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// pgDSN returns the DSN of the test server, starting it if need be. A
// missing PostgreSQL installation fails the test: the PostgreSQL
// connector is not tested without a real server.
func pgDSN(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		start := time.Now()
		pgServer, pgErr = pgtest.Start()
		if pgErr == nil {
			fmt.Fprintf(os.Stderr, "postgres test server up in %v\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if pgErr != nil {
		t.Fatalf("PostgreSQL test server: %v", pgErr)
	}
	return pgServer.DSN
}

// pgExec runs statements on the test server as its superuser.
func pgExec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// pgCopyCSV loads CSV with a header into table through COPY FROM STDIN.
func pgCopyCSV(t testing.TB, table string, csv []byte) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tag, err := c.PgConn().CopyFrom(ctx, bytes.NewReader(csv), "COPY "+table+" FROM STDIN WITH (FORMAT csv, HEADER true)")
	if err != nil {
		t.Fatalf("COPY %s: %v", table, err)
	}
	return tag.RowsAffected()
}

// The elderly dataset's testRows rows, as the city keeps them: a table
// in its own schema, loaded once per test run.
const (
	pgSchema = "civil_affairs"
	pgTable  = "elderly_population"
)

var (
	pgElderlyOnce sync.Once
	pgElderlyErr  error
)

// loadPGElderly creates the city's table and COPYs the generator's CSV
// into it.
func loadPGElderly(dsn string, d *yrdv1.Dataset) error {
	var cols []string
	for _, c := range d.GetSchema().GetColumns() {
		typ, ok := pgCastType(c.GetType())
		if !ok {
			return fmt.Errorf("column %s: type %s", c.GetName(), c.GetType())
		}
		if typ == "text" {
			typ = "varchar(64)" // as a city might declare it
		}
		cols = append(cols, pgx.Identifier{c.GetName()}.Sanitize()+" "+typ)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	table := pgx.Identifier{pgSchema, pgTable}.Sanitize()
	for _, stmt := range []string{"CREATE SCHEMA IF NOT EXISTS " + pgSchema, "CREATE TABLE " + table + " (" + strings.Join(cols, ", ") + ")"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	var csv bytes.Buffer
	if err := synth.WriteCSV(&csv, d, testRows, testSeed); err != nil {
		return err
	}
	tag, err := conn.PgConn().CopyFrom(ctx, &csv, "COPY "+table+" FROM STDIN WITH (FORMAT csv, HEADER true)")
	if err != nil {
		return fmt.Errorf("COPY: %w", err)
	}
	if tag.RowsAffected() != testRows {
		return fmt.Errorf("COPY loaded %d rows, want %d", tag.RowsAffected(), testRows)
	}
	_, err = conn.Exec(ctx, "ANALYZE "+table)
	return err
}

// openPGElderly opens a Postgres connector serving the elderly dataset
// from a table holding the same rows openElderly's DuckDB serves.
func openPGElderly(t testing.TB) (*Postgres, PGTable) {
	t.Helper()
	d := elderly(t)
	dsn := pgDSN(t)
	pgElderlyOnce.Do(func() { pgElderlyErr = loadPGElderly(dsn, d) })
	if pgElderlyErr != nil {
		t.Fatalf("loading the elderly table: %v", pgElderlyErr)
	}
	tbl := PGTable{DatasetID: d.GetId(), Schema: pgSchema, Table: pgTable}
	p, err := OpenPostgres(context.Background(), dsn, []PGTable{tbl}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if !p.Serving(d.GetId()) {
		t.Fatalf("elderly table not served: %v", p.notServed(d.GetId()))
	}
	return p, tbl
}

// pgCollect runs PostgreSQL SQL and returns the column names and rows.
func pgCollect(t testing.TB, p *Postgres, sql string, args []any) ([]string, [][]any) {
	t.Helper()
	r, err := p.Query(context.Background(), sql, args)
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	return drain(t, r)
}

func drain(t testing.TB, r ResultRows) ([]string, [][]any) {
	t.Helper()
	defer r.Close()
	var out [][]any
	for r.Next() {
		out = append(out, append([]any(nil), r.Values()...))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r.Columns(), out
}
