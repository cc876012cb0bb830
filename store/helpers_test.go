package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var (
	testCities = []string{
		"shanghai", "nanjing", "hangzhou", "hefei", "suzhou-js", "wuxi", "ningbo", "changzhou",
		"nantong", "jiaxing", "shaoxing", "wuhu", "yangzhou", "zhenjiang", "taizhou-js", "huzhou",
	}
	testSectors = []string{"transport", "health", "education", "environment", "finance", "civil-affairs"}
	testZh      = []string{"交通", "医疗", "教育", "环境", "人口", "养老", "水质", "空气", "公交", "地铁", "医院", "学校", "企业", "信用", "气象", "能源"}
	testEn      = []string{"Traffic", "Hospital", "School", "Air", "Water", "Bus", "Metro", "Pension", "Credit", "Energy", "Weather", "Population"}
)

// genDataset returns a deterministic, varied dataset number i.
func genDataset(i int) *yrdv1.Dataset {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	city := testCities[i%len(testCities)]
	zh1, zh2 := testZh[r.IntN(len(testZh))], testZh[r.IntN(len(testZh))]
	en := testEn[r.IntN(len(testEn))]
	tags := []string{zh1, testEn[r.IntN(len(testEn))]}
	if r.IntN(4) == 0 {
		tags = append(tags, "Open-Data")
	}
	now := timestamppb.New(time.Unix(1_750_000_000+int64(i), 0))
	return &yrdv1.Dataset{
		Id:               fmt.Sprintf("ds-%07d", i),
		OwnerCity:        city,
		OwnerOrg:         fmt.Sprintf("%s-bureau-%d", city, r.IntN(20)),
		Title:            fmt.Sprintf("%s%s统计 %s statistics %d", zh1, zh2, en, i),
		Description:      fmt.Sprintf("%s市%s数据，按月更新。Monthly %s records published by the %s bureau.", city, zh2, en, city),
		Tags:             tags,
		Sector:           testSectors[r.IntN(len(testSectors))],
		Level:            yrdv1.ClassificationLevel(1 + r.IntN(3)),
		StandardSchemaId: fmt.Sprintf("yrd.%s.v1", testEn[r.IntN(len(testEn))]),
		UpdateFrequency:  "monthly",
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			{Name: "district", Type: "VARCHAR"},
			{Name: "month", Type: "DATE"},
			{Name: "value", Type: "DOUBLE"},
		}},
		Version:   1,
		CreatedAt: now,
		UpdatedAt: now,
		Retired:   i%50 == 7,
	}
}

func openTestCatalog(t testing.TB, dir string) *Catalog {
	t.Helper()
	c, err := OpenCatalog(filepath.Join(dir, "catalog.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fill puts datasets 0..n-1 at the given index.
func fill(t testing.TB, c *Catalog, index uint64, n int) []*yrdv1.Dataset {
	t.Helper()
	all := make([]*yrdv1.Dataset, n)
	err := c.Update(index, func(tx *Tx) error {
		for i := range n {
			all[i] = genDataset(i)
			if err := tx.PutDataset(all[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func member(id, city string) *yrdv1.Member {
	return &yrdv1.Member{PeerId: id, City: city, Suffrage: yrdv1.Suffrage_SUFFRAGE_VOTER, ApiAddr: city + ":7443"}
}

func mustUpdate(t testing.TB, c *Catalog, index uint64, fn func(tx *Tx) error) {
	t.Helper()
	if err := c.Update(index, fn); err != nil {
		t.Fatal(err)
	}
}

// listAll pages through every match of f and fails on a duplicate or an
// out-of-order id.
func listAll(t testing.TB, c *Catalog, f ListFilter) []*yrdv1.Dataset {
	t.Helper()
	var out []*yrdv1.Dataset
	for page := 0; ; page++ {
		ds, next, err := c.ListDatasets(f)
		if err != nil {
			t.Fatal(err)
		}
		if next != "" && len(ds) != pageSizeOr100(f.PageSize) {
			t.Fatalf("page %d: %d results with a next page", page, len(ds))
		}
		for _, d := range ds {
			if len(out) > 0 && out[len(out)-1].GetId() >= d.GetId() {
				t.Fatalf("page %d: %q after %q", page, d.GetId(), out[len(out)-1].GetId())
			}
			out = append(out, d)
		}
		if next == "" {
			return out
		}
		f.PageToken = next
	}
}

func pageSizeOr100(n int) int {
	if n == 0 {
		return 100
	}
	return n
}

func sameDatasets(t testing.TB, got, want []*yrdv1.Dataset) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d datasets, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("dataset %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
