package synth

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestElderlyDistribution(t *testing.T) {
	const rows = 100000
	for _, city := range []string{"shanghai", "hangzhou", "nanjing", "wuhu"} {
		tb := genTable(t, elderlyOf(t, city), rows, 3)
		districts := Districts(city)
		var n, sixties, eighties, sum, alone, cared, women int
		perDistrict := map[string]int{}
		levels := map[int]int{}
		ages, genders, livings, cares := tb.col("age"), tb.col("gender"), tb.col("living_alone"), tb.col("care_level")
		for i, d := range tb.col("district") {
			if d != "" {
				if !slices.Contains(districts, d) {
					t.Fatalf("%s: district %q not in %v", city, d, districts)
				}
				perDistrict[d]++
			}
			if ages[i] != "" {
				a := atoiT(t, ages[i])
				if a < 60 || a > 100 {
					t.Fatalf("%s: age %d", city, a)
				}
				n++
				sum += a
				if a < 70 {
					sixties++
				}
				if a >= 80 {
					eighties++
				}
			}
			if g := genders[i]; g != "" && g != "M" && g != "F" {
				t.Fatalf("%s: gender %q", city, g)
			} else if g == "F" {
				women++
			}
			if livings[i] == "true" {
				alone++
			}
			if cares[i] != "" {
				l := atoiT(t, cares[i])
				if l < 0 || l > 6 {
					t.Fatalf("%s: care level %d", city, l)
				}
				levels[l]++
				if l > 0 {
					cared++
				}
			}
		}
		mean := float64(sum) / float64(n)
		check := func(what string, got, lo, hi float64) {
			if got < lo || got > hi {
				t.Errorf("%s: %s = %.3f, want %v–%v", city, what, got, lo, hi)
			}
		}
		check("mean age", mean, 68, 73)
		check("share aged 60–69", float64(sixties)/float64(n), 0.5, 0.65)
		check("share aged 80+", float64(eighties)/float64(n), 0.1, 0.2)
		check("share of women", float64(women)/rows, 0.45, 0.52)
		check("share living alone", float64(alone)/rows, 0.1, 0.3)
		check("share with a care level", float64(cared)/rows, 0.05, 0.3)
		if len(perDistrict) != len(districts) || len(levels) < 5 {
			t.Errorf("%s: %d of %d districts, care levels %v", city, len(perDistrict), len(districts), levels)
		}
	}
	if d := Districts("shanghai"); len(d) != 16 || !slices.Contains(d, "浦东新区") || !slices.Contains(d, "黄浦区") {
		t.Errorf("Shanghai districts %v", d)
	}
	if d := Districts("wuhu"); len(d) < 6 || d[0] != "wuhu-district-1" {
		t.Errorf("Wuhu districts %v", d)
	}
}

var icd10RE = regexp.MustCompile(`^[A-Z]\d\d(\.\d)?$`)

func TestHospitalVisits(t *testing.T) {
	tb := genTable(t, sampleDataset(t, "nanjing.health.hospital-visits"), 50000, 4, WithNullRate(0))
	ages, genders, depts, diags, costs, dates := tb.col("age"), tb.col("gender"), tb.col("department"), tb.col("diagnosis"), tb.col("cost"), tb.col("visit_date")
	ids := map[string]bool{}
	for i, id := range tb.col("visit_id") {
		if ids[id] {
			t.Fatalf("duplicate visit_id %s", id)
		}
		ids[id] = true
		a := atoiT(t, ages[i])
		switch {
		case a < 0 || a > 100:
			t.Fatalf("age %d", a)
		case depts[i] == "儿科" && a >= 14, depts[i] == "妇产科" && genders[i] != "F":
			t.Fatalf("a %d-year-old %s in %s", a, genders[i], depts[i])
		case !icd10RE.MatchString(diags[i]):
			t.Fatalf("diagnosis %q", diags[i])
		case diags[i] == "H25.9" && a < 50, diags[i] == "Z34.9" && a > 48:
			t.Fatalf("%s at age %d", diags[i], a)
		case dates[i] < "2024-07-01" || dates[i] > "2025-06-30":
			t.Fatalf("visit date %s", dates[i])
		}
		if c, _ := strconv.ParseFloat(costs[i], 64); c < 8 || c > 100000 {
			t.Fatalf("cost %v", c)
		}
	}
}

