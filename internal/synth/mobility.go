package synth

import "math"

// Local time in the delta is UTC+8 all year.
const utcOffset = 8 * 3600

// trafficStart is the first 5-minute interval: Monday 2 June 2025, 00:00
// Asia/Shanghai. Rows run interval by interval, every segment per interval.
var trafficStart = dayNumber(2025, 6, 2)*86400 - utcOffset

// trafficProfile[weekend][i] is the demand in the i-th 5-minute interval of
// the day relative to a segment's capacity: night lows, a sharp morning
// peak and a broader evening one on weekdays, a flat daytime hump at
// weekends.
var trafficProfile = func() (p [2][288]float64) {
	bump := func(h, at, width float64) float64 { return math.Exp(-(h - at) * (h - at) / (2 * width * width)) }
	day := func(h, from, to float64) float64 {
		return 1 / (1 + math.Exp(-(h-from)*2)) / (1 + math.Exp((h-to)*1.5))
	}
	for i := range 288 {
		h := (float64(i) + 0.5) / 12
		p[0][i] = 0.05 + 0.45*day(h, 6.5, 22) + 0.45*bump(h, 8, 0.9) + 0.40*bump(h, 17.8, 1.3)
		p[1][i] = 0.05 + 0.55*day(h, 8.5, 22.5) + 0.15*bump(h, 15, 3)
	}
	return p
}()

// roadClass is a class of urban road: its capacity in vehicles per 5
// minutes and free-flow speed.
var roadClasses = [...]struct {
	capacity, freeSpeed float64
}{{260, 80}, {130, 50}, {60, 40}} // expressway, arterial, secondary

type trafficState struct {
	seg, road   int
	ts          int64
	count       int
	speed, occu float64
}

func (g *gen) beginTraffic() {
	s := &g.traf
	s.seg = int(g.i % g.segments)
	slot := int64(g.i / g.segments)
	s.ts = trafficStart + slot*300
	// Segments are fixed per city and seed: their road, class and size.
	h := derive(g.w.seed, uint64(s.seg)+1<<48)
	s.road = int(h>>32) % len(g.w.roads)
	class := roadClasses[[8]int{0, 1, 1, 1, 2, 2, 2, 2}[h&7]]
	capacity := class.capacity * (0.6 + 0.8*float64(h>>8&0xff)/255)
	local := s.ts + utcOffset
	weekend := 0
	if wd := weekday(local / 86400); wd == 0 || wd == 6 {
		weekend = 1
	}
	demand := capacity * trafficProfile[weekend][local%86400/300]
	s.count = max(int(math.Round(demand+math.Sqrt(demand)*g.r.normal())), 0)
	load := float64(s.count) / capacity
	s.speed = min(max(class.freeSpeed*(1-0.55*load*load)+2.5*g.r.normal(), 3), class.freeSpeed+15)
	s.occu = min(max(0.01+0.5*math.Pow(load, 1.6)+0.02*g.r.normal(), 0), 1)
}

func fillSegmentID(g *gen, v *Value) {
	s := g.mark()
	g.buf = append(g.buf, 'S')
	g.buf = append(g.buf, g.w.code...)
	g.buf = append(g.buf, '-')
	g.buf = appendPadded(g.buf, uint64(g.traf.seg+1), 5)
	g.done(v, s)
}

func fillRoadName(g *gen, v *Value)      { setStr(v, g.w.roads[g.traf.road]) }
func fillIntervalStart(g *gen, v *Value) { setTS(v, g.traf.ts) }
func fillVehicleCount(g *gen, v *Value)  { setInt(v, int64(g.traf.count)) }
func fillAvgSpeed(g *gen, v *Value)      { setDec(v, g.traf.speed, 1) }
func fillOccupancy(g *gen, v *Value)     { setDec(v, g.traf.occu, 3) }

// Trips start between 1 March and 30 June 2025, local time.
var (
	tripFirstDay = dayNumber(2025, 3, 1)
	tripDays     = int(snapshot - tripFirstDay + 1)
)

