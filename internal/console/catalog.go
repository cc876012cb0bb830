package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// routeCatalog adds the catalog's search page, the dataset page and the
// access request a dataset page posts.
func (c *Console) routeCatalog(mux *http.ServeMux) {
	mux.HandleFunc("GET /catalog", c.withSession(c.catalogPage))
	mux.HandleFunc("GET /datasets/{id}", c.withSession(c.datasetPage))
	mux.HandleFunc("POST /datasets/{id}/request", c.withSession(c.requestAccess))
}

// catalogPageSizes are the page sizes the search form offers; the first
// is the default. The node allows up to 1000.
var catalogPageSizes = []int{50, 20, 100}

// catalogFilter is the search form's query string, field for field the
// ListDatasetsRequest it becomes.
type catalogFilter struct {
	City, Org, Sector, Level, Tag, Text, Family string
	Retired                                     bool
	Size                                        int
	Page                                        string // the node's page token
}

// parseCatalogFilter reads the query string. The words stay as typed: the
// node judges them. Only what cannot be put in the request at all (a level
// or page size that is no level or number) is refused here.
func parseCatalogFilter(q url.Values) (catalogFilter, string) {
	f := catalogFilter{City: q.Get("city"), Org: strings.TrimSpace(q.Get("org")), Sector: strings.TrimSpace(q.Get("sector")),
		Level: strings.ToLower(q.Get("level")), Tag: strings.TrimSpace(q.Get("tag")), Text: strings.TrimSpace(q.Get("text")),
		Family: strings.TrimSpace(q.Get("family")), Retired: q.Get("retired") == "1", Size: catalogPageSizes[0], Page: q.Get("page")}
	if _, ok := catalogLevelValue(f.Level); !ok {
		return f, "catalog.bad_level"
	}
	if s := q.Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return f, "catalog.bad_size"
		}
		f.Size = n
	}
	return f, ""
}

// catalogLevelValue is the level a filter word names; "" is any level.
func catalogLevelValue(word string) (yrdv1.ClassificationLevel, bool) {
	if word == "" {
		return yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED, true
	}
	v, ok := yrdv1.ClassificationLevel_value["LEVEL_"+strings.ToUpper(word)]
	return yrdv1.ClassificationLevel(v), ok
}

func (f catalogFilter) request() *yrdv1.ListDatasetsRequest {
	level, _ := catalogLevelValue(f.Level)
	return &yrdv1.ListDatasetsRequest{OwnerCity: f.City, OwnerOrg: f.Org, Sector: f.Sector, Level: level, Tag: f.Tag,
		Text: f.Text, StandardSchemaId: f.Family, IncludeRetired: f.Retired, PageSize: int32(f.Size), PageToken: f.Page}
}

// query is the filter as a query string, on page token page ("" for the
// first page).
func (f catalogFilter) query(page string) string {
	q := url.Values{}
	for k, v := range map[string]string{"city": f.City, "org": f.Org, "sector": f.Sector, "level": f.Level,
		"tag": f.Tag, "text": f.Text, "family": f.Family, "page": page} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Retired {
		q.Set("retired", "1")
	}
	if f.Size != catalogPageSizes[0] {
		q.Set("size", strconv.Itoa(f.Size))
	}
	return "/catalog?" + q.Encode()
}

// catalogView is the search page: the form as filled in, and one page of
// datasets as the node listed them.
type catalogView struct {
	Filter    catalogFilter
	Provinces []catalogProvince
	Levels    []catalogOption
	Sizes     []catalogOption
	Rows      []catalogRow
	Next      string // the next page's link, "" on the last page
	First     string // the first page's link, "" on the first page
}

type catalogProvince struct {
	Key    string
	Cities []catalogOption
}

type catalogOption struct {
	Value, Label, Key string // Label as is, or Key to translate
	Selected          bool
}

// catalogRow is one dataset in the results.
type catalogRow struct {
	ID, Title, City, CityName, Org, Sector string
	IDParts                                []string // the id split at its dots, where a narrow column may break it
	Level                                  catalogBadge
	PI                                     catalogPI
	Tags                                   []string
	Retired                                bool
}

// catalogBadge is a level badge: its CSS class and its words' key.
type catalogBadge struct{ Class, Key string }

// catalogPI says which personal-information kinds a dataset's columns
// carry (keys of their words) and which columns they are.
type catalogPI struct {
	Kinds   []string
	Columns string
}

