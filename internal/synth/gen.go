package synth

import (
	"fmt"
	"math"
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// group is a set of latent row variables that several columns render: the
// resident a row is about, a hospital visit, a traffic measurement, a trip,
// an enterprise. A group is computed once per row, before its columns, so
// correlated columns agree (rating follows credit_score, speed falls as
// vehicle_count rises) whatever their order in the schema.
type group uint8

const (
	gResident group = 1 << iota
	gVisit
	gTraffic
	gTrip
	gEnterprise
)

// residentMode says which resident a row is about.
type residentMode uint8

const (
	perResident residentMode = iota // row i is resident i (a registry)
	perElderly                      // row i is the i-th elderly resident
	perEvent                        // each row draws a resident; people recur
)

// fillFunc sets one cell of the current row.
type fillFunc func(g *gen, v *Value)

type colPlan struct {
	fill     fillFunc
	nullable bool
}

// gen holds what a dataset's rows are generated from, and the current
// row's latent variables.
type gen struct {
	w         *world
	seed      uint64 // the dataset's stream: derived from the city's and the dataset id
	nullSeed  uint64
	nullCut   uint64 // a nullable cell is NULL when its draw is below nullCut
	residents uint64
	mode      residentMode
	groups    group
	hospitals []hospital
	segments  uint64
	vehicles  uint64

	i     uint64
	r     rng
	res   resident
	visit visitState
	traf  trafficState
	trip  tripState
	ent   enterpriseState
	buf   []byte
}

func compile(d *yrdv1.Dataset, rows, seed uint64, o options) (*gen, []colPlan, error) {
	w := newWorld(d.GetOwnerCity(), seed)
	g := &gen{
		w:    w,
		seed: derive(w.seed, hashString("dataset:"+d.GetId())),
		buf:  make([]byte, 0, 256),
	}
	g.nullSeed = derive(g.seed, hashString("nulls"))
	if o.nullRate >= 1 {
		g.nullCut = math.MaxUint64
	} else {
		g.nullCut = uint64(o.nullRate * (1 << 63) * 2)
	}
	cols := d.GetSchema().GetColumns()
	plan := make([]colPlan, len(cols))
	hasPatient := false
	for i, c := range cols {
		if c == nil {
			return nil, nil, fmt.Errorf("synth: %s: column %d is missing", d.GetId(), i)
		}
		typ := normType(c)
		if !knownType(typ) {
			return nil, nil, fmt.Errorf("synth: %s: column %s has unknown type %q", d.GetId(), c.GetName(), c.GetType())
		}
		name := strings.ToLower(c.GetName())
		key := c.GetIdentifierRole() == yrdv1.IdentifierRole_IDENTIFIER_DIRECT || isIDName(name)
		if s, ok := semantics[name]; ok && accepts(typ, s.kind) {
			plan[i] = colPlan{fill: s.fill, nullable: !(key || s.key)}
			g.groups |= s.group
			hasPatient = hasPatient || name == "patient_id"
			continue
		}
		plan[i] = colPlan{fill: genericFill(g, name, typ), nullable: !key}
	}
	if len(cols) == 1 {
		// A lone NULL would be an empty CSV line, which readers skip.
		plan[0].nullable = false
	}
	switch {
	case d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID || strings.HasSuffix(d.GetId(), ".elderly-population"):
		g.mode = perElderly
	case hasPatient || g.groups&gVisit != 0:
		g.mode = perEvent
		g.groups |= gResident
	}
	g.residents = uint64(o.residents)
	if g.residents == 0 {
		g.residents = max(rows, 1)
	}
	if g.groups&gVisit != 0 {
		g.hospitals = w.hospitals()
	}
	if g.groups&gTraffic != 0 {
		// A square-ish grid of segments × 5-minute intervals: 2M rows are
		// 1,000 segments over a week, 10,000 rows 100 segments over 8 hours.
		g.segments = uint64(min(max(math.Sqrt(float64(rows)), 1), 1000))
	}
	if g.groups&gTrip != 0 {
		g.vehicles = min(max(rows/20, 1), 5000)
	}
	return g, plan, nil
}

func knownType(t string) bool {
	switch t {
	case "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "DATE", "TIMESTAMP":
		return true
	}
	return false
}

// accepts reports whether a column of type t can hold values of kind k
// as they are written: an integer is a valid DOUBLE or DECIMAL literal.
func accepts(t string, k Kind) bool {
	switch t {
	case "BOOLEAN":
		return k == Bool
	case "INTEGER", "BIGINT":
		return k == Int
	case "DOUBLE", "DECIMAL":
		return k == Decimal || k == Int
	case "VARCHAR":
		return k == String
	case "DATE":
		return k == Date
	case "TIMESTAMP":
		return k == Timestamp
	}
	return false
}

func isIDName(name string) bool { return name == "id" || strings.HasSuffix(name, "_id") }

// row fills vals with row i.
func (g *gen) row(i uint64, plan []colPlan, vals []Value) {
	g.i = i
	g.r = rng{s: derive(g.seed, i)}
	g.buf = g.buf[:0]
	if g.groups&gResident != 0 {
		g.res = g.w.resident(g.residentFor())
	}
	if g.groups&gVisit != 0 {
		g.beginVisit()
	}
	if g.groups&gTraffic != 0 {
		g.beginTraffic()
	}
	if g.groups&gTrip != 0 {
		g.beginTrip()
	}
	if g.groups&gEnterprise != 0 {
		g.beginEnterprise()
	}
	nulls := rng{s: derive(g.nullSeed, i)}
	for c := range plan {
		v := &vals[c]
		*v = Value{}
		plan[c].fill(g, v)
		// Drawn for every nullable cell whether or not it ends up NULL, so
		// that the draws of one column do not depend on another's.
		if plan[c].nullable && nulls.next() < g.nullCut {
			*v = Value{}
		}
	}
}

func (g *gen) residentFor() uint64 {
	switch g.mode {
	case perElderly:
		return g.i * elderlyEvery
	case perEvent:
		// Old people see doctors more: 40% of visits are by the quarter
		// of residents aged 60+.
		elderly := (g.residents + elderlyEvery - 1) / elderlyEvery
		young := g.residents - elderly
		if young == 0 || g.r.chance(0.4) {
			return uint64(g.r.intn(int(elderly))) * elderlyEvery
		}
		m := uint64(g.r.intn(int(young)))
		return m + m/(elderlyEvery-1) + 1 // the m-th resident not aged 60+
	}
	return g.i
}

// Helpers that set a value of each kind.

func setInt(v *Value, n int64)  { *v = Value{Kind: Int, Int: n} }
func setDate(v *Value, d int64) { *v = Value{Kind: Date, Int: d} }
func setTS(v *Value, t int64)   { *v = Value{Kind: Timestamp, Int: t} }
func setStr(v *Value, b []byte) { *v = Value{Kind: String, Bytes: b} }

func setBool(v *Value, b bool) {
	*v = Value{Kind: Bool}
	if b {
		v.Int = 1
	}
}

// setDec sets x rounded to scale decimals.
func setDec(v *Value, x float64, scale int) {
	*v = Value{Kind: Decimal, Scale: uint8(scale), Int: int64(math.Round(x * float64(pow10[scale])))}
}

// mark and done bracket bytes appended to g.buf as one string value; the
// capacity is clipped so that a caller appending to it cannot overwrite
// the next value.
func (g *gen) mark() int { return len(g.buf) }

func (g *gen) done(v *Value, start int) {
	setStr(v, g.buf[start:len(g.buf):len(g.buf)])
}

// genericFill is the fill of a column whose name has no known meaning:
// typed values over plausible ranges; *_id strings are unique per dataset.
func genericFill(g *gen, name, typ string) fillFunc {
	key := derive(g.seed, hashString("column:"+name))
	switch typ {
	case "BOOLEAN":
		return func(g *gen, v *Value) { setBool(v, g.r.chance(0.5)) }
	case "INTEGER":
		return func(g *gen, v *Value) { setInt(v, int64(g.r.intn(1000))) }
	case "BIGINT":
		return func(g *gen, v *Value) { setInt(v, int64(g.r.next()%1_000_000_000_000)) }
	case "DOUBLE":
		return func(g *gen, v *Value) { setDec(v, 1000*g.r.float(), 3) }
	case "DECIMAL":
		return func(g *gen, v *Value) { setDec(v, 100000*g.r.float(), 2) }
	case "DATE":
		return func(g *gen, v *Value) { setDate(v, snapshot-int64(g.r.intn(5*365))) }
	case "TIMESTAMP":
		return func(g *gen, v *Value) { setTS(v, (snapshot-int64(g.r.intn(365)))*86400+int64(g.r.intn(86400))) }
	}
	if isIDName(name) {
		// An upper-case initial, the city code and a permuted row index:
		// "V3201-3f09a1c2d4e5". The permutation makes it unique.
		prefix := strings.ToUpper(name[:1]) + g.w.code + "-"
		return func(g *gen, v *Value) {
			s := g.mark()
			g.buf = append(g.buf, prefix...)
			g.buf = appendHex(g.buf, permute(g.i, 1<<48, key), 12)
			g.done(v, s)
		}
	}
	// A categorical value, "<name>-1" … "<name>-20", so GROUP BY has groups.
	cats := make([][]byte, 20)
	for i := range cats {
		cats[i] = fmt.Appendf(nil, "%s-%d", name, i+1)
	}
	return func(g *gen, v *Value) { setStr(v, cats[g.r.intn(len(cats))]) }
}

func appendHex(dst []byte, n uint64, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		dst = append(dst, hexDigits[n>>(4*uint(i))&0xf])
	}
	return dst
}
