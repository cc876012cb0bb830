package store

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// oracle is an independent, brute-force statement of the ListFilter rules.
func oracle(all []*yrdv1.Dataset, f ListFilter) []*yrdv1.Dataset {
	var out []*yrdv1.Dataset
	eq := func(filter, v string) bool { return filter == "" || strings.EqualFold(filter, v) }
	for _, d := range all {
		if (d.Retired && !f.IncludeRetired) || !eq(f.OwnerCity, d.OwnerCity) || !eq(f.OwnerOrg, d.OwnerOrg) ||
			!eq(f.Sector, d.Sector) || !eq(f.StandardSchemaID, d.StandardSchemaId) ||
			(f.Level != 0 && f.Level != d.Level) ||
			(f.Tag != "" && !slices.ContainsFunc(d.Tags, func(t string) bool { return strings.EqualFold(t, f.Tag) })) {
			continue
		}
		text := true
		for _, w := range strings.Fields(strings.ToLower(f.Text)) {
			in := func(s string) bool { return strings.Contains(strings.ToLower(s), w) }
			text = text && (in(d.Title) || in(d.Description) || slices.ContainsFunc(d.Tags, in))
		}
		if text {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *yrdv1.Dataset) int { return strings.Compare(a.Id, b.Id) })
	return out
}

func TestListDatasetsEveryFilterFieldMatchesOracle(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	all := fill(t, c, 1, 2500)
	cases := map[string]ListFilter{
		"none":                 {},
		"owner city":           {OwnerCity: "hangzhou"},
		"owner city case":      {OwnerCity: "HangZhou"},
		"owner org":            {OwnerOrg: "Ningbo-Bureau-3"},
		"sector":               {Sector: "health"},
		"level":                {Level: yrdv1.ClassificationLevel_LEVEL_CORE},
		"tag":                  {Tag: "open-data"},
		"tag zh":               {Tag: "养老"},
		"standard schema id":   {StandardSchemaID: "YRD.Metro.v1"},
		"text":                 {Text: "metro"},
		"text two words":       {Text: "  PENSION\t水质 "},
		"text matches tag":     {Text: "open-data"},
		"include retired":      {IncludeRetired: true},
		"city level retired":   {OwnerCity: "shanghai", Level: yrdv1.ClassificationLevel_LEVEL_IMPORTANT, IncludeRetired: true},
		"city sector tag text": {OwnerCity: "wuxi", Sector: "finance", Tag: "交通", Text: "统计"},
		"unknown value":        {OwnerCity: "beijing"},
		"no text match":        {Text: "nothing-matches-this"},
		"page size 7":          {Sector: "education", PageSize: 7},
		"page size 1000":       {PageSize: 1000, IncludeRetired: true},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			got := listAll(t, c, f)
			want := oracle(all, f)
			sameDatasets(t, got, want)
			if name != "unknown value" && name != "no text match" && len(want) == 0 {
				t.Fatal("filter matches nothing; the case tests nothing")
			}
		})
	}
}

func TestListDatasetsPaging2500YieldsEachOnceInIDOrder(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	all := fill(t, c, 1, 2500)
	got := listAll(t, c, ListFilter{PageSize: 100, IncludeRetired: true})
	sameDatasets(t, got, oracle(all, ListFilter{IncludeRetired: true}))
	if len(got) != 2500 {
		t.Fatalf("paged %d datasets, want 2500", len(got))
	}
	// The last page ends without a token.
	page, next, err := c.ListDatasets(ListFilter{PageSize: 2500 % 1000, IncludeRetired: true, PageToken: encodePageToken(got[1999].Id)})
	if err != nil || len(page) != 500 || next != "" {
		t.Fatalf("last page: %d datasets, next %q, %v", len(page), next, err)
	}
}

func TestListDatasetsExcludesRetiredByDefault(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	d := genDataset(1)
	mustUpdate(t, c, 1, func(tx *Tx) error { return tx.PutDataset(d) })
	retired := proto.Clone(d).(*yrdv1.Dataset)
	retired.Retired, retired.Version = true, 2
	mustUpdate(t, c, 2, func(tx *Tx) error { return tx.PutDataset(retired) })
	if ds, _, _ := c.ListDatasets(ListFilter{OwnerCity: d.OwnerCity}); len(ds) != 0 {
		t.Fatalf("retired dataset listed: %v", ds)
	}
	if ds, _, _ := c.ListDatasets(ListFilter{OwnerCity: d.OwnerCity, IncludeRetired: true}); len(ds) != 1 || !ds[0].Retired {
		t.Fatalf("IncludeRetired: %v", ds)
	}
	if got, ok := c.GetDataset(d.Id); !ok || !got.Retired {
		t.Fatal("GetDataset must still return a retired dataset")
	}
}

