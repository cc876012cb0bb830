package cities

import (
	"regexp"
	"strings"
	"testing"
)

func TestAll(t *testing.T) {
	all := All()
	if len(all) != 41 {
		t.Fatalf("got %d cities, want 41", len(all))
	}
	if all[0].ID != "shanghai" {
		t.Errorf("first city is %q, want shanghai (file order)", all[0].ID)
	}
	provinces := map[string]int{}
	idRE := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	for _, c := range all {
		provinces[c.Province]++
		if !idRE.MatchString(c.ID) {
			t.Errorf("id %q is not a lowercase slug", c.ID)
		}
		// The delta lies roughly within 27–36°N, 114–123°E.
		if c.Lat < 27 || c.Lat > 36 || c.Lon < 114 || c.Lon > 123 {
			t.Errorf("%s: coordinates %v,%v outside the delta", c.ID, c.Lat, c.Lon)
		}
		if c.Name == "" || c.NameZh == "" {
			t.Errorf("%s: missing name", c.ID)
		}
	}
	want := map[string]int{"Shanghai": 1, "Jiangsu": 13, "Zhejiang": 11, "Anhui": 16}
	if len(provinces) != 4 {
		t.Errorf("got provinces %v, want 4", provinces)
	}
	for p, n := range want {
		if provinces[p] != n {
			t.Errorf("%s has %d cities, want %d", p, provinces[p], n)
		}
	}
}

func TestAllReturnsCopy(t *testing.T) {
	a := All()
	a[0].ID = "mutated"
	if All()[0].ID != "shanghai" {
		t.Fatal("All exposes internal slice")
	}
	ids := IDs()
	ids[0] = "mutated"
	if IDs()[0] != "shanghai" {
		t.Fatal("IDs exposes internal slice")
	}
}

func TestIDs(t *testing.T) {
	ids := IDs()
	all := All()
	if len(ids) != len(all) {
		t.Fatalf("len(IDs) = %d, len(All) = %d", len(ids), len(all))
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if id != all[i].ID {
			t.Errorf("IDs()[%d] = %q, All()[%d].ID = %q", i, id, i, all[i].ID)
		}
		if seen[id] {
			t.Errorf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestSameEnglishNames(t *testing.T) {
	for _, tc := range []struct {
		id, name, zh, province string
	}{
		{"suzhou-js", "Suzhou", "苏州", "Jiangsu"},
		{"suzhou-ah", "Suzhou", "宿州", "Anhui"},
		{"taizhou-js", "Taizhou", "泰州", "Jiangsu"},
		{"taizhou-zj", "Taizhou", "台州", "Zhejiang"},
	} {
		c, ok := Lookup(tc.id)
		if !ok {
			t.Errorf("Lookup(%q) not found", tc.id)
			continue
		}
		if c.ID != tc.id || c.Name != tc.name || c.NameZh != tc.zh || c.Province != tc.province {
			t.Errorf("Lookup(%q) = %+v, want %s %s %s", tc.id, c, tc.name, tc.zh, tc.province)
		}
	}
	for _, bare := range []string{"suzhou", "taizhou"} {
		if _, ok := Lookup(bare); ok {
			t.Errorf("Lookup(%q) found; the ambiguous name must not be an id", bare)
		}
	}
}

func TestLookup(t *testing.T) {
	c, ok := Lookup("shanghai")
	if !ok || c.NameZh != "上海" || c.Province != "Shanghai" || c.Lat != 31.23 || c.Lon != 121.47 {
		t.Errorf("Lookup(shanghai) = %+v, %v", c, ok)
	}
	for _, id := range []string{"", "beijing", "Shanghai", "shanghai "} {
		if c, ok := Lookup(id); ok {
			t.Errorf("Lookup(%q) = %+v, true; want false", id, c)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	const hdr = "id,name,name_zh,province,lat,lon\n"
	for name, in := range map[string]string{
		"empty":        "",
		"bad header":   "id,name,province,name_zh,lat,lon\nx,X,X,X,1,1\n",
		"no rows":      hdr,
		"short row":    hdr + "x,X,X,X,1\n",
		"long row":     hdr + "x,X,X,X,1,1,1\n",
		"empty id":     hdr + ",X,X,X,1,1\n",
		"empty name":   hdr + "x,,X,X,1,1\n",
		"bad lat":      hdr + "x,X,X,X,north,1\n",
		"lat range":    hdr + "x,X,X,X,91,1\n",
		"bad lon":      hdr + "x,X,X,X,1,\n",
		"duplicate id": hdr + "x,X,X,X,1,1\nx,Y,Y,Y,2,2\n",
		"bad quoting":  hdr + "x,\"X,X,X,1,1\n",
	} {
		if _, err := parse([]byte(in)); err == nil {
			t.Errorf("%s: parse succeeded, want error", name)
		}
	}
	if _, err := parse([]byte(hdr + "x,X,X,X,1.5,2\n")); err != nil {
		t.Errorf("minimal valid file: %v", err)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("mustParse of a malformed file did not panic")
		}
		if !strings.Contains(r.(string), "delta-cities.csv") {
			t.Errorf("panic %q does not name the file", r)
		}
	}()
	mustParse([]byte("id,name\nx,y\n"))
}

func TestEmbeddedParses(t *testing.T) {
	if _, err := parse(citiesCSV); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(citiesCSV), "id,") {
		t.Fatal("embedded file lacks header")
	}
}
