package synth

import (
	"math"
	"sync"
)

// The generated world is seen on one day, the snapshot: ages are taken on
// it, and events (visits, trips, ratings) fall in the year up to it. A fixed
// date keeps the output independent of when it is generated.
var snapshot = dayNumber(2025, 6, 30)

// elderlyEvery says which residents are elderly: resident k is aged 60 or
// over exactly when k%elderlyEvery == 0, about the delta's share of 60+
// residents (a quarter). The interleaving lets the elderly dataset's row i
// be resident i*elderlyEvery, so any prefix of residents is a whole
// population with its elderly exactly the prefix of the elderly dataset.
const elderlyEvery = 4

// ElderlyRowsFor returns how many rows an elderly-population dataset needs
// to list every elderly resident among the first residents. Hospital visits
// draw patients from the first WithResidents residents (by default as many
// as the dataset has rows), so an elderly dataset of ElderlyRowsFor(n) rows
// or more contains every patient aged 60 or over at the visit.
func ElderlyRowsFor(residents int) int { return (residents + elderlyEvery - 1) / elderlyEvery }

// birthTable maps a resident to a birth date and an identity card sequence
// number at once. Every day of birth has a capacity of sequence numbers
// (000–999) proportional to how common that age is; the table lists the
// cumulative capacities. A keyed permutation of the resident's index picks
// one (day, sequence) slot, so the age distribution has the intended shape
// and no two residents share a slot: the 18-digit citizen ids built from
// the slot are unique without any set of used ids. There are 6.5 million
// elderly slots and 18 million others per city; past them citizen ids
// repeat (person ids, drawn from ten digits, do not).
type birthTable struct {
	first int64    // day number of slot day 0
	cum   []uint32 // cum[d] is the capacity of the days before d
	age   []uint8  // age[d] is the age on the snapshot of someone born on day d
	// index[b] is the day holding slot b<<indexShift, so slot searches only
	// a few days instead of the whole table: the search was a third of the
	// cost of an elderly row.
	index      []uint32
	indexShift uint
}

func (t *birthTable) total() uint64 { return uint64(t.cum[len(t.cum)-1]) }

// slot returns the day offset and sequence number of slot j < total.
func (t *birthTable) slot(j uint64) (day int64, seq uint64) {
	b := j >> t.indexShift
	lo, hi := int(t.index[b]), len(t.cum)-1 // cum[lo] <= j < cum[hi]
	if b+1 < uint64(len(t.index)) {
		hi = int(t.index[b+1]) + 1
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if uint64(t.cum[mid]) <= j {
			lo = mid
		} else {
			hi = mid
		}
	}
	return int64(lo), j - uint64(t.cum[lo])
}

func newBirthTable(minAge, maxAge int, weight func(age int) float64) *birthTable {
	sy, sm, sd := civil(snapshot)
	first := dayNumber(sy-maxAge-1, sm, sd) + 1
	last := dayNumber(sy-minAge, sm, sd)
	t := &birthTable{first: first}
	var total uint32
	for d := first; d <= last; d++ {
		t.cum = append(t.cum, total)
		a := ageAt(d, snapshot)
		t.age = append(t.age, uint8(a))
		c := math.Round(1000 * weight(a))
		total += uint32(min(max(c, 1), 1000))
	}
	t.cum = append(t.cum, total)
	for uint64(total)>>t.indexShift > 4096 {
		t.indexShift++
	}
	d := 0
	for b := uint64(0); b<<t.indexShift < uint64(total); b++ {
		for uint64(t.cum[d+1]) <= b<<t.indexShift {
			d++
		}
		t.index = append(t.index, uint32(d))
	}
	return t
}

// Ages 60–100, skewed young, after China's 2020 census of the 60+ by
// five-year band (millions: 73.4, 74.0, 49.6, 31.2, 20.4, 11.0, 3.6, 0.8),
// so 60–69 is 56% of the elderly, 70–79 31% and 80+ 14%.
var elderlyBirths = sync.OnceValue(func() *birthTable {
	bands := [...]float64{73.4, 74.0, 49.6, 31.2, 20.4, 11.0, 3.6, 0.8, 0.2}
	return newBirthTable(60, 100, func(a int) float64 { return bands[(a-60)/5] / 74.0 })
})

