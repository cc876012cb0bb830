package merge_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/merge"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// delta is a small elderly population table of four cities, by hand.
func delta() ([]string, map[string]table) {
	tab := func(rows ...[]*yrdv1.Value) table {
		return table{cols: elderlyCols, types: elderlyTypes, rows: rows}
	}
	return []string{"shanghai", "hangzhou", "nanjing", "suzhou"}, map[string]table{
		"shanghai": tab(
			person("sh1", "huangpu", 72, "F", true, 1),
			person("sh2", "huangpu", 85, "M", false, 3),
			person("sh3", "pudong", 91, "F", true, 3),
			person("sh4", "pudong", 66, "M", false, 0),
			person("sh5", "xuhui", 78, "F", nil, nil),
		),
		"hangzhou": tab(
			person("hz1", "xihu", 88, "F", true, 3),
			person("hz2", "xihu", 61, "M", false, 0),
			person("hz3", "shangcheng", 95, "F", true, 5),
		),
		"nanjing": tab(
			person("nj1", "gulou", 70, "M", true, 1),
			person("nj2", "gulou", nil, "F", false, 1),
			person("nj3", "xuanwu", 83, "F", true, 3),
			person("nj4", "xuanwu", 99, "M", false, 5),
		),
		"suzhou": tab(
			person("sz1", "gusu", 64, "F", false, 0),
		),
	}
}

// The figures by care level, worked out by hand; care levels 5 and NULL
// are in some cities only.
func TestMergeByHand(t *testing.T) {
	cities, tabs := delta()
	q := parse(t, "SELECT care_level, count(*) AS n, count(age) AS aged, sum(age) AS total_age, avg(age) AS mean_age, min(age), max(age) FROM fam GROUP BY care_level")
	cols, rows := runFamily(t, q, cities, tabs, nil)
	wantCols := []*yrdv1.ResultColumn{rc("care_level", "BIGINT"), rc("n", "BIGINT"), rc("aged", "BIGINT"), rc("total_age", "BIGINT"),
		rc("mean_age", "DOUBLE"), rc("min(age)", "BIGINT"), rc("max(age)", "BIGINT")}
	want := rowsOf(t,
		[]any{0, 3, 3, 191, 191.0 / 3, 61, 66}, // sh4, hz2, sz1
		[]any{1, 3, 2, 142, 71.0, 70, 72},      // sh1, nj1, nj2 (age NULL)
		[]any{3, 4, 4, 347, 86.75, 83, 91},     // sh2, sh3, hz1, nj3
		[]any{5, 2, 2, 194, 97.0, 95, 99},      // hz3, nj4: not in shanghai or suzhou
		[]any{nil, 1, 1, 78, 78.0, 78, 78},     // sh5: shanghai only; NULL is a group, last
	)
	if d := sameResult(cols, wantCols, rows, want); d != "" {
		t.Error(d)
	}
	// The same as one query over everyone's rows.
	refCols, ref := eval(t, onDataset(q, "all"), union(tabs["shanghai"], tabs["hangzhou"], tabs["nanjing"], tabs["suzhou"]), owner{})
	if d := sameResult(cols, refCols, rows, ref); d != "" {
		t.Error("against the union:", d)
	}
}

// avg over cities of different sizes is the mean over all people, not the
// mean of the cities' means.
func TestAvgIsWeightedMean(t *testing.T) {
	cities, tabs := delta()
	_, rows := runFamily(t, parse(t, "SELECT avg(age) AS mean_age, count(age) FROM fam"), cities, tabs, nil)
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	got := rows[0].GetValues()[0].GetDoubleValue()
	// shanghai 392/5, hangzhou 244/3, nanjing 252/3 (one age NULL), suzhou 64/1
	want := float64(392+244+252+64) / 12
	meanOfMeans := (392.0/5 + 244.0/3 + 252.0/3 + 64) / 4
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("avg %v, want %v (the mean of means is %v)", got, want, meanOfMeans)
	}
	if n := rows[0].GetValues()[1].GetIntValue(); n != 12 {
		t.Errorf("count(age) %d, want 12", n)
	}
}

