package merge_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/merge"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestPartial(t *testing.T) {
	const ds = "FROM shanghai.civil-affairs.elderly-population"
	for _, tc := range []struct{ sql, want string }{
		{ // count, sum, min and max stay; avg becomes sum and count.
			"SELECT district, count(*) AS n, sum(age), avg(age), min(age), max(age) FROM fam GROUP BY district",
			"SELECT district, count(*) AS n, sum(age), sum(age) AS __yrd_sum_4, count(age) AS __yrd_count_4, min(age), max(age) " + ds + " GROUP BY district",
		},
		{ // ORDER BY and LIMIT of an aggregate query are applied after merging.
			"SELECT district, count(*) AS n FROM fam WHERE age >= 80 GROUP BY district ORDER BY n DESC, district LIMIT 3",
			"SELECT district, count(*) AS n " + ds + " WHERE age >= 80 GROUP BY district",
		},
		{ // Unselected GROUP BY columns become hidden columns.
			"SELECT avg(age) AS mean_age FROM fam GROUP BY district, living_alone",
			"SELECT sum(age) AS __yrd_sum_1, count(age) AS __yrd_count_1, district AS __yrd_group_1, living_alone AS __yrd_group_2 " + ds + " GROUP BY district, living_alone",
		},
		{ // A global aggregate.
			"SELECT count(*), avg(care_level) FROM fam",
			"SELECT count(*), sum(care_level) AS __yrd_sum_2, count(care_level) AS __yrd_count_2 " + ds,
		},
		{ // Row queries keep ORDER BY and LIMIT (each owner's top N).
			"SELECT person_id, age FROM fam WHERE living_alone = TRUE ORDER BY age DESC LIMIT 10",
			"SELECT person_id, age " + ds + " WHERE living_alone = TRUE ORDER BY age DESC LIMIT 10",
		},
		{ // ... and show ORDER BY columns, hidden, so the merge can sort.
			"SELECT person_id FROM fam ORDER BY care_level DESC, age LIMIT 10",
			"SELECT person_id, care_level AS __yrd_order_1, age AS __yrd_order_2 " + ds + " ORDER BY care_level DESC, age LIMIT 10",
		},
		{
			"SELECT * FROM fam ORDER BY age LIMIT 5",
			"SELECT * " + ds + " ORDER BY age LIMIT 5",
		},
	} {
		m := plan(t, tc.sql)
		p := m.Partial("shanghai.civil-affairs.elderly-population")
		if got := sqlq.Format(p); got != tc.want {
			t.Errorf("%s\npartial %s\n   want %s", tc.sql, got, tc.want)
		}
		// The partial is the caller's to change.
		p.Select = nil
		if got := sqlq.Format(m.Partial("x")); strings.Contains(got, "SELECT * FROM x") != strings.HasPrefix(tc.want, "SELECT * ") {
			t.Errorf("changing a partial changed the plan: %s", got)
		}
	}
}

func TestPlanRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    *yrdv1.Query
		want string
	}{
		{"count distinct", parse(t, "SELECT district, count(*), count(DISTINCT person_id) FROM fam GROUP BY district"),
			"merge: select item 3: count(DISTINCT person_id) cannot be merged exactly across cities"},
		{"one dataset", &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: "shanghai.civil-affairs.elderly-population"}},
			"not on a dataset family"},
		{"no source", &yrdv1.Query{}, "not on a dataset family"},
		{"nil", nil, "no query"},
		{"reserved alias", parse(t, `SELECT count(*) AS "__YRD_sum_1" FROM fam`), `select item 1: alias "__YRD_sum_1"`},
		{"ungrouped column", parse(t, "SELECT district, gender, count(*) FROM fam GROUP BY district"),
			"select item 2: column gender is selected but neither grouped nor aggregated"},
		{"order by ungrouped", parse(t, "SELECT district, count(*) FROM fam GROUP BY district ORDER BY age"),
			"ORDER BY item 1: column age is not grouped"},
		{"select index", &yrdv1.Query{Source: &yrdv1.Query_Family{Family: "f"},
			Select:  []*yrdv1.SelectItem{{Item: &yrdv1.SelectItem_Column{Column: "a"}}},
			OrderBy: []*yrdv1.OrderItem{{Key: &yrdv1.OrderItem_SelectIndex{SelectIndex: 1}}}},
			"ORDER BY item 1: select position 2 is out of range"},
		{"empty item", &yrdv1.Query{Source: &yrdv1.Query_Family{Family: "f"}, Select: []*yrdv1.SelectItem{{}}}, "select item 1 is empty"},
		{"no function", &yrdv1.Query{Source: &yrdv1.Query_Family{Family: "f"},
			Select: []*yrdv1.SelectItem{{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Column: "a"}}}}},
			"select item 1: unknown aggregate function"},
		{"sum(*)", &yrdv1.Query{Source: &yrdv1.Query_Family{Family: "f"},
			Select: []*yrdv1.SelectItem{{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM}}}}},
			"select item 1: sum needs a column"},
		{"star grouped", &yrdv1.Query{Source: &yrdv1.Query_Family{Family: "f"}, GroupBy: []string{"a"}}, "SELECT * with GROUP BY"},
	} {
		m, err := merge.Plan(tc.q)
		if err == nil {
			t.Errorf("%s: planned %v", tc.name, m)
			continue
		}
		if !errors.Is(err, merge.ErrNotMergeable) {
			t.Errorf("%s: %v does not wrap ErrNotMergeable", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to contain %q", tc.name, err, tc.want)
		}
	}
	_, err := merge.Plan(parse(t, "SELECT count(DISTINCT person_id) FROM fam"))
	if want := "merge: select item 1: count(DISTINCT person_id) cannot be merged exactly across cities (one value may be counted by several cities); query one city's dataset instead"; err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

func TestPlanKeepsACopy(t *testing.T) {
	q := parse(t, "SELECT district, avg(age) FROM fam WHERE age > 70 GROUP BY district ORDER BY 2 DESC LIMIT 3")
	m, err := merge.Plan(q)
	if err != nil {
		t.Fatal(err)
	}
	before := m.Partial("d")
	q.Select[0].Item = &yrdv1.SelectItem_Column{Column: "gender"}
	q.GroupBy[0] = "gender"
	q.Where.GetComparison().Column = "care_level"
	if after := m.Partial("d"); !proto.Equal(before, after) {
		t.Errorf("changing the query changed the plan:\n%v\n%v", sqlq.Format(before), sqlq.Format(after))
	}
}

// Partial and Columns may be called concurrently (run with -race).
func TestPartialConcurrent(t *testing.T) {
	m := plan(t, "SELECT district, count(*) AS n, avg(age) FROM fam GROUP BY district ORDER BY n DESC LIMIT 3")
	cols := []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("n", "BIGINT"), rc("__yrd_sum_3", "BIGINT"), rc("__yrd_count_3", "BIGINT")}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				p := m.Partial(datasetOf("city" + string(rune('a'+i))))
				p.Limit = 7
				if _, err := m.Columns(cols); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
