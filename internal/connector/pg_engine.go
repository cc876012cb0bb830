package connector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// PGTable maps one catalog dataset to a table (or view) that a city keeps
// in its own PostgreSQL database. Like Source, it is node-local operator
// configuration. Schema defaults to "public".
type PGTable struct {
	DatasetID string
	Schema    string
	Table     string
}

// pgMaxConns bounds the connections a Postgres connector opens to the
// city's database.
const pgMaxConns = 8

// Postgres serves catalog datasets from tables of a PostgreSQL database.
// Queries are the plans that Compile makes, written in PostgreSQL's
// dialect (see CompilePostgres), so both connectors enforce a decision
// identically. It
// is safe for concurrent use.
type Postgres struct {
	cfg     *pgx.ConnConfig
	catalog Catalog
	tables  map[string]PGTable

	mu       sync.RWMutex
	problems map[string][]Mismatch // dataset id → why it is not served
	// unique holds, per dataset, the person key the last check found a
	// unique index on.
	unique map[string]string

	// A small pool: pgx.Conn is not safe for concurrent use, and
	// pgxpool is not available to this module.
	sem    chan struct{} // one token per open or opening connection
	idle   chan *pgx.Conn
	closed chan struct{}
	once   sync.Once
}

// OpenPostgres connects to the database at dsn (a PostgreSQL URL or
// keyword/value string) and checks every configured table against the
// catalog schema (see Check). A dataset whose table does not match is not
// served; that is not an error of OpenPostgres, which fails only on bad
// configuration or an unreachable database.
//
// Every session runs with TimeZone UTC (catalog timestamps are UTC
// instants) and search_path pg_catalog, and a cancelled context sends
// PostgreSQL a cancel request, so a cancelled query stops on the server,
// not only in the client.
func OpenPostgres(ctx context.Context, dsn string, tables []PGTable, catalog Catalog) (*Postgres, error) {
	if catalog == nil {
		return nil, errors.New("connector: nil catalog")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("connector: postgres dsn: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	// Tables are always schema-qualified, so nothing needs a search
	// path; pinning it to pg_catalog keeps a function or operator that a
	// database user created elsewhere from standing in for a built-in
	// one (sha256, count, …) in the compiled plan.
	cfg.RuntimeParams["search_path"] = "pg_catalog"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "yrdnode"
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		// Cancel the query on the server at once; give up on the socket
		// if the server has not answered pgCancelGrace later.
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: pgCancelGrace}
	}
	m := make(map[string]PGTable, len(tables))
	for _, t := range tables {
		if t.DatasetID == "" {
			return nil, errors.New("connector: postgres table without a dataset id")
		}
		if t.Schema == "" {
			t.Schema = "public"
		}
		if t.Table == "" {
			return nil, fmt.Errorf("connector: dataset %q: no table", t.DatasetID)
		}
		for _, s := range []string{t.Schema, t.Table} {
			if strings.ContainsRune(s, 0) {
				return nil, fmt.Errorf("connector: dataset %q: invalid identifier %q", t.DatasetID, s)
			}
		}
		if _, dup := m[t.DatasetID]; dup {
			return nil, fmt.Errorf("connector: dataset %q configured twice", t.DatasetID)
		}
		m[t.DatasetID] = t
	}
	p := &Postgres{cfg: cfg, catalog: catalog, tables: m, problems: map[string][]Mismatch{}, unique: map[string]string{},
		sem: make(chan struct{}, pgMaxConns), idle: make(chan *pgx.Conn, pgMaxConns), closed: make(chan struct{})}
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connector: open postgres: %w", err)
	}
	p.release(c)
	p.Check(ctx)
	return p, nil
}

// pgCancelGrace is how long a cancelled query may take to end after the
// cancel request before the connection is dropped. A cancel normally lands
// in milliseconds, but on a saturated machine the server forks a backend
// for the cancel request and may take a second or more, and a backend that
// is JIT-compiling a big plan only sees the cancel once LLVM is done (seconds
// under load); dropping the
// socket first would leave the query running on the server (it does not
// notice a closed client until it writes), so the grace is generous.
const pgCancelGrace = 5 * time.Second

var errPGClosed = errors.New("connector: postgres connector is closed")

func (p *Postgres) acquire(ctx context.Context) (*pgx.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closed:
		return nil, errPGClosed
	}
	for reuse := true; reuse; {
		select {
		case c := <-p.idle:
			if !c.IsClosed() {
				return c, nil
			}
		default:
			reuse = false
		}
	}
	c, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// release returns a connection to the pool, or closes it if it is broken
