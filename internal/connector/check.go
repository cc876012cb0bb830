package connector

import (
	"context"
	"fmt"
	"slices"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Mismatch is one difference between a dataset's local files and its
// catalog schema. Column is empty for problems of the whole dataset.
type Mismatch struct {
	DatasetID string
	Column    string
	Problem   string
}

// JoinMismatches renders ms as one line, "; "-separated.
func JoinMismatches(ms []Mismatch) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, "; ")
}

func (m Mismatch) String() string {
	if m.Column == "" {
		return m.DatasetID + ": " + m.Problem
	}
	return m.DatasetID + ": column " + m.Column + ": " + m.Problem
}

// Check compares every configured dataset's local files with its catalog
// schema, reports every mismatch, and (re)creates the views of the
// datasets that match while dropping the views of those that do not, so a
// dataset is served exactly when its last check passed.
func (d *DuckDB) Check(ctx context.Context) []Mismatch { return d.checkAll(ctx, false) }

// checkAll is Check; with verifyNow (at open) it also verifies each served
// dataset's person key unique before it returns (see checkDataset).
func (d *DuckDB) checkAll(ctx context.Context, verifyNow bool) []Mismatch {
	ids := make([]string, 0, len(d.sources))
	for id := range d.sources {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a stable report, whatever the map order
	var all []Mismatch
	for _, id := range ids {
		all = append(all, d.checkDataset(ctx, id, verifyNow)...)
	}
	return all
}

// CheckDataset is Check for one dataset.
func (d *DuckDB) CheckDataset(ctx context.Context, id string) []Mismatch {
	return d.checkDataset(ctx, id, false)
}

// checkDataset checks one dataset. Whether its person key is unique per
// row (the sketch's fast path) is verified before it returns at open, and
// otherwise in the background: the verification scans every key, which
// on a large file would hold up the checks of other datasets behind it,
// and until it ends queries take the distinct path, which is also exact.
func (d *DuckDB) checkDataset(ctx context.Context, id string, verifyNow bool) []Mismatch {
	src, ok := d.sources[id]
	if !ok {
		return []Mismatch{{DatasetID: id, Problem: "no local source configured"}}
	}
	ms := d.check(ctx, src)
	if len(ms) == 0 {
		ds, _ := d.catalog(id)
		stmt, err := viewSQL(src, ds)
		if err == nil {
			_, err = d.db.ExecContext(ctx, stmt)
		}
		if err != nil {
			ms = append(ms, Mismatch{DatasetID: id, Problem: "cannot create view: " + err.Error()})
		}
	}
	if len(ms) > 0 {
		// Dropping the view means even SQL not made by Compile cannot
		// read a dataset whose files no longer match the catalog.
		_, _ = d.db.ExecContext(ctx, "DROP VIEW IF EXISTS "+quoteIdent(id))
	}
	d.mu.Lock()
	d.problems[id] = ms
	if len(ms) > 0 {
		delete(d.unique, id)
	}
	d.mu.Unlock()
	switch {
	case len(ms) > 0:
	case verifyNow:
		d.verifyUnique(ctx, src)
	default:
		d.recheckUnique(id)
	}
	return ms
}

// localColumn is a column as DuckDB reads it from the files.
type localColumn struct{ name, typ string }

func (d *DuckDB) check(ctx context.Context, src Source) []Mismatch {
	id := src.DatasetID
	ds, ms := servable(d.catalog, id, duckType)
	if len(ms) > 0 {
		return ms
	}
	local, err := d.describeFiles(ctx, src)
	if err != nil {
		return []Mismatch{{DatasetID: id, Problem: "cannot read files: " + err.Error()}}
	}
	// Text formats carry no types: DuckDB infers them from a sample, so
	// any inferred type can be read as VARCHAR, and an integer-looking
	// column may be declared wider.
	inferred := src.Format != "parquet"
	return compareSchemas(id, ds.GetSchema().GetColumns(), local, inferred, src.Format == "csv")
}

// describeFiles reads the files' own column names and types: the Parquet
// schema, or what DuckDB's sniffer infers for CSV and JSON. The views use
// catalog types, so describing a view would prove nothing.
func (d *DuckDB) describeFiles(ctx context.Context, src Source) ([]localColumn, error) {
	paths, err := pathList(src)
	if err != nil {
		return nil, err
	}
	var from string
	switch src.Format {
	case "csv":
		from = "read_csv(" + paths + ", header = true)"
	case "parquet":
		from = "read_parquet(" + paths + ")"
	case "json":
		from = "read_json(" + paths + ")"
	}
	rows, err := d.db.QueryContext(ctx, "DESCRIBE SELECT * FROM "+from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []localColumn
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name, _ := vals[0].(string)
		typ, _ := vals[1].(string)
		out = append(out, localColumn{name, typ})
	}
	return out, rows.Err()
}

// compareSchemas lists every difference: catalog columns missing locally,
// local columns the catalog lacks, and types that differ.
func compareSchemas(id string, catalog []*yrdv1.Column, local []localColumn, inferred, positional bool) []Mismatch {
	var ms []Mismatch
	byName := make(map[string]localColumn, len(local))
	for _, l := range local {
		byName[l.name] = l
	}
	want := make(map[string]bool, len(catalog))
	for _, c := range catalog {
		want[c.GetName()] = true
		l, ok := byName[c.GetName()]
		if !ok {
			ms = append(ms, Mismatch{DatasetID: id, Column: c.GetName(), Problem: "missing locally (in catalog schema, not in files)"})
			continue
		}
		if !compatible(strings.ToUpper(c.GetType()), l.typ, inferred) {
			ms = append(ms, Mismatch{DatasetID: id, Column: c.GetName(),
				Problem: fmt.Sprintf("type differs: local %s vs catalog %s", l.typ, strings.ToUpper(c.GetType()))})
		}
	}
	for _, l := range local {
		if !want[l.name] {
			ms = append(ms, Mismatch{DatasetID: id, Column: l.name, Problem: "extra column (in files, not in catalog schema)"})
		}
	}
	// CSV columns are read by position, so the order must match too;
	// Parquet and JSON columns are read by name.
	if positional && len(ms) == 0 && len(local) == len(catalog) {
		for i, c := range catalog {
			if local[i].name != c.GetName() {
				ms = append(ms, Mismatch{DatasetID: id, Column: c.GetName(),
					Problem: fmt.Sprintf("position differs: local column %d is %q", i+1, local[i].name)})
			}
		}
	}
	return ms
}

// family groups DuckDB types by what they can be read as without loss.
func family(duckType string) string {
	t := strings.ToUpper(strings.TrimSpace(duckType))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = t[:i]
	}
	switch t {
	case "TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT":
		return "INT32"
	case "BIGINT", "UINTEGER":
		return "INT64"
	case "HUGEINT", "UBIGINT", "UHUGEINT":
		return "INT128"
	case "FLOAT", "DOUBLE":
		return "FLOAT"
	case "DECIMAL":
		return "DECIMAL"
	case "VARCHAR":
		return "VARCHAR"
	case "BOOLEAN":
		return "BOOLEAN"
	case "DATE":
		return "DATE"
	case "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE":
		return "TIMESTAMP"
	}
	return t
}

