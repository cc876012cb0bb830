package connector

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Check compares every configured dataset's table with its catalog schema
// and reports every mismatch; a dataset is served exactly when its last
// check passed.
func (p *Postgres) Check(ctx context.Context) []Mismatch {
	ids := make([]string, 0, len(p.tables))
	for id := range p.tables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var all []Mismatch
	for _, id := range ids {
		all = append(all, p.CheckDataset(ctx, id)...)
	}
	return all
}

// CheckDataset is Check for one dataset.
func (p *Postgres) CheckDataset(ctx context.Context, id string) []Mismatch {
	t, ok := p.tables[id]
	if !ok {
		return []Mismatch{{DatasetID: id, Problem: "no local source configured"}}
	}
	ms := p.check(ctx, t)
	var key string
	if len(ms) == 0 {
		if ds, ok := p.catalog(id); ok {
			key, _ = p.pgPersonUnique(ctx, t, ds)
		}
	}
	p.mu.Lock()
	p.problems[id] = ms
	if key != "" {
		p.unique[id] = key
	} else {
		delete(p.unique, id)
	}
	p.mu.Unlock()
	return ms
}

func (p *Postgres) check(ctx context.Context, t PGTable) []Mismatch {
	id := t.DatasetID
	ds, ms := servable(p.catalog, id, pgCastType)
	if len(ms) > 0 {
		return ms
	}
	local, unreadable, err := p.describeTable(ctx, t)
	if err != nil {
		return []Mismatch{{DatasetID: id, Problem: "cannot read table " + pgTableName(t) + ": " + err.Error()}}
	}
	if len(local) == 0 {
		return []Mismatch{{DatasetID: id, Problem: "table " + pgTableName(t) + " does not exist"}}
	}
	// PostgreSQL columns are typed and read by name: no inference, no
	// positional reading.
	ms = compareSchemas(id, ds.GetSchema().GetColumns(), local, false, false)
	want := map[string]bool{}
	for _, c := range ds.GetSchema().GetColumns() {
		want[c.GetName()] = true
	}
	for _, name := range unreadable {
		if want[name] {
			ms = append(ms, Mismatch{DatasetID: id, Column: name, Problem: "not readable: the database user " + p.cfg.User + " has no SELECT privilege on it"})
		}
	}
	return ms
}

// describeTable lists the table's columns, in order, with their types
// named as DuckDB names them, so compareSchemas and compatible decide
// for both connectors alike.
//
// unreadable lists the columns the connector's database user may not
// SELECT, which a query would fail on.
func (p *Postgres) describeTable(ctx context.Context, t PGTable) (local []localColumn, unreadable []string, err error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer p.release(c)
	rows, err := c.Query(ctx, `SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod),
  has_column_privilege(r.oid, a.attnum, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE')
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class r ON r.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE n.nspname = $1 AND r.relname = $2 AND r.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, t.Schema, t.Table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, typname, formatted string
		var readable bool
		if err := rows.Scan(&name, &typname, &formatted, &readable); err != nil {
			return nil, nil, err
		}
		local = append(local, localColumn{name: name, typ: pgLocalType(typname, formatted)})
		if !readable {
			unreadable = append(unreadable, name)
		}
	}
	return local, unreadable, rows.Err()
}

// pgLocalType names a PostgreSQL column type as DuckDB would (the names
// family and compatible understand); a type with no counterpart keeps its
// PostgreSQL name, which matches no catalog type.
func pgLocalType(typname, formatted string) string {
	switch typname {
	case "bool":
		return "BOOLEAN"
	case "int2":
		return "SMALLINT"
	case "int4":
		return "INTEGER"
	case "int8":
		return "BIGINT"
	case "float4":
		return "FLOAT"
	case "float8":
		return "DOUBLE"
	case "numeric":
		return "DECIMAL"
	case "text", "varchar", "bpchar", "name":
		return "VARCHAR"
	case "date":
		return "DATE"
	case "timestamp":
		return "TIMESTAMP"
	case "timestamptz":
		return "TIMESTAMP WITH TIME ZONE"
	}
	return "postgres " + formatted
}

func pgTableName(t PGTable) string { return pgx.Identifier{t.Schema, t.Table}.Sanitize() }
