package sample_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"google.golang.org/protobuf/proto"
)

func TestDatasetsValid(t *testing.T) {
	ds := sample.Datasets()
	if len(ds) < 7 || len(ds) > 9 {
		t.Errorf("got %d datasets, want 7–9", len(ds))
	}
	ids := map[string]bool{}
	for _, d := range ds {
		before := proto.Clone(d)
		if err := catalogspec.Validate(d); err != nil {
			t.Errorf("%s: %v", d.GetId(), err)
		}
		// Samples are already in normal form, so Validate changes nothing.
		if !proto.Equal(before, d) {
			t.Errorf("%s: Validate normalised the sample; write it in normal form", d.GetId())
		}
		if ids[d.GetId()] {
			t.Errorf("duplicate id %s", d.GetId())
		}
		ids[d.GetId()] = true
		if !strings.HasPrefix(d.GetId(), d.GetOwnerCity()+".") {
			t.Errorf("%s: id does not start with owner city %s", d.GetId(), d.GetOwnerCity())
		}
		if d.GetDataRights().GetHolder() == "" || len(d.GetPermittedPurposes()) == 0 {
			t.Errorf("%s: holder or purposes missing", d.GetId())
		}
	}
	if !slices.IsSortedFunc(ds, func(a, b *yrdv1.Dataset) int { return strings.Compare(a.GetId(), b.GetId()) }) {
		t.Error("datasets not ordered by id")
	}
}

// TestCoverage checks the variety that tests of listing and access rules
// rely on.
func TestCoverage(t *testing.T) {
	cities := map[string]bool{}
	levels := map[yrdv1.ClassificationLevel]bool{}
	var crossBorder, sensitiveDirect int
	var elderly []string
	for _, d := range sample.Datasets() {
		cities[d.GetOwnerCity()] = true
		levels[d.GetLevel()] = true
		if d.GetCrossBorderEligible() {
			crossBorder++
		}
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			elderly = append(elderly, d.GetOwnerCity())
		}
		for _, c := range d.GetSchema().GetColumns() {
			if c.GetPersonalInfo() == yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE && c.GetIdentifierRole() == yrdv1.IdentifierRole_IDENTIFIER_DIRECT {
				sensitiveDirect++
			}
		}
	}
	for _, c := range []string{"shanghai", "hangzhou", "nanjing"} {
		if !cities[c] {
			t.Errorf("no dataset owned by %s", c)
		}
	}
	if len(levels) != 3 {
		t.Errorf("levels %v, want GENERAL, IMPORTANT and CORE", levels)
	}
	if crossBorder == 0 || sensitiveDirect == 0 {
		t.Errorf("cross-border datasets %d, sensitive direct identifiers %d; want some of each", crossBorder, sensitiveDirect)
	}
	slices.Sort(elderly)
	if !slices.Equal(elderly, []string{"hangzhou", "nanjing", "shanghai"}) {
		t.Errorf("elderly population datasets for %v, want hangzhou, nanjing, shanghai", elderly)
	}
}

func TestDatasetsFreshCopies(t *testing.T) {
	a := sample.Datasets()
	a[0].Title = "changed"
	a[0].Schema.Columns[0].Name = "changed"
	a[0].Tags[0] = "changed"
	b := sample.Datasets()
	if b[0].Title == "changed" || b[0].Schema.Columns[0].Name == "changed" || b[0].Tags[0] == "changed" {
		t.Fatal("Datasets shares state between calls")
	}
	// The three elderly datasets share a schema but not its columns.
	var elderly []*yrdv1.Dataset
	for _, d := range b {
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			elderly = append(elderly, d)
		}
	}
	elderly[0].Schema.Columns[1].Name = "changed"
	if elderly[1].Schema.Columns[1].Name == "changed" {
		t.Fatal("elderly datasets share column values")
	}
}