// (e.g. after a cancellation) or the connector is closed.
func (p *Postgres) release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	select {
	case <-p.closed:
		c.Close(context.Background())
		return
	default:
	}
	if c.IsClosed() || c.PgConn().IsBusy() || c.PgConn().TxStatus() != 'I' {
		c.Close(context.Background())
		return
	}
	select {
	case p.idle <- c:
	default:
		c.Close(context.Background())
	}
}

// Close closes idle connections; connections of open results close when
// the results do.
func (p *Postgres) Close() error {
	p.once.Do(func() { close(p.closed) })
	for {
		select {
		case c := <-p.idle:
			c.Close(context.Background())
		default:
			return nil
		}
	}
}

// Serving reports whether the dataset is configured and its table
// matches the catalog schema, so queries on it may run.
func (p *Postgres) Serving(id string) bool {
	if _, ok := p.tables[id]; !ok {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	ms, checked := p.problems[id]
	return checked && len(ms) == 0
}

func (p *Postgres) notServed(id string) error {
	if _, ok := p.tables[id]; !ok {
		return fmt.Errorf("connector: dataset %q has no local source on this node", id)
	}
	p.mu.RLock()
	ms, checked := p.problems[id]
	p.mu.RUnlock()
	if !checked {
		return fmt.Errorf("connector: dataset %q is not served: not checked yet", id)
	}
	if len(ms) == 0 {
		return nil
	}
	return fmt.Errorf("connector: dataset %q is not served: %s", id, JoinMismatches(ms))
}

// Run compiles q for dataset id under dec and runs it. It fails, naming
// the mismatches, if the dataset is not served.
func (p *Postgres) Run(ctx context.Context, id string, q *yrdv1.Query, dec *yrdv1.Decision, pseudonymKey []byte) (*PGRows, error) {
	if !p.Serving(id) {
		return nil, p.notServed(id)
	}
	ds, ok := p.catalog(id)
	if !ok {
		return nil, fmt.Errorf("connector: dataset %q is not in the catalog", id)
	}
	query, args, err := CompilePostgres(ds, p.tables[id], q, dec, pseudonymKey)
	if err != nil {
		return nil, err
	}
	return p.Query(ctx, query, args)
}

// Plan compiles q for dataset id under dec, as Run would, without running
// it.
//
// With o.Sketch, the plan skips the sketch's distinct step if the last
// check found a unique index on the person key (see SketchOptions).
func (p *Postgres) Plan(id string, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (Statement, error) {
	if !p.Serving(id) {
		return Statement{}, p.notServed(id)
	}
	ds, ok := p.catalog(id)
	if !ok {
		return Statement{}, fmt.Errorf("connector: dataset %q is not in the catalog", id)
	}
	// PostgreSQL names an unaliased aggregate by its function, which
	// the sketch plan does too: no names needed.
	o.personUnique, o.names = false, nil
	if o.Sketch != nil && SketchApplies(ds, dec) {
		p.mu.RLock()
		key := p.unique[id]
		p.mu.RUnlock()
		o.personUnique = key != "" && key == personKeyOf(ds)
	}
	o.cellRows = true
	return compileStatement(pgDialect{table: p.tables[id]}, ds, q, dec, o)
}

// Exec runs a Statement made by Plan.
func (p *Postgres) Exec(ctx context.Context, st Statement) (ResultRows, error) {
	r, err := p.Query(ctx, st.SQL, st.Args)
	if err != nil {
		return nil, err
	}
	return st.rows(r)
}

// Query runs PostgreSQL SQL, e.g. made by CompilePostgres. ctx reaches
// PostgreSQL: cancelling it cancels the running query on the server.
//
// Like DuckDB.Query, it refuses SQL that names the table of a dataset
// which is configured here but not served, naming the mismatches. (The
// city's table cannot be dropped as a DuckDB view is, so this guard is
// textual; Run is the way queries are meant to arrive.)
func (p *Postgres) Query(ctx context.Context, query string, args []any) (*PGRows, error) {
	for id, t := range p.tables {
		if !p.Serving(id) && strings.Contains(query, pgTableName(t)) {
			return nil, p.notServed(id)
		}
	}
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connector: query: %w", err)
	}
	r, err := c.Query(ctx, query, args...)
	if err != nil {
		p.release(c)
		return nil, fmt.Errorf("connector: query: %w", err)
	}
	fds := r.FieldDescriptions()
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	return &PGRows{p: p, conn: c, rows: r, names: names, sketch: findSketch(names)}, nil
}

// Configured reports whether the dataset has a table here.
func (p *Postgres) Configured(id string) bool { _, ok := p.tables[id]; return ok }

// Problems lists why a configured dataset is not served (empty if it is).
func (p *Postgres) Problems(id string) []Mismatch {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]Mismatch(nil), p.problems[id]...)
}