func TestListDatasetsFollowsUpdatesBetweenPostingLists(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	d := genDataset(3)
	d.OwnerCity, d.Tags = "hefei", []string{"a", "b"}
	mustUpdate(t, c, 1, func(tx *Tx) error { return tx.PutDataset(d) })
	moved := proto.Clone(d).(*yrdv1.Dataset)
	moved.OwnerCity, moved.Tags = "wuhu", []string{"b", "c"}
	mustUpdate(t, c, 2, func(tx *Tx) error { return tx.PutDataset(moved) })
	for f, want := range map[ListFilter]int{
		{OwnerCity: "hefei"}: 0, {OwnerCity: "wuhu"}: 1, {Tag: "a"}: 0, {Tag: "b"}: 1, {Tag: "c"}: 1,
	} {
		ds, _, _ := c.ListDatasets(f)
		if len(ds) != want || (want == 1 && !proto.Equal(ds[0], moved)) {
			t.Errorf("%+v: %v", f, ds)
		}
	}
}

func TestListDatasetsRejectsBadPageToken(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	fill(t, c, 1, 10)
	for _, tok := range []string{"!!!not base64", "a+b/", "="} {
		if _, _, err := c.ListDatasets(ListFilter{PageToken: tok}); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("token %q: err %v, want ErrInvalidPageToken", tok, err)
		}
	}
}

func TestListDatasetsPageSizeOver1000IsAnError(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	fill(t, c, 1, 3)
	for _, n := range []int{1001, -1} {
		if _, _, err := c.ListDatasets(ListFilter{PageSize: n}); err == nil {
			t.Errorf("page size %d accepted", n)
		}
	}
	if ds, _, err := c.ListDatasets(ListFilter{PageSize: 1000, IncludeRetired: true}); err != nil || len(ds) != 3 {
		t.Fatalf("page size 1000: %d, %v", len(ds), err)
	}
}

func TestListDatasetsChineseFreeTextSearch(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	ds := []*yrdv1.Dataset{
		{Id: "a", OwnerCity: "shanghai", Title: "上海市养老机构床位统计", Description: "按区统计的养老床位数"},
		{Id: "b", OwnerCity: "suzhou-js", Title: "苏州地铁客流", Description: "Metro ridership by station", Tags: []string{"公共交通"}},
		{Id: "c", OwnerCity: "hangzhou", Title: "杭州市学校名录", Tags: []string{"教育", "Open-Data"}},
	}
	mustUpdate(t, c, 1, func(tx *Tx) error {
		for _, d := range ds {
			if err := tx.PutDataset(d); err != nil {
				return err
			}
		}
		return nil
	})
	for text, want := range map[string][]string{
		"养老":        {"a"},
		"养老 床位":     {"a"},
		"床位　养老":     {"a"}, // ideographic space separates words too
		"养老 学校":     nil,
		"交通":        {"b"},
		"METRO 客流":  {"b"},
		"教育 open":   {"c"},
		"市":         {"a", "c"},
		"上海市养老机构床位": {"a"},
	} {
		got, _, err := c.ListDatasets(ListFilter{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range got {
			ids = append(ids, d.Id)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("text %q: got %v, want %v", text, ids, want)
		}
	}
}

// The text signature may only ever rule out datasets that cannot match: any
// substring of a dataset's text must pass it.
func TestTextSignatureHasNoFalseNegatives(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 500 {
		e := newEntry(genDataset(i))
		words := strings.Fields(e.hay)
		for range 20 {
			w := []rune(words[r.IntN(len(words))])
			from := r.IntN(len(w))
			to := from + 1 + r.IntN(len(w)-from)
			var q textSig
			q.add(string(w[from:to]))
			if !e.sig.contains(&q) {
				t.Fatalf("dataset %d: signature rejects %q, a substring of its text", i, string(w[from:to]))
			}
		}
	}
	// And it does reject: a word absent from every generated dataset.
	var q textSig
	q.add("xylophone")
	rejected := 0
	for i := range 500 {
		if e := newEntry(genDataset(i)); !e.sig.contains(&q) {
			rejected++
		}
	}
	if rejected < 450 {
		t.Fatalf("signature rejected only %d of 500 non-matching datasets", rejected)
	}
}