// byLevel builds tables with counts[city][level] people at each care level.
func byLevel(counts map[string]map[int]int) ([]string, map[string]table) {
	tabs := map[string]table{}
	var cities []string
	for city, levels := range counts {
		cities = append(cities, city)
		tb := table{cols: elderlyCols, types: elderlyTypes}
		for _, level := range slices.Sorted(mapsKeys(levels)) {
			for i := range levels[level] {
				tb.rows = append(tb.rows, person(fmt.Sprintf("%s-%d-%d", city, level, i), city+"-d", 60+i%40, "F", i%2 == 0, level))
			}
		}
		tabs[city] = tb
	}
	slices.Sort(cities)
	return cities, tabs
}

func mapsKeys(m map[int]int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ORDER BY an aggregate and LIMIT apply to the merged groups: each
// owner's own top group is not the delta's top group.
func TestOrderAndLimitAfterMerge(t *testing.T) {
	cities, tabs := byLevel(map[string]map[int]int{
		"shanghai": {0: 10, 1: 9, 2: 1},
		"hangzhou": {3: 10, 1: 9, 2: 1},
		"nanjing":  {4: 10, 1: 9},
	})
	q := parse(t, "SELECT care_level, count(*) AS n FROM fam GROUP BY care_level ORDER BY n DESC LIMIT 1")
	_, rows := runFamily(t, q, cities, tabs, nil)
	if d := sameResult(nil, nil, rows, rowsOf(t, []any{1, 27})); d != "" {
		t.Error(d)
	}

	// Had each owner applied ORDER BY and LIMIT to its partial groups,
	// level 1 (9 in every city) would be in no owner's answer.
	naive := map[string]int64{}
	for _, city := range cities {
		_, part := eval(t, onDataset(q, datasetOf(city)), tabs[city], owner{})
		for _, r := range part {
			naive[fmt.Sprint(r.GetValues()[0].GetIntValue())] += r.GetValues()[1].GetIntValue()
		}
	}
	if _, ok := naive["1"]; ok || len(naive) != 3 {
		t.Fatalf("the per-owner top 1 is %v; the test proves nothing", naive)
	}
	// And the partial query the plan makes has neither.
	if p := plan(t, "SELECT care_level, count(*) AS n FROM fam GROUP BY care_level ORDER BY n DESC LIMIT 1").Partial("x"); p.GetLimit() != 0 || len(p.GetOrderBy()) != 0 {
		t.Errorf("partial keeps ORDER BY %v / LIMIT %d", p.GetOrderBy(), p.GetLimit())
	}

	// Ties on the requested keys are in group key order, whatever order
	// the owners answered in.
	q = parse(t, "SELECT care_level, count(*) AS n FROM fam GROUP BY care_level ORDER BY n DESC")
	_, rows = runFamily(t, q, cities, tabs, nil)
	if d := sameResult(nil, nil, rows, rowsOf(t, []any{1, 27}, []any{0, 10}, []any{3, 10}, []any{4, 10}, []any{2, 2})); d != "" {
		t.Error(d)
	}
}

// NULLs sort last, ascending and descending (DuckDB's default).
func TestNullsLast(t *testing.T) {
	cities, tabs := delta()
	for _, tc := range []struct {
		sql  string
		want []any
	}{
		{"SELECT care_level FROM fam GROUP BY care_level ORDER BY care_level", []any{0, 1, 3, 5, nil}},
		{"SELECT care_level FROM fam GROUP BY care_level ORDER BY care_level DESC", []any{5, 3, 1, 0, nil}},
		{"SELECT care_level AS c FROM fam GROUP BY care_level ORDER BY 1 DESC", []any{5, 3, 1, 0, nil}},
		{"SELECT age FROM fam WHERE age IS NULL OR age > 90 ORDER BY age DESC", []any{99, 95, 91, nil}},
		{"SELECT age FROM fam WHERE age IS NULL OR age > 90 ORDER BY age", []any{91, 95, 99, nil}},
	} {
		q := parse(t, tc.sql)
		q.Where = nil // eval has no WHERE; filter the rows instead
		ts := tabs
		if strings.Contains(tc.sql, "WHERE") {
			ts = map[string]table{}
			for c, tb := range tabs {
				f := tb
				f.rows = nil
				for _, r := range tb.rows {
					if a := r[2]; a.GetKind() == nil || a.GetIntValue() > 90 {
						f.rows = append(f.rows, r)
					}
				}
				ts[c] = f
			}
		}
		_, rows := runFamily(t, q, cities, ts, nil)
		var want [][]any
		for _, w := range tc.want {
			want = append(want, []any{w})
		}
		if d := sameResult(nil, nil, rows, rowsOf(t, want...)); d != "" {
			t.Errorf("%s: %s", tc.sql, d)
		}
	}
}

// An owner releases no row for a group under its k; a merged group
// combines the owners that released it, and a global aggregate that no
// owner released is no row at all, not a made-up count of 0.
func TestSuppressedGroups(t *testing.T) {
	cities, tabs := delta()
	k2 := map[string]owner{}
	for _, c := range cities {
		k2[c] = owner{k: 2}
	}
	q := parse(t, "SELECT care_level, count(*) AS n, avg(age) FROM fam GROUP BY care_level")
	cols, rows := runFamily(t, q, cities, tabs, k2)
	// Released at k=2: shanghai level 3 (sh2, sh3); hangzhou none;
	// nanjing level 1 (nj1, nj2); suzhou none.
	want := rowsOf(t, []any{1, 2, 70.0}, []any{3, 2, 88.0})
	if d := sameResult(cols, cols, rows, want); d != "" {
		t.Error(d)
	}

	g := parse(t, "SELECT count(*) AS n, sum(age) AS s FROM fam")
	_, rows = runFamily(t, g, cities, tabs, map[string]owner{"shanghai": {k: 4}, "hangzhou": {k: 4}, "nanjing": {k: 4}, "suzhou": {k: 4}})
	// shanghai (5) and nanjing (4) released; hangzhou (3) and suzhou (1) did not.
	if d := sameResult(nil, nil, rows, rowsOf(t, []any{9, 392 + 252})); d != "" {
		t.Error(d)
	}
	_, rows = runFamily(t, g, cities, tabs, map[string]owner{"shanghai": {k: 10}, "hangzhou": {k: 10}, "nanjing": {k: 10}, "suzhou": {k: 10}})
	if len(rows) != 0 {
		t.Errorf("every owner suppressed its answer, yet the merge says %s", rowsText(rows))
	}
	// Without suppression an empty table's global aggregate is a true
	// count of 0, and the merge keeps it.
	empty := map[string]table{"a": {cols: elderlyCols, types: elderlyTypes}, "b": {cols: elderlyCols, types: elderlyTypes}}
	_, rows = runFamily(t, g, []string{"a", "b"}, empty, nil)
	if d := sameResult(nil, nil, rows, rowsOf(t, []any{0, nil})); d != "" {
		t.Error(d)
	}
}

func TestSumOverflow(t *testing.T) {
	m := plan(t, "SELECT district, sum(population) AS total, avg(population) FROM fam GROUP BY district")
	cols := []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("total", "BIGINT"), rc("__yrd_sum_3", "BIGINT"), rc("__yrd_count_3", "BIGINT")}
	add := func(m *merge.Merge, city string, sum int64) {
		t.Helper()
		if err := m.Add(city, cols, rowsOf(t, []any{"x", sum, sum, 1})); err != nil {
			t.Fatal(err)
		}
	}
	add(m, "a", math.MaxInt64-10)
	add(m, "b", 100)
	_, _, err := m.Result()
	if !errors.Is(err, merge.ErrOverflow) {
		t.Fatalf("error %v, want ErrOverflow", err)
	}
	if want := "merge: select item 2: sum(population): the cities' results add up to more than BIGINT holds in group ('x')"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q\nwant %q...", err, want)
	}

	// What counts is the total, not a running sum in some order.
	m = plan(t, "SELECT district, sum(population) AS total, avg(population) FROM fam GROUP BY district")
	add(m, "a", math.MaxInt64)
	add(m, "b", math.MaxInt64)
	add(m, "c", -math.MaxInt64)
	_, rows, err := m.Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := sameResult(nil, nil, rows, rowsOf(t, []any{"x", int64(math.MaxInt64), float64(math.MaxInt64) / 3})); d != "" {
		t.Error(d)
	}
	// avg does not overflow: its sum is exact and then a double.
	m = plan(t, "SELECT avg(population) FROM fam")
	for _, c := range []string{"a", "b", "c"} {
		if err := m.Add(c, []*yrdv1.ResultColumn{rc("__yrd_sum_1", "BIGINT"), rc("__yrd_count_1", "BIGINT")}, rowsOf(t, []any{int64(math.MaxInt64), 1})); err != nil {
			t.Fatal(err)
		}
	}
	if _, rows, err = m.Result(); err != nil || rows[0].GetValues()[0].GetDoubleValue() != math.MaxInt64 {
		t.Errorf("avg %v, %v", rowsText(rows), err)
	}
}

