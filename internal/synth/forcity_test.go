package synth

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func sameColumns(a, b []*yrdv1.Column) bool {
	return slices.EqualFunc(a, b, func(x, y *yrdv1.Column) bool {
		return x.GetName() == y.GetName() && x.GetType() == y.GetType() &&
			x.GetPersonalInfo() == y.GetPersonalInfo() && x.GetIdentifierRole() == y.GetIdentifierRole() &&
			x.GetDescription() == y.GetDescription()
	})
}

func TestForCity(t *testing.T) {
	want := elderlyOf(t, "shanghai").GetSchema().GetColumns()
	owned := map[string]int{}
	for _, d := range sample.Datasets() {
		owned[d.GetOwnerCity()]++
	}
	ids := map[string]bool{}
	for _, c := range cities.All() {
		ds := ForCity(c.ID)
		if n := max(owned[c.ID], 1); len(ds) != n {
			t.Errorf("%s: %d datasets, want %d", c.ID, len(ds), n)
		}
		if !slices.IsSortedFunc(ds, func(a, b *yrdv1.Dataset) int { return strings.Compare(a.GetId(), b.GetId()) }) {
			t.Errorf("%s: datasets not ordered by id", c.ID)
		}
		var elderly int
		for _, d := range ds {
			if err := catalogspec.Validate(d); err != nil {
				t.Errorf("%s: %v", d.GetId(), err)
			}
			if d.GetOwnerCity() != c.ID || ids[d.GetId()] {
				t.Errorf("%s: owner %s, or id repeated", d.GetId(), d.GetOwnerCity())
			}
			ids[d.GetId()] = true
			if d.GetStandardSchemaId() != sample.ElderlyPopulationSchemaID {
				continue
			}
			elderly++
			if d.GetId() != c.ID+".civil-affairs.elderly-population" || !sameColumns(d.GetSchema().GetColumns(), want) {
				t.Errorf("%s: elderly dataset %s does not have the family's id form and schema", c.ID, d.GetId())
			}
			if owned[c.ID] == 0 && d.GetOwnerOrg() != c.ID+"-civil-affairs" {
				t.Errorf("%s: owner org %s", d.GetId(), d.GetOwnerOrg())
			}
			if err := WriteCSV(io.Discard, d, 100, 1); err != nil {
				t.Errorf("%s: %v", d.GetId(), err)
			}
		}
		if elderly != 1 {
			t.Errorf("%s: %d elderly datasets, want 1", c.ID, elderly)
		}
	}
	if len(ids) != 41+len(sample.Datasets())-3 {
		t.Errorf("%d datasets over all cities", len(ids))
	}
	for _, bad := range []string{"", "beijing", "suzhou", "Shanghai"} {
		if ds := ForCity(bad); ds != nil {
			t.Errorf("ForCity(%q) = %d datasets, want nil", bad, len(ds))
		}
	}
	// Fresh copies: changing one call's result does not leak into the next.
	ForCity("wuxi")[0].Schema.Columns[0].Name = "mutated"
	if ForCity("wuxi")[0].GetSchema().GetColumns()[0].GetName() != "person_id" {
		t.Error("ForCity returns shared datasets")
	}
}

// TestFanOut is the shape of the five-city benchmark: the same query over
// the elderly tables of any five cities sees five disjoint populations.
func TestFanOut(t *testing.T) {
	seen := map[string]bool{}
	for _, city := range []string{"wuxi", "ningbo", "hefei", "huangshan", "taizhou-zj"} {
		tb := genTable(t, elderlyOf(t, city), 5000, 1)
		for _, id := range tb.col("person_id") {
			if seen[id] {
				t.Fatalf("%s: person_id %s seen in another city", city, id)
			}
			seen[id] = true
		}
		for _, d := range tb.col("district") {
			if d != "" && !strings.HasPrefix(d, city+"-district-") {
				t.Fatalf("%s: district %s", city, d)
			}
		}
	}
}
