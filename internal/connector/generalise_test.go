package connector

import (
	"fmt"
	"math"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// suiteGeneralisedBandsAndPrefixes: a GENERALISED column shows its
// band's lower bound or its prefix, never the value, row for row as
// computed from the generated data.
func suiteGeneralisedBandsAndPrefixes(t *testing.T, e engineUnderTest) {
	d := clone(e.d)
	for _, c := range d.GetSchema().GetColumns() {
		switch c.GetName() {
		case "age":
			c.Generalise = &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_BandWidth{BandWidth: 5}}
		case "district":
			c.Generalise = &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_PrefixLength{PrefixLength: 2}}
		}
	}
	want := map[string]int{}
	for _, r := range generated(t, d, testRows) {
		district, age := any(nil), any(nil)
		if r["district"] != nil {
			district = prefixRunes(fmt.Sprint(r["district"]), 2)
		}
		if r["age"] != nil {
			var a float64
			if _, err := fmt.Sscan(fmt.Sprint(r["age"]), &a); err != nil {
				t.Fatalf("age %v: %v", r["age"], err)
			}
			age = int64(math.Floor(a/5)) * 5
		}
		want[fmt.Sprintf("%v|%v", district, age)]++
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), col("age")}
	dec := decision(d, yrdv1.Effect_EFFECT_ALLOW_ROWS, map[string]yrdv1.ColumnTreatment{
		"district": yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED, "age": yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED})
	dec.RowCap = 10 * testRows
	// The generalisations are the catalog's, so d, not e.d, is compiled.
	var sql string
	var args []any
	var err error
	if pg, ok := e.Engine.(*Postgres); ok {
		sql, args, err = CompilePostgresWith(d, pg.tables[d.GetId()], q, dec, Options{})
	} else {
		sql, args, err = CompileWith(d, q, dec, Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	_, rows := e.query(t, sql, args)
	got := map[string]int{}
	for _, row := range rows {
		got[fmt.Sprintf("%v|%v", row[0], row[1])]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("generalised rows differ from the bands and prefixes of the data:\n got  %v\n want %v", got, want)
	}
}

func prefixRunes(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}

// suiteGeneralisedDatesTruncate: month and year truncation of dates and
// timestamps, in the engine's dialect.
func suiteGeneralisedDatesTruncate(t *testing.T, e engineUnderTest) {
	cases := []struct {
		typ  string
		unit yrdv1.DateTruncation
		in   string
		want string
	}{
		{"DATE", yrdv1.DateTruncation_DATE_TRUNCATION_MONTH, "2024-03-17", "2024-03-01"},
		{"DATE", yrdv1.DateTruncation_DATE_TRUNCATION_YEAR, "2024-03-17", "2024-01-01"},
		{"TIMESTAMP", yrdv1.DateTruncation_DATE_TRUNCATION_MONTH, "2024-03-17 08:15:00", "2024-03-01 00:00:00"},
	}
	for _, c := range cases {
		col := &yrdv1.Column{Name: "d", Type: c.typ, Generalise: &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_Truncate{Truncate: c.unit}}}
		expr, err := generalised(e.dl, col)
		if err != nil {
			t.Fatal(err)
		}
		sql := "SELECT " + cast(e.dl, expr, "VARCHAR") + " FROM (SELECT " + cast(e.dl, "'"+c.in+"'", c.typ) + " AS " + e.dl.ident("d") + ") AS t"
		_, rows := e.query(t, sql, nil)
		if len(rows) != 1 || fmt.Sprint(rows[0][0]) != c.want {
			t.Errorf("%s: %s %v of %s = %v, want %s", e.name, c.typ, c.unit, c.in, rows, c.want)
		}
	}
	if _, err := generalised(e.dl, &yrdv1.Column{Name: "x", Type: "VARCHAR", Generalise: &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_BandWidth{BandWidth: 5}}}); err == nil {
		t.Error("a band over a VARCHAR column compiled")
	}
}