func TestAddRejects(t *testing.T) {
	const sql = "SELECT district, count(*) AS n, sum(age), avg(age) FROM fam GROUP BY district"
	good := func() []*yrdv1.ResultColumn {
		return []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("n", "BIGINT"), rc("sum(age)", "BIGINT"), rc("__yrd_sum_4", "BIGINT"), rc("__yrd_count_4", "BIGINT")}
	}
	goodRows := func() []*yrdv1.Row { return rowsOf(t, []any{"pudong", 3, 200, 200, 3}) }
	for _, tc := range []struct {
		name string
		city string
		edit func([]*yrdv1.ResultColumn, []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row)
		want string
	}{
		{"too few columns", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			return c[:4], r
		}, "merge: b: 4 columns, want 5 (the partial query's)"},
		{"helper renamed", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			c[4].Name = "count(age)"
			return c, r
		}, `column 5 is named "count(age)", want "__yrd_count_4" for select item 4 (avg(age)) helper __yrd_count_4`},
		{"alias lost", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			c[1].Name = "count_star()"
			return c, r
		}, `column 2 is named "count_star()", want "n"`},
		{"count not BIGINT", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			c[1].Type = "DOUBLE"
			return c, r
		}, "column 2 (n) is DOUBLE, want BIGINT"},
		{"unknown type", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			c[2].Type = "HUGEINT"
			return c, r
		}, `column 3 (sum(age)): type "HUGEINT" is not a result type`},
		{"type differs from the first owner", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			c[0].Type, c[0].Treatment = "BIGINT", yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED
			return c, rowsOf(t, []any{7, 3, 200, 200, 3})
		}, "merge: b: column 1 (district) is BIGINT (COLUMN_TREATMENT_PSEUDONYMISED), but a's is VARCHAR (COLUMN_TREATMENT_RAW)"},
		{"short row", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			r[0].Values = r[0].Values[:4]
			return c, r
		}, "row 1 has 4 values for 5 columns"},
		{"value of another kind", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			r[0].Values[2] = vf(200)
			return c, r
		}, "row 1, column 3 (sum(age)): a double value in a BIGINT column"},
		{"nil value", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			r[0].Values[0] = nil
			return c, r
		}, "nil value (NULL is an empty Value)"},
		{"nil row", "b", func(c []*yrdv1.ResultColumn, r []*yrdv1.Row) ([]*yrdv1.ResultColumn, []*yrdv1.Row) {
			return c, []*yrdv1.Row{nil}
		}, "row 1 is nil"},
		{"added twice", "a", nil, "merge: a: result added twice"},
		{"no city", "", nil, "empty owner"},
	} {
		m := plan(t, sql)
		if err := m.Add("a", good(), goodRows()); err != nil {
			t.Fatal(err)
		}
		_, before, _ := m.Result()
		c, r := good(), goodRows()
		if tc.edit != nil {
			c, r = tc.edit(c, r)
		}
		err := m.Add(tc.city, c, r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		// A failed Add adds nothing: the owner can be left out.
		if _, after, _ := m.Result(); !slices.EqualFunc(before, after, func(a, b *yrdv1.Row) bool { return proto.Equal(a, b) }) {
			t.Errorf("%s: a failed Add changed the result from %s to %s", tc.name, rowsText(before), rowsText(after))
		}
	}
}