// tripHourCum weights the start hour: test vehicles run with safety
// drivers mostly in working hours, a few at night.
var tripHourCum = cumulative([]uint32{1, 1, 1, 1, 1, 2, 4, 8, 12, 12, 11, 10, 8, 10, 11, 11, 11, 12, 10, 7, 5, 3, 2, 1})

// The trip area is a grid of 1 km cells, about Lingang's extent, with most
// trips around the centre (Dishui Lake).
const gridW, gridH = 24, 18

type tripState struct {
	veh            uint64
	start          int64
	month          uint64
	sx, sy, ex, ey int
	dist, share    float64
	dur            int64
}

func (g *gen) beginTrip() {
	s := &g.trip
	s.veh = uint64(g.r.intn(int(g.vehicles)))
	day := tripFirstDay + int64(g.r.intn(tripDays))
	s.start = day*86400 + int64(g.r.pick(tripHourCum))*3600 - utcOffset
	y, m, _ := civil(day)
	s.month = uint64(y*12 + m - 1)
	if g.r.chance(0.6) {
		s.sx = clampInt(int(math.Round(gridW/2+3*g.r.normal())), 0, gridW-1)
		s.sy = clampInt(int(math.Round(gridH/2+3*g.r.normal())), 0, gridH-1)
	} else {
		s.sx, s.sy = g.r.intn(gridW), g.r.intn(gridH)
	}
	reach := g.r.lognormal(4, 0.7)
	angle := 2 * math.Pi * g.r.float()
	s.ex = clampInt(s.sx+int(math.Round(reach*math.Cos(angle))), 0, gridW-1)
	s.ey = clampInt(s.sy+int(math.Round(reach*math.Sin(angle))), 0, gridH-1)
	dx, dy := float64(s.ex-s.sx), float64(s.ey-s.sy)
	// Roads are longer than the straight line, and a trip within one cell
	// still drives somewhere.
	s.dist = 1.3*math.Hypot(dx, dy) + 0.3 + 1.5*g.r.float()
	speed := 18 + 27*g.r.float()
	s.dur = int64(s.dist/speed*3600) + int64(g.r.between(30, 300))
	// Each vehicle has its own autonomy level; trips vary around it.
	base := 0.2 + 0.75*float64(derive(g.seed, s.veh)>>11)*0x1p-53
	s.share = min(max(base+0.1*g.r.normal(), 0), 1)
}

func clampInt(x, lo, hi int) int { return min(max(x, lo), hi) }

// fillVehicleID writes the pseudonymous vehicle id. Ids rotate monthly, as
// the catalog says: the pair (month, vehicle) is permuted, so a vehicle
// has one id per month and no two vehicles share one.
func fillVehicleID(g *gen, v *Value) {
	s := g.mark()
	g.buf = append(g.buf, 'V')
	x := (g.trip.month*g.vehicles + g.trip.veh) % (1 << 40)
	g.buf = appendHex(g.buf, permute(x, 1<<40, derive(g.seed, 0x7e41c1e)), 10)
	g.done(v, s)
}

func fillStartHour(g *gen, v *Value) { setTS(v, g.trip.start) }
func fillStartGrid(g *gen, v *Value) { g.grid(v, g.trip.sx, g.trip.sy) }
func fillEndGrid(g *gen, v *Value)   { g.grid(v, g.trip.ex, g.trip.ey) }

// grid writes a cell as "LG-E07N12": km east and north of the area's
// south-west corner.
func (g *gen) grid(v *Value, x, y int) {
	s := g.mark()
	g.buf = append(g.buf, "LG-E"...)
	g.buf = append2(g.buf, x)
	g.buf = append(g.buf, 'N')
	g.buf = append2(g.buf, y)
	g.done(v, s)
}

func fillDistance(g *gen, v *Value)        { setDec(v, g.trip.dist, 2) }
func fillDuration(g *gen, v *Value)        { setInt(v, g.trip.dur) }
func fillAutonomousShare(g *gen, v *Value) { setDec(v, g.trip.share, 3) }
