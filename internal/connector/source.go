package connector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Source maps one catalog dataset to the raw files that hold its rows on
// this node. It is node-local operator configuration: the catalog says
// what a dataset is, never where its data lives.
type Source struct {
	DatasetID string
	// Format is "csv", "parquet" or "json" (JSON Lines or a JSON array).
	Format string
	// Paths are files or DuckDB glob patterns; all must share the format.
	Paths []string
}

// Catalog looks a dataset up by id, e.g. from the replicated catalog.
type Catalog func(id string) (*yrdv1.Dataset, bool)

// DuckDB is an embedded, in-memory DuckDB with one view per configured
// source. It is safe for concurrent use.
type DuckDB struct {
	db      *sql.DB
	catalog Catalog
	sources map[string]Source

	// scheme is SketchScheme, fixed at open.
	scheme string

	mu       sync.RWMutex
	problems map[string][]Mismatch // dataset id → why it is not served
	// unique holds, per dataset, the proof of the last check that its
	// person key is unique per row, for the files as they were then.
	unique map[string]uniqueProof
	// rechecking marks datasets whose uniqueness a background recheck
	// (see recheckUnique) is verifying; bg ends them at Close.
	rechecking map[string]chan struct{}
	// names caches resultNames by the plain plan's text, which alone
	// decides them; at most maxCachedNames entries.
	names map[string][]string
	// stmts keeps the statements Query prepared.
	stmts *statements
	bg    context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// OpenDuckDB opens an in-memory DuckDB and creates a view per source over
// its files, after checking the files against the catalog schema (see
// Check). A dataset whose files do not match is not served; that is not an
// error of OpenDuckDB, which fails only on bad configuration.
func OpenDuckDB(ctx context.Context, sources []Source, catalog Catalog) (*DuckDB, error) {
	if catalog == nil {
		return nil, errors.New("connector: nil catalog")
	}
	m := make(map[string]Source, len(sources))
	for _, s := range sources {
		if err := validateSource(s); err != nil {
			return nil, err
		}
		if _, dup := m[s.DatasetID]; dup {
			return nil, fmt.Errorf("connector: dataset %q configured twice", s.DatasetID)
		}
		s.Format = strings.ToLower(s.Format)
		m[s.DatasetID] = s
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("connector: open duckdb: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connector: open duckdb: %w", err)
	}
	var canary uint64
	if err := db.QueryRowContext(ctx, "SELECT hash('"+sketchCanary+"')").Scan(&canary); err != nil {
		db.Close()
		return nil, fmt.Errorf("connector: open duckdb: %w", err)
	}
	d := &DuckDB{db: db, catalog: catalog, sources: m, problems: map[string][]Mismatch{}, unique: map[string]uniqueProof{},
		rechecking: map[string]chan struct{}{}, names: map[string][]string{}, stmts: newStatements(db), scheme: fmt.Sprintf("duckdb-hash:%016x", canary)}
	d.bg, d.stop = context.WithCancel(context.Background())
	d.checkAll(ctx, true)
	return d, nil
}

func validateSource(s Source) error {
	if s.DatasetID == "" {
		return errors.New("connector: source without a dataset id")
	}
	switch strings.ToLower(s.Format) {
	case "csv", "parquet", "json":
	default:
		return fmt.Errorf("connector: dataset %q: unknown format %q (want csv, parquet or json)", s.DatasetID, s.Format)
	}
	if len(s.Paths) == 0 {
		return fmt.Errorf("connector: dataset %q: no paths", s.DatasetID)
	}
	for _, p := range s.Paths {
		if p == "" || strings.ContainsAny(p, "\x00\n\r") {
			return fmt.Errorf("connector: dataset %q: invalid path %q", s.DatasetID, p)
		}
	}
	return nil
}

// Close releases the database, after ending any background recheck.
func (d *DuckDB) Close() error {
	d.mu.Lock() // no recheck starts after this
	d.stop()
	d.mu.Unlock()
	d.wg.Wait()
	d.stmts.close()
	return d.db.Close()
}

// DB exposes the underlying database, for tests and benchmarks that need
// to prepare files (e.g. COPY … TO parquet).
func (d *DuckDB) DB() *sql.DB { return d.db }

// Serving reports whether the dataset is configured and its files match
// the catalog schema, so queries on it may run.
func (d *DuckDB) Serving(id string) bool {
	if _, ok := d.sources[id]; !ok {
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.problems[id]) == 0
}

// notServed is the error for a query on a dataset that is not served,
// naming every mismatch so the operator can fix the files or the catalog.
func (d *DuckDB) notServed(id string) error {
	if _, ok := d.sources[id]; !ok {
		return fmt.Errorf("connector: dataset %q has no local source on this node", id)
	}
	d.mu.RLock()
	ms := d.problems[id]
	d.mu.RUnlock()
	if len(ms) == 0 {
		return nil
	}
	return fmt.Errorf("connector: dataset %q is not served: %s", id, JoinMismatches(ms))
}

// pathList renders the source's paths as a DuckDB list of string literals.
func pathList(s Source) (string, error) {
	q := make([]string, len(s.Paths))
	for i, p := range s.Paths {
		lit, err := quoteString(p)
		if err != nil {
			return "", fmt.Errorf("connector: dataset %q: %w", s.DatasetID, err)
		}
		q[i] = lit
	}
	return "[" + strings.Join(q, ", ") + "]", nil
}

// duckType is the DuckDB type a catalog type is read as. DECIMAL has no
// precision in the catalog; DuckDB's default DECIMAL(18,3) would round
// values with more decimals, so money-like columns get scale 4.
func duckType(catalogType string) (string, bool) {
	switch t := strings.ToUpper(catalogType); t {
	case "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP":
		return t, true
	case "DECIMAL":
		return "DECIMAL(18,4)", true
	}
	return "", false
}

// viewSQL is the CREATE VIEW statement over a source's files. CSV gets the
// catalog's column types explicitly, so a value that does not parse is an
// error rather than a silently different type.
func viewSQL(s Source, ds *yrdv1.Dataset) (string, error) {
	paths, err := pathList(s)
	if err != nil {
		return "", err
	}
	var from string
	switch s.Format {
	case "csv":
		cols := ds.GetSchema().GetColumns()
		parts := make([]string, len(cols))
		for i, c := range cols {
			t, ok := duckType(c.GetType())
			if !ok {
				return "", fmt.Errorf("connector: dataset %q: column %q has unknown type %q", ds.GetId(), c.GetName(), c.GetType())
			}
			name, err := quoteString(c.GetName())
			if err != nil {
				return "", err
			}
			parts[i] = name + ": '" + t + "'"
		}
		from = "read_csv(" + paths + ", header = true, auto_detect = false, columns = {" + strings.Join(parts, ", ") + "})"
	case "parquet":
		from = "read_parquet(" + paths + ")"
	case "json":
		from = "read_json(" + paths + ")"
	}
	// The projection names the catalog's columns in catalog order, so a
	// view never exposes a column the catalog does not describe.
	cols := ds.GetSchema().GetColumns()
	// Parquet and JSON carry their own types, which Check accepts when
	// they convert losslessly; the cast makes queries see catalog types.
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = quoteIdent(c.GetName())
		if s.Format != "csv" {
			t, _ := duckType(c.GetType())
			sel[i] = "CAST(" + sel[i] + " AS " + t + ") AS " + sel[i]
		}
	}
	return "CREATE OR REPLACE VIEW " + quoteIdent(s.DatasetID) + " AS SELECT " + strings.Join(sel, ", ") + " FROM " + from, nil
}

// Configured reports whether the dataset has a local source here.
func (d *DuckDB) Configured(id string) bool { _, ok := d.sources[id]; return ok }

// Problems lists why a configured dataset is not served (empty if it is).
func (d *DuckDB) Problems(id string) []Mismatch {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]Mismatch(nil), d.problems[id]...)
}
