package connector

import (
	"context"
	"fmt"
	"os"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// A sketch plan skips its distinct step only when the engine has verified
// that the person key is unique per row (each individual has one row), as
// then the rows of a group's cell are its distinct persons. The k floor
// depends on it, so it is verified, never assumed:
//
//   - DuckDB: each check (at publish, on catalog change, every minute)
//     computes count(key) = count(DISTINCT key) over the view and records
//     it with a fingerprint of the files (the expanded globs, each file's
//     size, mtime and, on Linux, device, inode and ctime). Plan re-stats
//     the files and uses the fast path only if the fingerprint still
//     matches; otherwise the distinct path, until a check verifies the
//     new files (Plan starts one in the background, for the uniqueness
//     only, one at a time per dataset). Remote paths (s3://, http://) have no fingerprint: always
//     the distinct path. The check skips the count when the files and the
//     key are as last verified.
//   - PostgreSQL: each check looks for a valid, non-partial unique index
//     (or primary key) on exactly the person column, whose catalog type
//     casts injectively (text, integers, dates, timestamps).
//
// Left open: data changed between Plan's look and the scan (a file
// rewritten during a query; a PostgreSQL unique index dropped and
// duplicates inserted since the last check, at most a check interval).

// sketchCanary is the text whose DuckDB hash names the DuckDB sketch
// scheme, so that a DuckDB whose hash() changed is never taken to compute
// comparable sketches.
const sketchCanary = "yrd.sketch.canary"

// uniqueProof is what a check verified: key (of catalog type typ) was
// unique per row of the files as files fingerprints them.
type uniqueProof struct {
	key, typ, files string
}

// SketchScheme names how this DuckDB hashes person keys for a sketch:
// "duckdb-hash:" and the hex of its hash of a fixed text, computed at
// open. Sketches of different schemes are never comparable.
func (d *DuckDB) SketchScheme() string { return d.scheme }

// SketchScheme is PGSketchScheme.
func (p *Postgres) SketchScheme() string { return PGSketchScheme }

func personColumn(ds *yrdv1.Dataset) *yrdv1.Column {
	pk := personKeyOf(ds)
	for _, c := range ds.GetSchema().GetColumns() {
		if c.GetName() == pk {
			return c
		}
	}
	return nil
}

// fingerprint identifies the files src reads now, or is false if they
// cannot be identified.
func (d *DuckDB) fingerprint(ctx context.Context, src Source) (string, bool) {
	var b strings.Builder
	for _, p := range src.Paths {
		if strings.Contains(p, "://") {
			return "", false
		}
		lit, err := quoteString(p)
		if err != nil {
			return "", false
		}
		files, ok := d.expand(ctx, p, lit)
		if !ok {
			return "", false
		}
		fmt.Fprintf(&b, "%q:\n", p)
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				return "", false
			}
			fmt.Fprintf(&b, "%q %d %d %s\n", f, fi.Size(), fi.ModTime().UnixNano(), fileIdentity(fi))
		}
	}
	return b.String(), true
}

// expand lists the files a source path names. A path without glob
// characters names itself, which spares a DuckDB query (most of a
// tiny query's planning time); a pattern is expanded by DuckDB's own
// glob, as read_csv and read_parquet expand it.
func (d *DuckDB) expand(ctx context.Context, p, lit string) ([]string, bool) {
	if !strings.ContainsAny(p, "*?[{") {
		return []string{p}, true
	}
	rows, err := d.db.QueryContext(ctx, "SELECT file FROM glob("+lit+") ORDER BY file")
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	var files []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, false
		}
		files = append(files, f)
	}
	if rows.Err() != nil || len(files) == 0 {
		return nil, false
	}
	return files, true
}

// verifyUnique records whether the served dataset's person key is unique
// per row of its files.
func (d *DuckDB) verifyUnique(ctx context.Context, src Source) {
	id := src.DatasetID
	forget := func() {
		d.mu.Lock()
		delete(d.unique, id)
		d.mu.Unlock()
	}
	ds, ok := d.catalog(id)
	col := personColumn(ds)
	if !ok || col == nil {
		forget()
		return
	}
	before, ok := d.fingerprint(ctx, src)
	if !ok {
		forget()
		return
	}
	proof := uniqueProof{key: col.GetName(), typ: col.GetType(), files: before}
	d.mu.RLock()
	old, had := d.unique[id]
	d.mu.RUnlock()
	if had && old == proof {
		return // the same files, already verified
	}
	pk := quoteIdent(col.GetName())
	var unique bool
	err := d.db.QueryRowContext(ctx, "SELECT count("+pk+") = count(DISTINCT "+pk+") FROM "+quoteIdent(id)).Scan(&unique)
	after, ok := d.fingerprint(ctx, src)
	if err != nil || !unique || !ok || after != before {
		forget()
		return
	}
	d.mu.Lock()
	d.unique[id] = proof
	d.mu.Unlock()
}

