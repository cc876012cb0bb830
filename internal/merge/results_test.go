package merge_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestRowQueries(t *testing.T) {
	cities, tabs := delta()
	for _, tc := range []struct {
		sql      string
		wantCols []string
		want     [][]any
	}{
		{"SELECT person_id, age FROM fam ORDER BY age DESC LIMIT 3", []string{"person_id", "age"},
			[][]any{{"nj4", 99}, {"hz3", 95}, {"sh3", 91}}},
		// The ORDER BY column is not shown.
		{"SELECT person_id AS who FROM fam ORDER BY age LIMIT 2", []string{"who"}, [][]any{{"hz2"}, {"sz1"}}},
		{"SELECT person_id FROM fam ORDER BY care_level DESC, age DESC LIMIT 4", []string{"person_id"},
			[][]any{{"nj4"}, {"hz3"}, {"sh3"}, {"hz1"}}},
		// No ORDER BY: owners by city name, each's rows as received.
		{"SELECT person_id FROM fam", []string{"person_id"},
			[][]any{{"hz1"}, {"hz2"}, {"hz3"}, {"nj1"}, {"nj2"}, {"nj3"}, {"nj4"}, {"sh1"}, {"sh2"}, {"sh3"}, {"sh4"}, {"sh5"}, {"sz1"}}},
		{"SELECT person_id FROM fam LIMIT 4", []string{"person_id"}, [][]any{{"hz1"}, {"hz2"}, {"hz3"}, {"nj1"}}},
		// Ties keep that order.
		{"SELECT person_id, gender FROM fam ORDER BY gender DESC LIMIT 6", []string{"person_id", "gender"},
			[][]any{{"hz2", "M"}, {"nj1", "M"}, {"nj4", "M"}, {"sh2", "M"}, {"sh4", "M"}, {"hz1", "F"}}},
		{"SELECT * FROM fam ORDER BY age DESC LIMIT 1", elderlyCols, [][]any{{"nj4", "xuanwu", 99, "M", false, 5}}},
		{"SELECT * FROM fam ORDER BY care_level, person_id DESC LIMIT 2", elderlyCols,
			[][]any{{"sz1", "gusu", 64, "F", false, 0}, {"sh4", "pudong", 66, "M", false, 0}}},
	} {
		q := parse(t, tc.sql)
		cols, rows := runFamily(t, q, cities, tabs, nil)
		var names []string
		for _, c := range cols {
			names = append(names, c.GetName())
		}
		if !slices.Equal(names, tc.wantCols) {
			t.Errorf("%s: columns %v, want %v", tc.sql, names, tc.wantCols)
		}
		if d := sameResult(nil, nil, rows, rowsOf(t, tc.want...)); d != "" {
			t.Errorf("%s: %s", tc.sql, d)
		}
		// Top N of each owner's top N is the top N of all rows.
		refCols, ref := eval(t, onDataset(q, "all"), union(tabs["hangzhou"], tabs["nanjing"], tabs["shanghai"], tabs["suzhou"]), owner{})
		if d := sameResult(cols, refCols, rows, ref); d != "" {
			t.Errorf("%s: against the union: %s", tc.sql, d)
		}
	}

	// SELECT * whose ORDER BY column an owner does not show.
	m := plan(t, "SELECT * FROM fam ORDER BY age")
	err := m.Add("a", []*yrdv1.ResultColumn{rc("person_id", "VARCHAR"), rc("district", "VARCHAR")}, nil)
	if err == nil || !strings.Contains(err.Error(), "ORDER BY item 1: column age is not in the result") {
		t.Errorf("error %v", err)
	}
	// SELECT *: later owners must show the same columns.
	m = plan(t, "SELECT * FROM fam")
	if err := m.Add("a", []*yrdv1.ResultColumn{rc("person_id", "VARCHAR"), rc("district", "VARCHAR")}, nil); err != nil {
		t.Fatal(err)
	}
	err = m.Add("b", []*yrdv1.ResultColumn{rc("person_id", "VARCHAR"), rc("age", "BIGINT")}, nil)
	if err == nil || !strings.Contains(err.Error(), "column 2 (age) is BIGINT (COLUMN_TREATMENT_RAW), but a's is VARCHAR") {
		t.Errorf("error %v", err)
	}
}

