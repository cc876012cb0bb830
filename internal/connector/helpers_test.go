package connector

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	elderlyID = "shanghai.civil-affairs.elderly-population"
	testSeed  = 42
	testRows  = 10000
)

// elderly is the Shanghai elderly population dataset of the demo catalog.
func elderly(t testing.TB) *yrdv1.Dataset {
	t.Helper()
	for _, d := range synth.ForCity("shanghai") {
		if d.GetId() == elderlyID {
			return d
		}
	}
	t.Fatalf("no %s in synth.ForCity", elderlyID)
	return nil
}

func catalogOf(ds ...*yrdv1.Dataset) Catalog {
	m := map[string]*yrdv1.Dataset{}
	for _, d := range ds {
		m[d.GetId()] = d
	}
	return func(id string) (*yrdv1.Dataset, bool) { d, ok := m[id]; return d, ok }
}

// writeCSV writes rows of d, generated from seed, to a file in dir.
func writeCSV(t testing.TB, dir string, d *yrdv1.Dataset, rows int) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("data-%d.csv", rows))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := synth.WriteCSV(w, d, rows, testSeed); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// openElderly opens a DuckDB serving testRows rows of the elderly dataset.
func openElderly(t testing.TB) (*DuckDB, *yrdv1.Dataset) {
	t.Helper()
	d := elderly(t)
	p := writeCSV(t, t.TempDir(), d, testRows)
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{p}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if ms := db.Check(context.Background()); len(ms) > 0 {
		t.Fatalf("mismatches on a correct file: %v", ms)
	}
	return db, d
}

// decision allows effect with every column RAW except those in treat.
func decision(d *yrdv1.Dataset, effect yrdv1.Effect, treat map[string]yrdv1.ColumnTreatment) *yrdv1.Decision {
	dec := &yrdv1.Decision{Effect: effect, MinGroupSize: 10, RowCap: 1000}
	for _, c := range d.GetSchema().GetColumns() {
		tr, ok := treat[c.GetName()]
		if !ok {
			tr = yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW
		}
		dec.Columns = append(dec.Columns, &yrdv1.ColumnDecision{Column: c.GetName(), Treatment: tr})
	}
	return dec
}

// collect runs sql and returns the column names and rows, copied.
func collect(t testing.TB, db *DuckDB, sql string, args []any) ([]string, [][]any) {
	t.Helper()
	r, err := db.Query(context.Background(), sql, args)
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
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

// generated returns the generator's rows as Go values, by column name.
func generated(t testing.TB, d *yrdv1.Dataset, rows int) []map[string]any {
	t.Helper()
	g, err := synth.Generate(d, rows, testSeed)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, vals := range g.All() {
		m := map[string]any{}
		for i, c := range g.Columns() {
			m[c.GetName()] = vals[i].Any()
		}
		out = append(out, m)
	}
	return out
}

func col(name string) *yrdv1.SelectItem {
	return &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: name}}
}

func agg(f yrdv1.AggregateFunction, column, alias string) *yrdv1.SelectItem {
	return &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: f, Column: column}}, Alias: alias}
}

func eqString(column, v string) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{
		Column: column, Op: yrdv1.CompareOp_COMPARE_OP_EQ, Value: &yrdv1.Literal{Value: &yrdv1.Literal_StringValue{StringValue: v}}}}}
}

func clone(d *yrdv1.Dataset) *yrdv1.Dataset { return proto.Clone(d).(*yrdv1.Dataset) }

func writeJSON(w *os.File, d *yrdv1.Dataset) error {
	return synth.WriteJSONLines(w, d, testRows, testSeed)
}

// literal is v as a query literal: a string, an int, a float64 or a bool.
func literal(v any) *yrdv1.Literal {
	switch x := v.(type) {
	case string:
		return &yrdv1.Literal{Value: &yrdv1.Literal_StringValue{StringValue: x}}
	case int:
		return &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: int64(x)}}
	case float64:
		return &yrdv1.Literal{Value: &yrdv1.Literal_DoubleValue{DoubleValue: x}}
	case bool:
		return &yrdv1.Literal{Value: &yrdv1.Literal_BoolValue{BoolValue: x}}
	}
	panic(fmt.Sprintf("literal: %T is not a literal type", v))
}