func TestTrafficFlow(t *testing.T) {
	tb := genTable(t, sampleDataset(t, "nanjing.transport.road-traffic-flow"), 100000, 4, WithNullRate(0))
	var night, peak, nightN, peakN float64
	counts, speeds, occs := tb.col("vehicle_count"), tb.col("avg_speed_kmh"), tb.col("occupancy")
	segments := map[string]bool{}
	for i, ts := range tb.col("interval_start") {
		segments[tb.rows[i][0]] = true
		at, _ := time.Parse(time.RFC3339, ts)
		if at.Minute()%5 != 0 || at.Second() != 0 {
			t.Fatalf("interval start %s", ts)
		}
		c := float64(atoiT(t, counts[i]))
		switch at.UTC().Add(8 * time.Hour).Hour() {
		case 3:
			night += c
			nightN++
		case 8:
			peak += c
			peakN++
		}
		s, _ := strconv.ParseFloat(speeds[i], 64)
		o, _ := strconv.ParseFloat(occs[i], 64)
		if c < 0 || s < 3 || s > 95 || o < 0 || o > 1 {
			t.Fatalf("count %v speed %v occupancy %v", c, s, o)
		}
	}
	if nightN == 0 || peakN == 0 || peak/peakN < 4*night/nightN {
		t.Errorf("mean count at 8:00 %.1f, at 3:00 %.1f; want a morning peak", peak/peakN, night/nightN)
	}
	if len(segments) != 316 { // ⌊√100000⌋
		t.Errorf("%d segments", len(segments))
	}
}

func TestTrips(t *testing.T) {
	tb := genTable(t, sampleDataset(t, "shanghai.connected-vehicles.lingang-trips"), 20000, 4, WithNullRate(0))
	gridRE := regexp.MustCompile(`^LG-E\d\dN\d\d$`)
	vehiclesPerMonth := map[string]map[string]bool{}
	starts, dists, durs, shares := tb.col("start_hour"), tb.col("distance_km"), tb.col("duration_s"), tb.col("autonomous_share")
	for i, v := range tb.col("vehicle_id") {
		at, err := time.Parse(time.RFC3339, starts[i])
		if err != nil || at.Minute() != 0 || at.Second() != 0 {
			t.Fatalf("start_hour %s", starts[i])
		}
		month := at.Add(8 * time.Hour).Format("2006-01")
		if vehiclesPerMonth[month] == nil {
			vehiclesPerMonth[month] = map[string]bool{}
		}
		vehiclesPerMonth[month][v] = true
		d, _ := strconv.ParseFloat(dists[i], 64)
		s, _ := strconv.ParseFloat(shares[i], 64)
		dur := atoiT(t, durs[i])
		if d <= 0 || d > 60 || s < 0 || s > 1 || dur <= 0 || float64(dur) < d/60*3600 {
			t.Fatalf("distance %v duration %v share %v", d, dur, s)
		}
		if !gridRE.MatchString(tb.rows[i][3]) || !gridRE.MatchString(tb.rows[i][4]) {
			t.Fatalf("grid cells %s %s", tb.rows[i][3], tb.rows[i][4])
		}
	}
	// 1,000 vehicles, ids rotated monthly: four months of distinct ids.
	if len(vehiclesPerMonth) != 4 {
		t.Errorf("months %d", len(vehiclesPerMonth))
	}
	all := map[string]bool{}
	for _, ids := range vehiclesPerMonth {
		if len(ids) > 1000 {
			t.Errorf("%d vehicle ids in a month, want at most 1000", len(ids))
		}
		for id := range ids {
			if all[id] {
				t.Errorf("vehicle id %s used in two months", id)
			}
			all[id] = true
		}
	}
}

func TestEnterpriseCredit(t *testing.T) {
	tb := genTable(t, sampleDataset(t, "hangzhou.fintech.enterprise-credit"), 50000, 4, WithNullRate(0))
	codeRE := regexp.MustCompile(`^91330\d{3}MA[0-9A-HJ-NPQRTUWXY]{6}[0-9X][0-9A-HJ-NPQRTUWXY]$`)
	seen := map[string]bool{}
	scores, ratings, names := tb.col("credit_score"), tb.col("rating"), tb.col("enterprise_name")
	for i, c := range tb.col("credit_code") {
		if seen[c] || !codeRE.MatchString(c) || usccCheck([]byte(c)) != c[17] || orgCheck([]byte(c[8:])) != c[16] {
			t.Fatalf("credit code %s: duplicate or malformed", c)
		}
		seen[c] = true
		s := atoiT(t, scores[i])
		want := "D"
		switch {
		case s >= 800:
			want = "A"
		case s >= 650:
			want = "B"
		case s >= 500:
			want = "C"
		}
		if s < 0 || s > 1000 || ratings[i] != want {
			t.Fatalf("score %d rated %s", s, ratings[i])
		}
		if !strings.HasPrefix(names[i], "杭州") || !strings.HasSuffix(names[i], "有限公司") {
			t.Fatalf("enterprise name %s", names[i])
		}
	}
}

// TestCheckCharacters checks the check-character algorithms against the
// examples published with their standards.
func TestCheckCharacters(t *testing.T) {
	if c := citizenCheck([]byte("11010519491231002")); c != 'X' {
		t.Errorf("GB 11643 example: check %c, want X", c)
	}
	if c := usccCheck([]byte("91350100M000100Y4")); c != '3' {
		t.Errorf("GB 32100 example: check %c, want 3", c)
	}
	if c := orgCheck([]byte("M000100Y")); c != '4' {
		t.Errorf("GB 11714 example: check %c, want 4", c)
	}
}
