package connector

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// suiteIndividualsColumn: Options.Individuals appends the distinct
// individuals of each group, equal to what the generator wrote; without
// it the result is unchanged.
func suiteIndividualsColumn(t *testing.T, e engineUnderTest) {
	d := e.d
	people := map[string]map[any]bool{}
	for _, r := range generated(t, d, testRows) {
		k := fmt.Sprint(r["district"])
		if people[k] == nil {
			people[k] = map[any]bool{}
		}
		people[k][r["person_id"]] = true
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
	q.GroupBy = []string{"district"}
	dec := decision(d, aggs, nil)
	dec.MinGroupSize = 2
	names, rows := runPlan(t, e, d.GetId(), q, dec, Options{Individuals: true})
	if !slices.Equal(names, []string{"district", "n", IndividualsColumn}) {
		t.Fatalf("columns %v", names)
	}
	for _, r := range rows {
		if got, want := fmt.Sprint(r[2]), fmt.Sprint(len(people[fmt.Sprint(r[0])])); got != want {
			t.Errorf("district %v: %s individuals, want %s", r[0], got, want)
		}
	}
	names, _ = runPlan(t, e, d.GetId(), q, dec, Options{})
	if slices.Contains(names, IndividualsColumn) {
		t.Errorf("individuals column without the option: %v", names)
	}
}

// suiteSumBoundClampsEveryRow: with a sum bound, every value counts at most
// the bound, so one row moves a sum by at most that much.
func suiteSumBoundClampsEveryRow(t *testing.T, e engineUnderTest) {
	d := e.d
	const bound = 70
	var want float64
	for _, r := range generated(t, d, testRows) {
		if a, ok := r["age"].(int64); ok {
			want += float64(min(a, bound))
		}
	}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, "age", "s")}
	dec := decision(d, aggs, nil)
	dec.MinGroupSize = 2
	_, rows := runPlan(t, e, d.GetId(), q, dec, Options{SumBound: bound})
	if len(rows) != 1 || fmt.Sprint(rows[0][0]) != fmt.Sprint(want) {
		t.Fatalf("clamped sum = %v, want %v", rows, want)
	}
}

// suitePersonKeys: Options.PersonKeys lists the distinct person keys the
// query's filter reads.
func suitePersonKeys(t *testing.T, e engineUnderTest) {
	d := e.d
	gen := generated(t, d, testRows)
	district := fmt.Sprint(gen[0]["district"])
	var want []string
	seen := map[string]bool{}
	for _, r := range gen {
		if fmt.Sprint(r["district"]) == district && r["person_id"] != nil && !seen[fmt.Sprint(r["person_id"])] {
			seen[fmt.Sprint(r["person_id"])] = true
			want = append(want, fmt.Sprint(r["person_id"]))
		}
	}
	sort.Strings(want)
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("district")}
	q.Where = eqString("district", district)
	dec := decision(d, rows, nil)
	dec.RowCap = 10
	_, got := runPlan(t, e, d.GetId(), q, dec, Options{PersonKeys: true})
	var keys []string
	for _, r := range got {
		keys = append(keys, fmt.Sprint(r[0]))
	}
	sort.Strings(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("%d person keys, want %d (row cap must not apply: it counts who the query reads)", len(keys), len(want))
	}
}

// TestGroupSizeWithoutPersonalInformation: a dataset with no personal
// information (enterprises) is k-suppressed on rows, each row one entity;
// one with personal information but no DIRECT identifier is refused, since
// its individuals cannot be counted.
func TestGroupSizeWithoutPersonalInformation(t *testing.T) {
	d := elderly(t)
	ent := clone(d)
	for _, c := range ent.GetSchema().GetColumns() {
		c.PersonalInfo, c.IdentifierRole = yrdv1.PersonalInfo_PERSONAL_INFO_NONE, yrdv1.IdentifierRole_IDENTIFIER_NONE
	}
	q := onDataset(ent)
	q.Select = []*yrdv1.SelectItem{col("district"), agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "", "n")}
	q.GroupBy = []string{"district"}
	dec := decision(ent, aggs, nil)
	dec.MinGroupSize = 300
	sql, _, err := CompileWith(ent, q, dec, Options{Individuals: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, "HAVING count(*) >= ?") || !strings.Contains(sql, "count(*) AS \""+IndividualsColumn+"\"") {
		t.Errorf("rows are not the entities of k: %s", sql)
	}
	noKey := clone(d)
	for _, c := range noKey.GetSchema().GetColumns() {
		if c.GetIdentifierRole() == yrdv1.IdentifierRole_IDENTIFIER_DIRECT {
			c.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_QUASI
		}
	}
	q.Source = &yrdv1.Query_DatasetId{DatasetId: noKey.GetId()}
	if _, _, err := CompileWith(noKey, q, decision(noKey, aggs, nil), Options{}); err == nil || !strings.Contains(err.Error(), "no DIRECT identifier") {
		t.Errorf("personal dataset without a person key: %v, want a refusal naming the missing DIRECT identifier", err)
	}
}