func TestEmpty(t *testing.T) {
	for _, sql := range []string{
		"SELECT district, count(*) AS n FROM fam GROUP BY district ORDER BY n DESC LIMIT 3",
		"SELECT count(*), avg(age) FROM fam",
		"SELECT person_id FROM fam ORDER BY age LIMIT 5",
		"SELECT * FROM fam",
	} {
		// No owner answered: nothing to say, not even column types.
		m := plan(t, sql)
		cols, rows, err := m.Result()
		if cols != nil || rows != nil || err != nil {
			t.Errorf("%s with no owner: %v %v %v", sql, cols, rows, err)
		}
		// Owners answered with no rows.
		tabs := map[string]table{"a": {cols: elderlyCols, types: elderlyTypes}, "b": {cols: elderlyCols, types: elderlyTypes}}
		for _, c := range []string{"a", "b"} {
			pc, pr := eval(t, m.Partial(c), tabs[c], owner{k: 5})
			if err := m.Add(c, pc, pr); err != nil {
				t.Fatal(err)
			}
		}
		cols, rows, err = m.Result()
		if len(cols) == 0 || len(rows) != 0 || err != nil {
			t.Errorf("%s with empty owners: %s %s %v", sql, colsText(cols), rowsText(rows), err)
		}
	}
}

// Result names columns as DuckDB does for one dataset, whatever the
// owners' engines call them.
func TestNames(t *testing.T) {
	cities, tabs := delta()
	q := parse(t, "SELECT district, count(*), count(age), sum(age), avg(age), min(gender), max(person_id), living_alone AS alone FROM fam GROUP BY district, living_alone")
	want := []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("count_star()", "BIGINT"), rc("count(age)", "BIGINT"), rc("sum(age)", "BIGINT"),
		rc("avg(age)", "DOUBLE"), rc("min(gender)", "VARCHAR"), rc("max(person_id)", "VARCHAR"), rc("alone", "BOOLEAN")}
	pg := map[string]owner{"shanghai": {pg: true}, "nanjing": {pg: true}}
	cols, rows := runFamily(t, q, cities, tabs, pg)
	if d := sameResult(cols, want, nil, nil); d != "" {
		t.Error(d)
	}
	refCols, ref := eval(t, onDataset(q, "all"), union(tabs["shanghai"], tabs["hangzhou"], tabs["nanjing"], tabs["suzhou"]), owner{})
	if d := sameResult(cols, refCols, rows, ref); d != "" {
		t.Error("against the union:", d)
	}

	m := plan(t, `SELECT "year", avg("year"), max("order"), count("Age"), sum(care_level) FROM fam GROUP BY "year"`)
	got, err := m.Columns([]*yrdv1.ResultColumn{rc("year", "BIGINT"), rc("__yrd_sum_2", "BIGINT"), rc("__yrd_count_2", "BIGINT"),
		rc("max", "BIGINT"), rc("count", "BIGINT"), rc("sum", "BIGINT")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.GetName())
	}
	if want := []string{"year", `avg("year")`, `max("order")`, "count(Age)", "sum(care_level)"}; !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
}

// A column owners treat differently is reported with the most protective
// treatment; masked values are a group of their own.
func TestTreatments(t *testing.T) {
	m := plan(t, "SELECT district, count(*) AS n FROM fam GROUP BY district")
	masked := []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("n", "BIGINT")}
	masked[0].Treatment = yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED
	if err := m.Add("shanghai", []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("n", "BIGINT")}, rowsOf(t, []any{"pudong", 12})); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("hangzhou", masked, rowsOf(t, []any{"***", 30})); err != nil {
		t.Fatal(err)
	}
	cols, rows, err := m.Result()
	if err != nil {
		t.Fatal(err)
	}
	if tr := cols[0].GetTreatment(); tr != yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED {
		t.Errorf("district treatment %v", tr)
	}
	if tr := cols[1].GetTreatment(); tr != yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
		t.Errorf("n treatment %v", tr)
	}
	if d := sameResult(nil, nil, rows, rowsOf(t, []any{"***", 30}, []any{"pudong", 12})); d != "" {
		t.Error(d)
	}
}