// compatible reports whether local values of type localType can be read
// as the catalog type without loss. For inferred (text) formats the type
// is only the sniffer's guess from a sample, so anything reads as VARCHAR
// and any integer width fits an INTEGER column if the values do.
func compatible(catalogType, localType string, inferred bool) bool {
	f := family(localType)
	isInt := f == "INT32" || f == "INT64" || f == "INT128"
	switch catalogType {
	case "VARCHAR":
		return f == "VARCHAR" || inferred
	case "INTEGER":
		return f == "INT32" || (inferred && isInt)
	case "BIGINT":
		return f == "INT32" || f == "INT64" || (inferred && isInt)
	case "DOUBLE":
		return f == "FLOAT" || f == "DECIMAL" || isInt
	case "DECIMAL":
		return f == "DECIMAL" || isInt || (inferred && f == "FLOAT")
	case "BOOLEAN":
		return f == "BOOLEAN"
	case "DATE":
		return f == "DATE"
	case "TIMESTAMP":
		return f == "TIMESTAMP" || (inferred && f == "DATE")
	}
	return false
}

// servable looks id up in the catalog and reports why it cannot be served
// by an engine that maps catalog types with engineType: missing, retired,
// or a column type the engine cannot hold.
func servable(catalog Catalog, id string, engineType func(string) (string, bool)) (*yrdv1.Dataset, []Mismatch) {
	ds, ok := catalog(id)
	if !ok || ds == nil {
		return nil, []Mismatch{{DatasetID: id, Problem: "not in the catalog"}}
	}
	if ds.GetRetired() {
		return nil, []Mismatch{{DatasetID: id, Problem: "retired in the catalog"}}
	}
	var ms []Mismatch
	for _, c := range ds.GetSchema().GetColumns() {
		if _, ok := engineType(c.GetType()); !ok {
			ms = append(ms, Mismatch{DatasetID: id, Column: c.GetName(), Problem: fmt.Sprintf("catalog type %q is not supported", c.GetType())})
		}
	}
	return ds, ms
}
