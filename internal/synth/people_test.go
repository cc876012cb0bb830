package synth

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestPersonIDsUniqueAndDisjoint(t *testing.T) {
	const rows = 100000
	owner := map[string]string{}
	for _, city := range []string{"shanghai", "hangzhou", "nanjing", "suzhou-js", "suzhou-ah"} {
		ids := genTable(t, elderlyOf(t, city), rows, 5).col("person_id")
		for i, id := range ids {
			if other, dup := owner[id]; dup {
				t.Fatalf("%s row %d: person_id %s already used in %s", city, i, id, other)
			}
			owner[id] = city
		}
		// PersonID names the same people: elderly row i is resident 4i.
		for _, i := range []int{0, 1, 999, rows - 1} {
			if got := PersonID(city, 5, elderlyEvery*i); got != ids[i] {
				t.Errorf("%s: PersonID(resident %d) = %s, row %d has %s", city, elderlyEvery*i, got, i, ids[i])
			}
		}
	}
	// Stable for a seed, different under another.
	d := elderlyOf(t, "nanjing")
	a, b := genTable(t, d, 100, 5).col("person_id"), genTable(t, d, 100, 6).col("person_id")
	if !slices.Equal(a, genTable(t, d, 100, 5).col("person_id")) || slices.Equal(a, b) {
		t.Error("person ids are not a function of the seed")
	}
	// Row i is the same person however many rows are generated.
	if long := genTable(t, d, 1000, 5).col("person_id"); !slices.Equal(a, long[:100]) {
		t.Error("person ids of the first rows depend on the row count")
	}
}

// TestHospitalPatientsAreResidents checks the cross-dataset property that
// joins rely on: every patient aged 60+ at the visit is in the city's
// elderly dataset, with the same sex and a consistent age; younger
// patients are not; and patients recur, so distinct counts are smaller
// than row counts.
func TestHospitalPatientsAreResidents(t *testing.T) {
	const visits = 40000
	hv := genTable(t, sampleDataset(t, "nanjing.health.hospital-visits"), visits, 11, WithNullRate(0))
	el := genTable(t, sampleDataset(t, "nanjing.civil-affairs.elderly-population"), ElderlyRowsFor(visits), 11, WithNullRate(0))
	type person struct {
		age    int
		gender string
	}
	elderly := map[string]person{}
	ages, genders := el.col("age"), el.col("gender")
	for i, id := range el.col("person_id") {
		a, _ := strconv.Atoi(ages[i])
		elderly[id] = person{a, genders[i]}
	}
	patients := map[string]bool{}
	var joined int
	vAges, vGenders := hv.col("age"), hv.col("gender")
	for i, id := range hv.col("patient_id") {
		patients[id] = true
		age, _ := strconv.Atoi(vAges[i])
		p, ok := elderly[id]
		switch {
		case age >= 60 && !ok:
			t.Fatalf("visit %d: patient %s aged %d is not in the elderly dataset", i, id, age)
		case age < 59 && ok:
			t.Fatalf("visit %d: patient %s aged %d is in the elderly dataset", i, id, age)
		case ok:
			joined++
			if p.gender != vGenders[i] || p.age < age || p.age > age+1 {
				t.Fatalf("visit %d: patient %s is %s aged %d, elderly row says %s aged %d", i, id, vGenders[i], age, p.gender, p.age)
			}
		}
	}
	if share := float64(joined) / visits; share < 0.3 || share > 0.5 {
		t.Errorf("%.2f of visits by elderly residents, want about 0.4", share)
	}
	if n := len(patients); n > visits*9/10 || n < visits/5 {
		t.Errorf("%d distinct patients in %d visits; want people to recur", n, visits)
	}
	// Other cities' datasets never name Nanjing's residents.
	for _, id := range genTable(t, elderlyOf(t, "hangzhou"), 10000, 11).col("person_id") {
		if patients[id] {
			t.Fatalf("Hangzhou person %s is a Nanjing patient", id)
		}
	}
}

var citizenIDRE = regexp.MustCompile(`^\d{17}[\dX]$`)

// TestRegistry checks identity card numbers (unique, well-formed, agreeing
// with birth date, sex and district) and that registry row i is the same
// person as resident i elsewhere.
func TestRegistry(t *testing.T) {
	const rows = 100000
	d := sampleDataset(t, "shanghai.public-security.household-registry")
	tb := genTable(t, d, rows, 2, WithNullRate(0))
	seen := map[string]bool{}
	births, genders, districts, regs := tb.col("birth_date"), tb.col("gender"), tb.col("district"), tb.col("registered_on")
	codes := map[string]string{}
	for _, s := range knownDistricts["shanghai"] {
		codes[s.name] = s.code
	}
	for i, id := range tb.col("citizen_id") {
		if seen[id] {
			t.Fatalf("row %d: duplicate citizen_id %s", i, id)
		}
		seen[id] = true
		if !citizenIDRE.MatchString(id) || citizenCheck([]byte(id)) != id[17] {
			t.Fatalf("row %d: malformed citizen_id %s", i, id)
		}
		if id[6:14] != strings.ReplaceAll(births[i], "-", "") || id[:6] != codes[districts[i]] {
			t.Fatalf("row %d: citizen_id %s disagrees with birth %s, district %s", i, id, births[i], districts[i])
		}
		if male := (id[16]-'0')%2 == 1; male != (genders[i] == "M") {
			t.Fatalf("row %d: citizen_id %s disagrees with gender %s", i, id, genders[i])
		}
		if regs[i] < births[i] || regs[i] > "2025-06-30" {
			t.Fatalf("row %d: registered %s, born %s", i, regs[i], births[i])
		}
	}
	// Resident 4 is elderly row 1 in the same city and seed.
	el := genTable(t, elderlyOf(t, "shanghai"), 2, 2, WithNullRate(0))
	if el.col("district")[1] != districts[4] || el.col("gender")[1] != genders[4] {
		t.Errorf("registry row 4 (%s %s) is not elderly row 1 (%s %s)", districts[4], genders[4], el.col("district")[1], el.col("gender")[1])
	}
}

// TestBirthTableSlots checks the indexed search against a linear one and
// that capacities respect the three-digit sequence number.
func TestBirthTableSlots(t *testing.T) {
	for _, bt := range []*birthTable{elderlyBirths(), youngBirths()} {
		r := rng{s: 1}
		for range 20000 {
			j := uint64(r.intn(int(bt.total())))
			day, seq := bt.slot(j)
			// The last day whose first slot is at or before j.
			want := sort.Search(len(bt.cum), func(d int) bool { return uint64(bt.cum[d]) > j }) - 1
			if day != int64(want) || seq != j-uint64(bt.cum[want]) || seq >= 1000 {
				t.Fatalf("slot(%d) = %d, %d; want day %d", j, day, seq, want)
			}
		}
		if bt.total() < 4_000_000 {
			t.Errorf("capacity %d, want millions", bt.total())
		}
	}
}

func TestPermuteIsBijection(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 10, 31, 64, 1000, 4097} {
		for key := range uint64(3) {
			seen := make([]bool, n)
			for x := range n {
				y := permute(x, n, mix64(key))
				if y >= n || seen[y] {
					t.Fatalf("permute(%d, %d) = %d: out of range or repeated", x, n, y)
				}
				seen[y] = true
			}
		}
	}
}