// Timestamps compare as instants; one instant written two ways is one
// group. Dates compare as text.
func TestTemporal(t *testing.T) {
	m := plan(t, "SELECT registered_at, count(*) AS n, min(checked_on), max(seen_at) FROM fam GROUP BY registered_at ORDER BY 4 DESC")
	cols := []*yrdv1.ResultColumn{rc("registered_at", "TIMESTAMP"), rc("n", "BIGINT"), rc("min(checked_on)", "DATE"), rc("max(seen_at)", "TIMESTAMP")}
	if err := m.Add("a", cols, []*yrdv1.Row{
		row(vts("2024-03-01T08:00:00Z"), vi(2), vd("2024-02-10"), vts("2024-05-01T10:00:00Z")),
		row(vts("2024-03-02T08:00:00Z"), vi(1), vd("2023-12-31"), vts("2024-05-01T10:00:00.25Z")),
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("b", cols, []*yrdv1.Row{
		row(vts("2024-03-01T08:00:00.000Z"), vi(3), vd("2024-01-05"), vts("2024-05-01T10:00:00.5Z")),
		row(null(), vi(4), null(), null()),
	}); err != nil {
		t.Fatal(err)
	}
	_, rows, err := m.Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []*yrdv1.Row{
		row(vts("2024-03-01T08:00:00Z"), vi(5), vd("2024-01-05"), vts("2024-05-01T10:00:00.5Z")),
		row(vts("2024-03-02T08:00:00Z"), vi(1), vd("2023-12-31"), vts("2024-05-01T10:00:00.25Z")),
		row(null(), vi(4), null(), null()),
	}
	if d := sameResult(nil, nil, rows, want); d != "" {
		t.Error(d)
	}
}

// Doubles: sums stay doubles, NULL sums are ignored, all-NULL is NULL,
// min and max order NaN above everything.
func TestDoubles(t *testing.T) {
	m := plan(t, "SELECT gender, sum(score) AS s, avg(score) AS a, max(score) AS hi, min(score) AS lo FROM fam GROUP BY gender")
	cols := []*yrdv1.ResultColumn{rc("gender", "VARCHAR"), rc("s", "DOUBLE"), rc("__yrd_sum_3", "DOUBLE"), rc("__yrd_count_3", "BIGINT"), rc("hi", "DOUBLE"), rc("lo", "DOUBLE")}
	if err := m.Add("a", cols, rowsOf(t, []any{"F", 1.5, 1.5, 2, 1.0, 0.5}, []any{"M", nil, nil, 0, nil, nil}, []any{"X", 2.0, 2.0, 1, 2.0, 2.0})); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("b", cols, rowsOf(t, []any{"F", nil, nil, 0, nil, nil}, []any{"M", nil, nil, 0, nil, nil}, []any{"X", math.NaN(), math.NaN(), 1, math.NaN(), math.NaN()})); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("c", cols, rowsOf(t, []any{"F", 4.5, 4.5, 2, 3.0, -1.0})); err != nil {
		t.Fatal(err)
	}
	_, rows, err := m.Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := sameResult(nil, nil, rows[:2], rowsOf(t, []any{"F", 6.0, 1.5, 3.0, -1.0}, []any{"M", nil, nil, nil, nil})); d != "" {
		t.Error(d)
	}
	x := rows[2].GetValues()
	if x[0].GetStringValue() != "X" || !math.IsNaN(x[1].GetDoubleValue()) || !math.IsNaN(x[3].GetDoubleValue()) || x[4].GetDoubleValue() != 2 {
		t.Errorf("NaN group %s", rowText(rows[2]))
	}
}
