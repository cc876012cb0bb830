package synth

import "math"

// semantic is the meaning of a column name known from the sample catalog:
// the kind of value it takes, the latent group it renders, and whether it
// is a key (never NULL). A column whose declared type cannot hold the kind
// falls back to a generic value of its type.
type semantic struct {
	kind  Kind
	group group
	key   bool
	fill  fillFunc
}

var semantics = map[string]semantic{
	// People (elderly population, household registry, hospital patients).
	"person_id":     {String, gResident, true, fillPersonID},
	"patient_id":    {String, gResident, true, fillPersonID},
	"citizen_id":    {String, gResident, true, fillCitizenID},
	"district":      {String, gResident, false, fillDistrict},
	"age":           {Int, gResident, false, fillAge},
	"gender":        {String, gResident, false, fillGender},
	"birth_date":    {Date, gResident, false, fillBirthDate},
	"name":          {String, gResident, false, fillName},
	"address":       {String, gResident, false, fillAddress},
	"registered_on": {Date, gResident, false, fillRegisteredOn},
	"living_alone":  {Bool, gResident, false, fillLivingAlone},
	"care_level":    {Int, gResident, false, fillCareLevel},

	// Hospital visits.
	"hospital_code": {String, gVisit, false, fillHospital},
	"department":    {String, gVisit, false, fillDepartment},
	"visit_date":    {Date, gVisit, false, fillVisitDate},
	"diagnosis":     {String, gVisit, false, fillDiagnosis},
	"cost":          {Decimal, gVisit, false, fillCost},

	// Road traffic flow.
	"segment_id":     {String, gTraffic, true, fillSegmentID},
	"road_name":      {String, gTraffic, false, fillRoadName},
	"interval_start": {Timestamp, gTraffic, true, fillIntervalStart},
	"vehicle_count":  {Int, gTraffic, false, fillVehicleCount},
	"avg_speed_kmh":  {Decimal, gTraffic, false, fillAvgSpeed},
	"occupancy":      {Decimal, gTraffic, false, fillOccupancy},

	// Connected-vehicle trips.
	"vehicle_id":       {String, gTrip, true, fillVehicleID},
	"start_hour":       {Timestamp, gTrip, false, fillStartHour},
	"start_grid":       {String, gTrip, false, fillStartGrid},
	"end_grid":         {String, gTrip, false, fillEndGrid},
	"distance_km":      {Decimal, gTrip, false, fillDistance},
	"duration_s":       {Int, gTrip, false, fillDuration},
	"autonomous_share": {Decimal, gTrip, false, fillAutonomousShare},

	// Enterprise credit.
	"credit_code":        {String, gEnterprise, true, fillCreditCode},
	"enterprise_name":    {String, gEnterprise, false, fillEnterpriseName},
	"industry_code":      {String, gEnterprise, false, fillIndustryCode},
	"registered_capital": {Decimal, gEnterprise, false, fillCapital},
	"credit_score":       {Int, gEnterprise, false, fillCreditScore},
	"rating":             {String, gEnterprise, false, fillRating},
	"rated_on":           {Date, gEnterprise, false, fillRatedOn},
}

func fillPersonID(g *gen, v *Value) {
	s := g.mark()
	g.buf = g.w.appendPersonID(g.buf, g.res.k)
	g.done(v, s)
}

func fillCitizenID(g *gen, v *Value) {
	s := g.mark()
	g.buf = g.w.appendCitizenID(g.buf, &g.res)
	g.done(v, s)
}

func fillDistrict(g *gen, v *Value) { setStr(v, g.w.districts[g.res.dist]) }

// refDay is the day a row's age is taken on: the visit in a visit, the
// snapshot otherwise.
func (g *gen) refDay() int64 {
	if g.groups&gVisit != 0 {
		return g.visit.day
	}
	return snapshot
}

func fillAge(g *gen, v *Value) { setInt(v, int64(g.res.ageAt(g.refDay()))) }

var male, female = []byte("M"), []byte("F")

func fillGender(g *gen, v *Value) {
	if g.res.female {
		setStr(v, female)
	} else {
		setStr(v, male)
	}
}

func fillBirthDate(g *gen, v *Value) { setDate(v, g.res.birth) }

// fillRegisteredOn: most residents were registered at birth; the others
// moved in as adults.
func fillRegisteredOn(g *gen, v *Value) {
	r := rng{s: g.res.h ^ 0x5eed}
	d := g.res.birth
	if adult := g.res.birth + 18*365; adult < snapshot && r.chance(0.45) {
		d = adult + int64(r.intn(int(snapshot-adult)+1))
	}
	setDate(v, d)
}

// fillLivingAlone: the share living alone rises with age (widowhood), from
// about 10% at 60 to a third at 95, and is higher for women.
func fillLivingAlone(g *gen, v *Value) {
	r := rng{s: g.res.h ^ 0xa10e}
	p := 0.10 + 0.006*float64(g.res.age-60)
	if g.res.female {
		p += 0.04
	}
	setBool(v, r.chance(p))
}

// fillCareLevel: the assessed long-term care level, 0 (none) to 6, grows
// with age: about 1% of 60-year-olds have one, half of 90-year-olds.
func fillCareLevel(g *gen, v *Value) {
	r := rng{s: g.res.h ^ 0xca7e}
	frail := 4*float64(g.res.age-60)/40 + 1.3*r.normal()
	setInt(v, int64(min(max(math.Floor(frail-2), 0), 6)))
}