// personUnique reports whether the files of dataset id are, now, the
// files a check verified ds's person key unique in.
func (d *DuckDB) personUnique(id string, ds *yrdv1.Dataset) bool {
	col := personColumn(ds)
	if col == nil {
		return false
	}
	d.mu.RLock()
	proof, ok := d.unique[id]
	d.mu.RUnlock()
	if !ok || proof.key != col.GetName() || proof.typ != col.GetType() {
		return false
	}
	fp, ok := d.fingerprint(context.Background(), d.sources[id])
	if ok && fp == proof.files {
		return true
	}
	if ok {
		d.recheckUnique(id)
	}
	return false
}

// recheckUnique verifies in the background whether dataset id's person key
// is unique in its files as they are now, unless that is under way.
func (d *DuckDB) recheckUnique(id string) {
	d.mu.Lock()
	if d.rechecking[id] != nil || d.bg.Err() != nil {
		d.mu.Unlock()
		return
	}
	done := make(chan struct{})
	d.rechecking[id] = done
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			delete(d.rechecking, id)
			d.mu.Unlock()
			close(done)
		}()
		if d.Serving(id) {
			d.verifyUnique(d.bg, d.sources[id])
		}
	}()
}

// recheckDone is closed when dataset id's background recheck, if one is
// under way, has ended (already closed when none is).
func (d *DuckDB) recheckDone(id string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch := d.rechecking[id]; ch != nil {
		return ch
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// needsNames reports whether q has an unaliased aggregate, which a sketch
// plan must name as the engine names it in the plain plan.
func needsNames(q *yrdv1.Query) bool {
	for _, it := range q.GetSelect() {
		if it.GetAggregate() != nil && it.GetAlias() == "" {
			return true
		}
	}
	return false
}

// resultNames are the names DuckDB gives the select items of the plain
// plan of q, from preparing it (about a millisecond; no data is read).
// DuckDB names an unaliased expression by its text, which only DuckDB
// knows for sure.
func (d *DuckDB) resultNames(ds *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, o Options) ([]string, error) {
	o.Sketch, o.Individuals = nil, false
	query, _, err := CompileWith(ds, q, dec, o)
	if err != nil {
		return nil, err
	}
	d.mu.RLock()
	names, ok := d.names[query]
	d.mu.RUnlock()
	if !ok {
		if names, err = d.prepareNames(query); err != nil {
			return nil, err
		}
		d.mu.Lock()
		if len(d.names) >= maxCachedNames {
			clear(d.names)
		}
		d.names[query] = names
		d.mu.Unlock()
	}
	if len(names) != len(q.GetSelect()) {
		return nil, fmt.Errorf("connector: plan: the plain plan has %d columns for %d select items", len(names), len(q.GetSelect()))
	}
	return names, nil
}

// maxCachedNames bounds DuckDB.names.
const maxCachedNames = 4096

// prepareNames prepares query and returns its result's column names.
func (d *DuckDB) prepareNames(query string) ([]string, error) {
	ctx := context.Background()
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connector: plan: %w", err)
	}
	defer conn.Close()
	var names []string
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		s, err := c.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer s.Close()
		st, ok := s.(*duckdb.Stmt)
		if !ok {
			return fmt.Errorf("unexpected driver statement %T", s)
		}
		n, err := st.ColumnCount()
		if err != nil {
			return err
		}
		for i := range n {
			name, err := st.ColumnName(i)
			if err != nil {
				return err
			}
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("connector: plan: naming the result: %w", err)
	}
	return names, nil
}

// pgUniqueTypes are the catalog types whose cast from the table's column
// (see CompilePostgres) keeps distinct values distinct, so a unique index
// on the column proves the cast key unique.
var pgUniqueTypes = map[string]bool{"VARCHAR": true, "INTEGER": true, "BIGINT": true, "DATE": true, "TIMESTAMP": true}

// pgPersonUnique reports whether t has a valid, non-partial unique index
// (or primary key) on exactly the column of ds's person key.
func (p *Postgres) pgPersonUnique(ctx context.Context, t PGTable, ds *yrdv1.Dataset) (string, bool) {
	col := personColumn(ds)
	if col == nil || !pgUniqueTypes[strings.ToUpper(col.GetType())] {
		return "", false
	}
	c, err := p.acquire(ctx)
	if err != nil {
		return "", false
	}
	defer p.release(c)
	var unique bool
	err = c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class r ON r.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum = i.indkey[0]
WHERE n.nspname = $1 AND r.relname = $2 AND a.attname = $3
  AND i.indisunique AND i.indisvalid AND i.indislive AND i.indnkeyatts = 1
  AND i.indpred IS NULL AND i.indexprs IS NULL)`, t.Schema, t.Table, col.GetName()).Scan(&unique)
	if err != nil || !unique {
		return "", false
	}
	return col.GetName(), true
}
