package synth

import "strings"

// diag is an ICD-10 code and the ages it occurs at (a senile cataract is
// not diagnosed at 20, a pregnancy not at 70).
type diag struct {
	code           []byte
	minAge, maxAge int
}

// department is an outpatient department: how often each age band (under
// 14, 14–59, 60+) visits it, whether only women do, the median cost of a
// visit in CNY and its common diagnoses, the first of which fits any age.
type department struct {
	name       []byte
	w          [3]uint32
	femaleOnly bool
	median     float64
	diags      []diag
}

// diags parses "I10 E11.9 H25.9:50- Z34.9:-50": a code, optionally with a
// minimum and/or maximum age.
func diags(spec string) []diag {
	var out []diag
	for _, f := range strings.Fields(spec) {
		d := diag{minAge: 0, maxAge: 200}
		code, ages, ok := strings.Cut(f, ":")
		if ok {
			lo, hi, _ := strings.Cut(ages, "-")
			if lo != "" {
				d.minAge = atoi(lo)
			}
			if hi != "" {
				d.maxAge = atoi(hi)
			}
		}
		d.code = []byte(code)
		out = append(out, d)
	}
	return out
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = 10*n + int(c-'0')
	}
	return n
}

var departments = []department{
	{[]byte("内科"), [3]uint32{0, 20, 20}, false, 260, diags("J06.9 K29.7 I10:30- E11.9:30- R50.9 K59.0")},
	{[]byte("心血管内科"), [3]uint32{0, 5, 14}, false, 380, diags("I10 I25.1:35- I48.9:40- I50.9:50- R07.4")},
	{[]byte("呼吸内科"), [3]uint32{0, 6, 9}, false, 300, diags("J20.9 J06.9 J18.9 J45.9 J44.9:40-")},
	{[]byte("内分泌科"), [3]uint32{0, 4, 8}, false, 320, diags("E11.9 E03.9 E78.5 E05.9")},
	{[]byte("消化内科"), [3]uint32{0, 6, 7}, false, 350, diags("K29.7 K21.9 K58.9 K80.2")},
	{[]byte("神经内科"), [3]uint32{0, 3, 7}, false, 400, diags("R51 G43.9 I63.9:40- G45.9:40- G20:50-")},
	{[]byte("普外科"), [3]uint32{1, 8, 6}, false, 420, diags("L02.9 K40.9 K80.2 S61.9 T14.0")},
	{[]byte("骨科"), [3]uint32{2, 7, 8}, false, 450, diags("M54.5 M17.9:40- S52.5 M47.8:40- M81.9:50-")},
	{[]byte("儿科"), [3]uint32{80, 0, 0}, false, 190, diags("J06.9 J18.9 A09 J20.9 R50.9 L20.9")},
	{[]byte("妇产科"), [3]uint32{0, 12, 2}, true, 300, diags("N76.0 Z34.9:16-48 O21.0:16-48 N92.0:12-55 N95.1:45-")},
	{[]byte("眼科"), [3]uint32{5, 5, 8}, false, 240, diags("H10.9 H52.1 H25.9:50- H40.9:30-")},
	{[]byte("耳鼻喉科"), [3]uint32{5, 5, 3}, false, 220, diags("J02.9 J30.4 H66.9 J32.9 H91.9:50-")},
	{[]byte("口腔科"), [3]uint32{4, 7, 5}, false, 380, diags("K02.9 K05.1 K04.0 K08.1:40-")},
	{[]byte("皮肤科"), [3]uint32{3, 6, 3}, false, 180, diags("L30.9 L20.9 B35.4 L70.0:12-40")},
	{[]byte("急诊科"), [3]uint32{6, 8, 8}, false, 560, diags("R10.4 R50.9 S06.0 T14.0 R55")},
	{[]byte("中医科"), [3]uint32{0, 4, 6}, false, 230, diags("M54.5 R53 K30 G47.0")},
}

// deptCum[band][female] are the cumulative department weights of an age
// band and sex; men get no weight in women's departments.
var deptCum [3][2][]uint32

func init() {
	for band := range 3 {
		for sex := range 2 {
			w := make([]uint32, len(departments))
			for i, d := range departments {
				if d.w[band] > 0 && (sex == 1 || !d.femaleOnly) {
					w[i] = d.w[band]
				}
			}
			deptCum[band][sex] = cumulative(w)
		}
	}
}

// hospitalCount hospitals per city, visited with Zipf-like frequency: a
// few big tertiary hospitals take most of the visits.
const hospitalCount = 24

type hospital struct{ code []byte }

var hospitalCum = func() []uint32 {
	w := make([]uint32, hospitalCount)
	for i := range w {
		w[i] = uint32(1000 / (i + 1))
	}
	return cumulative(w)
}()

// hospitals returns the city's hospitals, coded "H" + district code + a
// serial number, in districts spread by the city's population.
func (w *world) hospitals() []hospital {
	hs := make([]hospital, hospitalCount)
	for i := range hs {
		d := pickHash(derive(hashString(w.id), uint64(i)), w.distCum)
		hs[i].code = append(append([]byte("H"), w.distCodes[d]...), byte('0'+(i+1)/10), byte('0'+(i+1)%10))
	}
	return hs
}

type visitState struct {
	day  int64
	dept int
	diag []byte
	hosp int
	cost float64
}

// weekday returns 0 for Sunday … 6 for Saturday; 1970-01-01 was a Thursday.
func weekday(day int64) int { return int(((day+4)%7 + 7) % 7) }

func (g *gen) beginVisit() {
	s := &g.visit
	// Visits fall in the year up to the snapshot; outpatient clinics are
	// quieter at weekends, so a weekend day is redrawn half the time.
	s.day = snapshot - int64(g.r.intn(365))
	if wd := weekday(s.day); (wd == 0 || wd == 6) && g.r.chance(0.5) {
		s.day = snapshot - int64(g.r.intn(365))
	}
	if s.day < g.res.birth { // a baby born during the year
		s.day = g.res.birth + int64(g.r.intn(int(snapshot-g.res.birth)+1))
	}
	age := g.res.ageAt(s.day)
	band := 1
	switch {
	case age < 14:
		band = 0
	case age >= 60:
		band = 2
	}
	sex := 0
	if g.res.female {
		sex = 1
	}
	s.dept = g.r.pick(deptCum[band][sex])
	d := &departments[s.dept]
	s.diag = d.diags[0].code
	for range 4 {
		c := &d.diags[g.r.intn(len(d.diags))]
		if age >= c.minAge && age <= c.maxAge {
			s.diag = c.code
			break
		}
	}
	s.hosp = g.r.pick(hospitalCum)
	// Costs are log-normal around the department's median and rise with
	// age (more tests, more drugs).
	s.cost = max(g.r.lognormal(d.median*(1+0.01*float64(max(age-40, 0))), 0.55), 8)
}

func fillHospital(g *gen, v *Value)   { setStr(v, g.hospitals[g.visit.hosp].code) }
func fillDepartment(g *gen, v *Value) { setStr(v, departments[g.visit.dept].name) }
func fillVisitDate(g *gen, v *Value)  { setDate(v, g.visit.day) }
func fillDiagnosis(g *gen, v *Value)  { setStr(v, g.visit.diag) }
func fillCost(g *gen, v *Value)       { setDec(v, g.visit.cost, 2) }
