package merge_test

import (
	"bufio"
	"context"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/merge"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// duckDelta serves the elderly population dataset of five delta cities
// (synthetic rows, cities of different sizes, 5% NULLs) from one DuckDB,
// and a sixth dataset, "all", over every city's files at once: the one
// dataset the merged answers must agree with.
type duckDelta struct {
	db     *connector.DuckDB
	cities []string
	ds     map[string]*yrdv1.Dataset // by city, and "all"
}

func openDuckDelta(t *testing.T) *duckDelta {
	t.Helper()
	sizes := map[string]int{"hangzhou": 3000, "nanjing": 2200, "ningbo": 900, "shanghai": 4000, "suzhou-js": 1500}
	dir := t.TempDir()
	dd := &duckDelta{ds: map[string]*yrdv1.Dataset{}}
	var sources []connector.Source
	var all []string
	for _, city := range slices.Sorted(func(yield func(string) bool) {
		for c := range sizes {
			if !yield(c) {
				return
			}
		}
	}) {
		i := slices.IndexFunc(synth.ForCity(city), func(d *yrdv1.Dataset) bool {
			return d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID
		})
		if i < 0 {
			t.Fatalf("no elderly dataset for %s", city)
		}
		d := synth.ForCity(city)[i]
		p := filepath.Join(dir, city+".csv")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		if err := synth.WriteCSV(w, d, sizes[city], 7, synth.WithNullRate(0.05)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		dd.cities = append(dd.cities, city)
		dd.ds[city] = d
		sources = append(sources, connector.Source{DatasetID: d.GetId(), Format: "csv", Paths: []string{p}})
		all = append(all, p)
	}
	u := proto.Clone(dd.ds["shanghai"]).(*yrdv1.Dataset)
	u.Id = "all.civil-affairs.elderly-population"
	dd.ds["all"] = u
	sources = append(sources, connector.Source{DatasetID: u.GetId(), Format: "csv", Paths: all})
	db, err := connector.OpenDuckDB(context.Background(), sources, func(id string) (*yrdv1.Dataset, bool) {
		for _, d := range dd.ds {
			if d.GetId() == id {
				return d, true
			}
		}
		return nil, false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, d := range dd.ds {
		if !db.Serving(d.GetId()) {
			t.Fatalf("%s not served: %v", d.GetId(), db.Problems(d.GetId()))
		}
	}
	dd.db = db
	return dd
}

// run compiles q for dataset d with the connector, under a decision that
// allows rows (k = 0) or aggregates over groups of at least k people,
// runs it and returns the result as the node sends it.
func (dd *duckDelta) run(t *testing.T, d *yrdv1.Dataset, q *yrdv1.Query, k uint32) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
	t.Helper()
	dec := &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_ALLOW_ROWS, RowCap: 1 << 40}
	if k > 0 {
		dec = &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_ALLOW_AGGREGATES, MinGroupSize: k}
	}
	for _, c := range d.GetSchema().GetColumns() {
		dec.Columns = append(dec.Columns, &yrdv1.ColumnDecision{Column: c.GetName(), Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW})
	}
	text, args, err := connector.Compile(d, q, dec, nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	rows, err := dd.db.DB().QueryContext(context.Background(), text, args...)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	cols := make([]*yrdv1.ResultColumn, len(types))
	for i, ct := range types {
		cols[i] = rc(ct.Name(), resultType(t, ct.DatabaseTypeName()))
	}
	var out []*yrdv1.Row
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := &yrdv1.Row{}
		for i, v := range vals {
			r.Values = append(r.Values, toValue(t, v, cols[i].GetType()))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}

// resultType is the result type a node reports for a DuckDB type.
func resultType(t *testing.T, duck string) string {
	switch {
	case slices.Contains([]string{"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}, duck):
		return "BIGINT"
	case duck == "DOUBLE" || duck == "FLOAT" || strings.HasPrefix(duck, "DECIMAL"):
		return "DOUBLE"
	case duck == "VARCHAR" || duck == "BOOLEAN" || duck == "DATE":
		return duck
	case strings.HasPrefix(duck, "TIMESTAMP"):
		return "TIMESTAMP"
	}
	t.Fatalf("DuckDB type %s", duck)
	return ""
}

func toValue(t *testing.T, v any, typ string) *yrdv1.Value {
	switch x := v.(type) {
	case nil:
		return null()
	case int32:
		return vi(int64(x))
	case int64:
		return vi(x)
	case *big.Int:
		if !x.IsInt64() {
			t.Fatalf("%v does not fit BIGINT", x)
		}
		return vi(x.Int64())
	case float64:
		return vf(x)
	case duckdb.Decimal:
		return vf(x.Float64())
	case string:
		return vs(x)
	case bool:
		return vb(x)
	case time.Time:
		if typ == "DATE" {
			return vd(x.UTC().Format(time.DateOnly))
		}
		return vts(x.UTC().Format(time.RFC3339Nano))
	}
	t.Fatalf("value %v of type %T", v, v)
	return nil
}

// The merged answer of the five cities' partial results, each computed
// by the connector on DuckDB, is DuckDB's own answer over all their rows
// at once: the same column names and types, values, and order.
func TestAgainstDuckDB(t *testing.T) {
	dd := openDuckDelta(t)
	for _, sql := range []string{
		"SELECT district, count(*) AS n, sum(age), avg(age), min(age), max(age), count(care_level) FROM fam GROUP BY district ORDER BY n DESC, district LIMIT 10",
		"SELECT care_level, gender, avg(age) AS mean_age, count(*), min(district), max(person_id) FROM fam WHERE age >= 75 GROUP BY care_level, gender ORDER BY care_level DESC, gender",
		"SELECT count(*), count(age), sum(age), avg(age), avg(care_level), min(age), max(district) FROM fam",
		"SELECT count(*) AS n, avg(age) FROM fam WHERE living_alone = TRUE GROUP BY district, gender ORDER BY n DESC, 2 DESC LIMIT 8",
		"SELECT living_alone, sum(care_level) AS s, avg(care_level) FROM fam GROUP BY living_alone ORDER BY 1 DESC",
		"SELECT district FROM fam WHERE care_level IS NULL GROUP BY district ORDER BY district LIMIT 5",
		"SELECT person_id, district, age FROM fam WHERE care_level >= 4 ORDER BY age DESC, person_id LIMIT 20",
		"SELECT person_id FROM fam ORDER BY care_level DESC, age, person_id LIMIT 15",
		"SELECT * FROM fam WHERE age > 95 ORDER BY age DESC, person_id LIMIT 5",
	} {
		q := parse(t, sql)
		m, err := merge.Plan(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, city := range dd.cities {
			d := dd.ds[city]
			cols, rows := dd.run(t, d, m.Partial(d.GetId()), 0)
			if err := m.Add(city, cols, rows); err != nil {
				t.Fatalf("%s: add %s: %v", sql, city, err)
			}
		}
		cols, rows, err := m.Result()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		all := dd.ds["all"]
		wantCols, want := dd.run(t, all, onDataset(q, all.GetId()), 0)
		// DuckDB's avg and floating sums may differ from the merge's in
		// the last bits; sameResult allows for that.
		if d := sameResult(cols, wantCols, rows, want); d != "" {
			t.Errorf("%s: %s", sql, d)
		}
		if len(rows) == 0 {
			t.Errorf("%s: no rows; the test proves little", sql)
		}
	}
}

// The partial queries compile and run under an aggregates-only decision
// with k-suppression, and merge; every merged group is no larger than
// the group over all rows, and the suppression is real.
func TestDuckDBSuppressed(t *testing.T) {
	dd := openDuckDelta(t)
	q := parse(t, "SELECT district, care_level, count(*) AS n, avg(age) FROM fam GROUP BY district, care_level ORDER BY n DESC")
	m, err := merge.Plan(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, city := range dd.cities {
		d := dd.ds[city]
		cols, rows := dd.run(t, d, m.Partial(d.GetId()), 60)
		if err := m.Add(city, cols, rows); err != nil {
			t.Fatalf("add %s: %v", city, err)
		}
	}
	_, rows, err := m.Result()
	if err != nil {
		t.Fatal(err)
	}
	_, full := dd.run(t, dd.ds["all"], onDataset(q, dd.ds["all"].GetId()), 0)
	fullN := map[string]int64{}
	for _, r := range full {
		fullN[rowText(row(r.GetValues()[:2]...))] = r.GetValues()[2].GetIntValue()
	}
	if len(rows) == 0 || len(rows) >= len(full) {
		t.Fatalf("%d merged groups of %d; the test proves nothing", len(rows), len(full))
	}
	for _, r := range rows {
		k := rowText(row(r.GetValues()[:2]...))
		if n := r.GetValues()[2].GetIntValue(); n < 60 || n > fullN[k] {
			t.Errorf("group %s: %d people, of %d in all", k, n, fullN[k])
		}
	}
}