func (c *Console) catalogPage(w http.ResponseWriter, r *http.Request, s *session) {
	f, bad := parseCatalogFilter(r.URL.Query())
	if bad != "" {
		c.refuse(w, r, s, http.StatusBadRequest, c.tr(r, bad))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.api.catalog.ListDatasets(s.creds.outgoing(ctx), f.request())
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	lang := language(r)
	v := catalogView{Filter: f, Provinces: catalogCities(f.City, lang), Levels: catalogLevels(f.Level), Sizes: catalogSizes(f.Size)}
	for _, d := range resp.GetDatasets() {
		v.Rows = append(v.Rows, catalogRow{ID: d.GetId(), IDParts: strings.Split(d.GetId(), "."), Title: d.GetTitle(), City: d.GetOwnerCity(),
			CityName: cityName(d.GetOwnerCity(), lang), Org: d.GetOwnerOrg(), Sector: d.GetSector(),
			Level: catalogLevel(d.GetLevel()), PI: personalInfoOf(d), Tags: d.GetTags(), Retired: d.GetRetired()})
	}
	if t := resp.GetNextPageToken(); t != "" {
		v.Next = f.query(t)
	}
	if f.Page != "" {
		v.First = f.query("")
	}
	c.page(w, r, s, "catalog", "catalog", v)
}

// catalogCities are the delta's cities for the city select, by province
// as the embedded list orders them, named in the page's language.
func catalogCities(selected, lang string) []catalogProvince {
	var out []catalogProvince
	for _, city := range cities.All() {
		key := "catalog.province." + strings.ToLower(city.Province)
		if len(out) == 0 || out[len(out)-1].Key != key {
			out = append(out, catalogProvince{Key: key})
		}
		p := &out[len(out)-1]
		p.Cities = append(p.Cities, catalogOption{Value: city.ID, Label: cityName(city.ID, lang), Selected: city.ID == selected})
	}
	return out
}

func catalogLevels(selected string) []catalogOption {
	out := []catalogOption{{Value: "", Key: "catalog.any_level"}}
	for _, w := range []string{"general", "important", "core"} {
		out = append(out, catalogOption{Value: w, Key: "catalog.level." + w, Selected: w == selected})
	}
	return out
}

func catalogSizes(selected int) []catalogOption {
	var out []catalogOption
	for _, n := range catalogPageSizes {
		out = append(out, catalogOption{Value: strconv.Itoa(n), Label: strconv.Itoa(n), Selected: n == selected})
	}
	return out
}

// catalogLevel is the badge of a classification level.
func catalogLevel(l yrdv1.ClassificationLevel) catalogBadge {
	switch l {
	case yrdv1.ClassificationLevel_LEVEL_GENERAL:
		return catalogBadge{"general", "catalog.level.general"}
	case yrdv1.ClassificationLevel_LEVEL_IMPORTANT:
		return catalogBadge{"important", "catalog.level.important"}
	case yrdv1.ClassificationLevel_LEVEL_CORE:
		return catalogBadge{"core", "catalog.level.core"}
	}
	return catalogBadge{"", "catalog.level.unspecified"}
}

// personalInfoOf lists the personal-information kinds among d's columns,
// from the least to the most protected, and the columns that carry one.
func personalInfoOf(d *yrdv1.Dataset) catalogPI {
	var pi catalogPI
	seen := map[yrdv1.PersonalInfo]bool{}
	var cols []string
	for _, col := range d.GetSchema().GetColumns() {
		if k := col.GetPersonalInfo(); k != yrdv1.PersonalInfo_PERSONAL_INFO_NONE {
			seen[k] = true
			cols = append(cols, col.GetName())
		}
	}
	for _, k := range []yrdv1.PersonalInfo{yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL, yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE,
		yrdv1.PersonalInfo_PERSONAL_INFO_UNSPECIFIED} {
		if seen[k] {
			pi.Kinds = append(pi.Kinds, personalInfoKey(k))
		}
	}
	pi.Columns = strings.Join(cols, ", ")
	return pi
}

func personalInfoKey(k yrdv1.PersonalInfo) string {
	switch k {
	case yrdv1.PersonalInfo_PERSONAL_INFO_NONE:
		return "catalog.pi.none"
	case yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL:
		return "catalog.pi.personal"
	case yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE:
		return "catalog.pi.sensitive"
	}
	return "catalog.pi.unspecified"
}