// Ages 0–59, after the delta's population pyramid: fewer children than
// adults, bulges in the thirties and fifties.
var youngBirths = sync.OnceValue(func() *birthTable {
	return newBirthTable(0, 59, func(a int) float64 {
		switch {
		case a < 10:
			return 0.70
		case a < 20:
			return 0.68
		case a < 30:
			return 0.78
		case a < 40:
			return 1.00
		case a < 50:
			return 0.88
		}
		return 0.98
	})
})

// ageAt returns the age in whole years on day of someone born on birth.
func ageAt(birth, day int64) int {
	by, bm, bd := civil(birth)
	y, m, d := civil(day)
	a := y - by
	if m < bm || m == bm && d < bd {
		a--
	}
	return a
}

// world is a city under one seed: the population every dataset of that
// city draws its people from.
type world struct {
	*place
	seed      uint64
	personKey uint64
	birthKey  [2]uint64
}

func newWorld(city string, seed uint64) *world {
	s := derive(seed, hashString("city:"+city))
	return &world{
		place:     newPlace(city),
		seed:      s,
		personKey: derive(s, 1),
		birthKey:  [2]uint64{derive(s, 2), derive(s, 3)},
	}
}

// resident is one person of a world, identified by index k. Everything
// here is a pure function of (city, seed, k), which is what makes the same
// person look the same in every dataset of the city.
type resident struct {
	k      uint64
	birth  int64 // day number
	age    int   // on the snapshot
	seq    uint64
	female bool
	dist   int
	h      uint64 // for further intrinsic attributes (name, care level)
}

func (w *world) resident(k uint64) resident {
	t, j, key := youngBirths(), k-k/elderlyEvery-1, w.birthKey[1]
	if k%elderlyEvery == 0 {
		t, j, key = elderlyBirths(), k/elderlyEvery, w.birthKey[0]
	}
	n := t.total()
	day, seq := t.slot(permute(j%n, n, key))
	h := derive(w.seed, k+1<<40)
	return resident{
		k:     k,
		birth: t.first + day,
		age:   int(t.age[day]),
		seq:   seq,
		// As in an identity card number, an odd sequence number is a man.
		female: seq%2 == 0,
		dist:   pickHash(h, w.distCum),
		h:      mix64(h),
	}
}

func (r *resident) ageAt(day int64) int {
	if day == snapshot {
		return r.age
	}
	return ageAt(r.birth, day)
}

const personIDSpace = 10_000_000_000

// appendPersonID writes resident k's person id: "P", the city code, and a
// keyed permutation of k over ten digits. The city code keeps cities'
// ids disjoint; the permutation keeps them unique within the city and
// unrelated to the order in which residents are generated.
func (w *world) appendPersonID(dst []byte, k uint64) []byte {
	dst = append(dst, 'P')
	dst = append(dst, w.code...)
	return appendPadded(dst, permute(k%personIDSpace, personIDSpace, w.personKey), 10)
}

// PersonID returns the person id of resident k of city under seed, as
// generated in person_id and patient_id columns; the elderly dataset's row
// i is resident i*4. Tests use it to pick keys for lookups and joins.
func PersonID(city string, seed uint64, k int) string {
	return string(newWorld(city, seed).appendPersonID(nil, uint64(k)))
}

func appendPadded(dst []byte, n uint64, width int) []byte {
	var b [20]byte
	i := len(b)
	for n > 0 || i > len(b)-width {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, b[i:]...)
}

var idCardWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// appendCitizenID writes an 18-character resident identity card number
// (GB 11643): district code, birth date, sequence number whose parity is
// the sex, and the check character.
func (w *world) appendCitizenID(dst []byte, r *resident) []byte {
	start := len(dst)
	dst = append(dst, w.distCodes[r.dist]...)
	dst = appendDateCompact(dst, r.birth)
	dst = appendPadded(dst, r.seq, 3)
	return append(dst, citizenCheck(dst[start:start+17]))
}

// citizenCheck is the ISO 7064 MOD 11-2 check character of the first 17
// characters of an identity card number.
func citizenCheck(b []byte) byte {
	sum := 0
	for i, c := range b[:17] {
		sum += (int(c-'0') & 0xf) * idCardWeights[i]
	}
	return "10X98765432"[sum%11]
}
