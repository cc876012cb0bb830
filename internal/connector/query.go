package connector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Rows streams a result: Next, then Values, until Next is false; then Err.
// Close it (or drain it) to release the DuckDB connection.
type Rows struct {
	rows   *sql.Rows
	names  []string
	vals   []any
	ptrs   []any
	sketch sketchIndexes
	err    error
}

// Query runs SQL made by Compile. ctx reaches DuckDB: cancelling it
// interrupts the running query. It refuses SQL that reads a dataset which
// is configured here but not served, naming the mismatches, before DuckDB
// sees it (whose own error would only say that the view does not exist).
func (d *DuckDB) Query(ctx context.Context, query string, args []any) (*Rows, error) {
	for id := range d.sources {
		if !d.Serving(id) && strings.Contains(query, quoteIdent(id)) {
			return nil, d.notServed(id)
		}
	}
	r, err := d.stmts.query(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("connector: query: %w", err)
	}
	names, err := r.Columns()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("connector: query: %w", err)
	}
	rows := &Rows{rows: r, names: names, vals: make([]any, len(names)), ptrs: make([]any, len(names)), sketch: findSketch(names)}
	for i := range rows.vals {
		rows.ptrs[i] = &rows.vals[i]
	}
	return rows, nil
}

// Run compiles q for dataset id under dec and runs it: the one call a
// node needs between a policy decision and a result. It fails, naming the
// mismatches, if the dataset is not served.
func (d *DuckDB) Run(ctx context.Context, id string, q *yrdv1.Query, dec *yrdv1.Decision, pseudonymKey []byte) (*Rows, error) {
	if !d.Serving(id) {
		return nil, d.notServed(id)
	}
	ds, ok := d.catalog(id)
	if !ok {
		return nil, fmt.Errorf("connector: dataset %q is not in the catalog", id)
	}
	query, args, err := Compile(ds, q, dec, pseudonymKey)
	if err != nil {
		return nil, err
	}
	return d.Query(ctx, query, args)
}

// Plan compiles q for dataset id under dec, as Run would, without running
// it.
//
// With o.Sketch, the plan skips the sketch's distinct step if a check
// verified the person key unique in the files as they are now, and names
// the result's columns as the plain plan's (see SketchOptions).
func (d *DuckDB) Plan(id string, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (Statement, error) {
	if !d.Serving(id) {
		return Statement{}, d.notServed(id)
	}
	ds, ok := d.catalog(id)
	if !ok {
		return Statement{}, fmt.Errorf("connector: dataset %q is not in the catalog", id)
	}
	o.personUnique, o.names, o.cellRows = false, nil, true
	if o.Sketch != nil && SketchApplies(ds, dec) {
		if err := o.Sketch.validate(); err != nil {
			return Statement{}, err
		}
		o.personUnique = d.personUnique(id, ds)
		if needsNames(q) {
			names, err := d.resultNames(ds, q, dec, o)
			if err != nil {
				return Statement{}, err
			}
			o.names = names
		}
	}
	return compileStatement(duckDialect{}, ds, q, dec, o)
}

// Exec runs a Statement made by Plan.
func (d *DuckDB) Exec(ctx context.Context, st Statement) (ResultRows, error) {
	r, err := d.Query(ctx, st.SQL, st.Args)
	if err != nil {
		return nil, err
	}
	return st.rows(r)
}

// Engine is what a node needs of a connector: both DuckDB and Postgres
// are one.
type Engine interface {
	// Serving reports whether the dataset is configured here and its local
	// data matches the catalog schema.
	Serving(id string) bool
	// Configured reports whether the dataset is configured here at all.
	Configured(id string) bool
	// Problems lists why a configured dataset is not served.
	Problems(id string) []Mismatch
	// CheckDataset re-checks one dataset's local data against the catalog.
	CheckDataset(ctx context.Context, id string) []Mismatch
	// Plan compiles q for dataset id under dec; the Statement's SQL is
	// what explain shows.
	Plan(id string, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (Statement, error)
	// Exec runs a Statement made by Plan.
	Exec(ctx context.Context, st Statement) (ResultRows, error)
	// SketchScheme names the hash the engine's sketches use: sketches of
	// different schemes are never comparable.
	SketchScheme() string
	Close() error
}

var (
	_ Engine = (*DuckDB)(nil)
	_ Engine = (*Postgres)(nil)
)

// Columns returns the result's column names.
func (r *Rows) Columns() []string { return r.names }

// Next advances to the next row.
func (r *Rows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	for i, v := range r.vals {
		r.vals[i] = normalise(v)
	}
	if err := r.sketch.convert(r.vals); err != nil {
		r.err = err
		return false
	}
	return true
}

// Values returns the current row: nil (NULL), bool, int32, int64,
// float64, string, time.Time, or other driver types for types the catalog
// does not use (sum over integers is a HUGEINT: *big.Int). Decimals come
// as float64. The sketch columns come as []int64 (SketchCellsColumn,
// SketchCountsColumn) and []uint64 (SketchXorsColumn). The slice is
// reused by Next.
func (r *Rows) Values() []any { return r.vals }

// Err returns the error that ended iteration, if any; a cancelled
// context shows up here or in Query.
func (r *Rows) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("connector: query: %w", err)
	}
	return nil
}

// Close releases the result.
func (r *Rows) Close() error { return r.rows.Close() }

// normalise turns driver-specific values into plain Go ones.
func normalise(v any) any {
	if d, ok := v.(duckdb.Decimal); ok {
		return d.Float64()
	}
	return v
}
