package synth

import (
	"slices"
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// ForCity returns the datasets city holds in a federated demo, ordered by
// id: the sample datasets it owns, and for every delta city an elderly
// population dataset of the shared family (yrd.elderly-population.v1), so a
// fan-out over any cities has one table of the same schema on each. It
// returns nil for an id that is not a delta city. Each call returns fresh
// copies.
func ForCity(city string) []*yrdv1.Dataset {
	c, ok := cities.Lookup(city)
	if !ok {
		return nil
	}
	var out []*yrdv1.Dataset
	var template *yrdv1.Dataset
	for _, d := range sample.Datasets() {
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID && template == nil {
			template = d
		}
		if d.GetOwnerCity() == city {
			out = append(out, d)
		}
	}
	if !slices.ContainsFunc(out, isElderly) && template != nil {
		out = append(out, elderlyFor(c, template))
	}
	slices.SortFunc(out, func(a, b *yrdv1.Dataset) int { return strings.Compare(a.GetId(), b.GetId()) })
	return out
}

func isElderly(d *yrdv1.Dataset) bool {
	return d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID
}

// elderlyFor is template (a sample elderly dataset, a fresh copy) re-owned
// by c's civil affairs bureau. Taking the schema from the sample rather
// than restating it keeps the family one schema if the sample changes.
func elderlyFor(c cities.City, template *yrdv1.Dataset) *yrdv1.Dataset {
	d := template
	d.Id = c.ID + ".civil-affairs.elderly-population"
	d.OwnerCity = c.ID
	d.OwnerOrg = c.ID + "-civil-affairs"
	d.Title = c.NameZh + "市老年人口 " + c.Name + " elderly population"
	d.DataRights = &yrdv1.DataRights{
		Holder:             c.NameZh + "市民政局 " + c.Name + " Civil Affairs Bureau",
		ProcessingUseRight: true,
	}
	return d
}
