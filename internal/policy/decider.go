package policy

import (
	"strconv"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// decider is the state of one Decide call. It keeps its working lists in
// fixed arrays (spilling to the heap only for unusually large requests) and
// never stores pointers into itself, so it stays on the caller's stack and
// a typical decision costs two allocations: the decision (see pack) and its
// reason.
type decider struct {
	r *Request
	d *yrdv1.Dataset
	a *yrdv1.AccessRequest
	p *yrdv1.PolicyParams
	s schema

	level  yrdv1.ClassificationLevel // effective: unknown counts as CORE
	agg    bool                      // the request asks for aggregates
	denied bool

	effect   yrdv1.Effect
	rowCap   uint64
	minGroup uint32
	grantID  string
	noiseEps float64
	family   string

	// The columns the result would show, with their treatments.
	nShown   int
	shownArr [32]shownCol
	shownBig []shownCol

	// Fired rule ids; no decision fires more than five.
	nIDs   int
	idsArr [8]string
	idsBig []string

	nReason   int
	reasonArr [512]byte
	reasonBig []byte
}

type shownCol struct {
	idx   int32 // in the schema
	treat yrdv1.ColumnTreatment
}

func (e *decider) init(r *Request) {
	e.r = r
	e.level = levelCore
	if r == nil {
		return
	}
	e.d, e.a, e.p = r.Dataset, r.Access, r.Params
	e.s = newSchema(e.d)
	e.level = effectiveLevel(e.d)
	e.agg = e.a.GetResultForm() == yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	e.computeShown()
}

// computeShown lists the columns the result would show: for rows the
// projection or, when it is empty, every column; for aggregates the group
// keys, the aggregated columns and any projected column. Unknown names are
// skipped (request.complete denies them).
func (e *decider) computeShown() {
	a := e.a
	var seen colSet
	add := func(name string) {
		if i := e.s.find(name); i >= 0 && seen.add(i) {
			e.addShown(i)
		}
	}
	switch {
	case e.agg:
		for _, n := range a.GetGroupBy() {
			add(n)
		}
		for _, ag := range a.GetAggregates() {
			add(ag.GetColumn())
		}
		for _, n := range a.GetColumns() {
			add(n)
		}
	case len(a.GetColumns()) == 0:
		for i, c := range e.s.cols {
			if c != nil {
				e.addShown(i)
			}
		}
	default:
		for _, n := range a.GetColumns() {
			add(n)
		}
	}
}

func (e *decider) addShown(i int) {
	c := shownCol{idx: int32(i), treat: treatWithheldT}
	if e.shownBig == nil && e.nShown < len(e.shownArr) {
		e.shownArr[e.nShown] = c
		e.nShown++
		return
	}
	if e.shownBig == nil {
		e.shownBig = make([]shownCol, e.nShown, 2*len(e.shownArr))
		copy(e.shownBig, e.shownArr[:])
	}
	e.shownBig = append(e.shownBig, c)
}

// shown returns the shown columns; treatments may be set through it.
func (e *decider) shown() []shownCol {
	if e.shownBig != nil {
		return e.shownBig
	}
	return e.shownArr[:e.nShown]
}

func (e *decider) ids() []string {
	if e.idsBig != nil {
		return e.idsBig
	}
	return e.idsArr[:e.nIDs]
}

// pack holds a typical decision and its parts in one allocation.
type pack struct {
	d    yrdv1.Decision
	cols [8]yrdv1.ColumnDecision
	ptrs [8]*yrdv1.ColumnDecision
	ids  [8]string
}

func (e *decider) finish() *yrdv1.Decision {
	if !e.denied && e.effect == yrdv1.Effect_EFFECT_UNSPECIFIED {
		e.denied = true // unreachable: every path that does not deny allows
	}
	if e.denied {
		e.effect, e.rowCap, e.minGroup, e.grantID = yrdv1.Effect_EFFECT_DENY, 0, 0, ""
		e.noiseEps, e.family = 0, ""
	}
	shown, ids := e.shown(), e.ids()
	var (
		d    *yrdv1.Decision
		cols []yrdv1.ColumnDecision
	)
	if n := len(shown); n <= len(pack{}.cols) && len(ids) <= len(pack{}.ids) {
		p := &pack{}
		d, cols = &p.d, p.cols[:n:n]
		d.Columns = p.ptrs[:n:n]
		d.RuleIds = p.ids[:len(ids):len(ids)]
	} else {
		d, cols = &yrdv1.Decision{}, make([]yrdv1.ColumnDecision, n)
		d.Columns = make([]*yrdv1.ColumnDecision, n)
		d.RuleIds = make([]string, len(ids))
	}
	copy(d.RuleIds, ids)
	for i, c := range shown {
		cols[i].Column = e.s.cols[c.idx].GetName()
		cols[i].Treatment = c.treat
		if e.denied {
			cols[i].Treatment = treatWithheldT
		}
		d.Columns[i] = &cols[i]
	}
	if len(shown) == 0 {
		d.Columns = nil
	}
	d.Effect, d.RowCap, d.MinGroupSize, d.GrantId = e.effect, e.rowCap, e.minGroup, e.grantID
	d.NoiseEpsilon, d.BudgetFamily = e.noiseEps, e.family
	d.PolicyVersion = e.p.GetVersion()
	d.DerivedLevel = e.level
	d.CrossBorder = e.r != nil && e.r.RequesterOutsideMainland
	if e.reasonBig != nil {
		d.Reason = string(e.reasonBig)
	} else {
		d.Reason = string(e.reasonArr[:e.nReason])
	}
	return d
}

// fire records a rule and starts its reason sentence.
func (e *decider) fire(id string) {
	if e.idsBig == nil && e.nIDs < len(e.idsArr) {
		e.idsArr[e.nIDs] = id
		e.nIDs++
	} else {
		if e.idsBig == nil {
			e.idsBig = append([]string(nil), e.idsArr[:]...)
		}
		e.idsBig = append(e.idsBig, id)
	}
	if e.nReason > 0 || e.reasonBig != nil {
		e.say("; ")
	}
}

func (e *decider) deny(id string) {
	e.fire(id)
	e.denied = true
}

func (e *decider) say(s string) {
	if e.reasonBig == nil && e.nReason+len(s) <= len(e.reasonArr) {
		e.nReason += copy(e.reasonArr[e.nReason:], s)
		return
	}
	if e.reasonBig == nil {
		e.reasonBig = make([]byte, e.nReason, 2*len(e.reasonArr)+len(s))
		copy(e.reasonBig, e.reasonArr[:e.nReason])
	}
	e.reasonBig = append(e.reasonBig, s...)
}

func (e *decider) sayBytes(b []byte) {
	if e.reasonBig == nil && e.nReason+len(b) <= len(e.reasonArr) {
		e.nReason += copy(e.reasonArr[e.nReason:], b)
		return
	}
	e.say(string(b))
}

// quote writes s quoted. Catalog names need no escaping, so the common case
// skips strconv.
func (e *decider) quote(s string) {
	if len(s) <= showMax && plainASCII(s) {
		e.say(`"`)
		e.say(s)
		e.say(`"`)
		return
	}
	var buf [128]byte
	e.sayBytes(appendShow(buf[:0], s))
}

func (e *decider) uint(n uint64) {
	var buf [20]byte
	e.sayBytes(strconv.AppendUint(buf[:0], n, 10))
}

func (e *decider) sep(first *bool) {
	if !*first {
		e.say(", ")
	}
	*first = false
}

func (e *decider) sepQuote(first *bool, s string) {
	e.sep(first)
	e.quote(s)
}

func (e *decider) scanGrants(form yrdv1.ResultForm, preferPersonal bool) (*yrdv1.Grant, *yrdv1.Grant, grantStage) {
	return scanGrants(e.r, form, preferPersonal)
}

// schema finds columns by name: a linear scan for small schemas, which is
// faster than building a map, and a map for large ones.
type schema struct {
	cols []*yrdv1.Column
	m    map[string]int
}

const linearMax = 24

func newSchema(d *yrdv1.Dataset) schema {
	s := schema{cols: d.GetSchema().GetColumns()}
	if len(s.cols) > linearMax {
		s.m = make(map[string]int, len(s.cols))
		for i, c := range s.cols {
			if _, dup := s.m[c.GetName()]; !dup && c != nil {
				s.m[c.GetName()] = i
			}
		}
	}
	return s
}

// find returns the index of the first column called name, or -1.
func (s *schema) find(name string) int {
	if name == "" {
		return -1
	}
	if s.m != nil {
		if i, ok := s.m[name]; ok {
			return i
		}
		return -1
	}
	for i, c := range s.cols {
		if c.GetName() == name {
			return i
		}
	}
	return -1
}

// colSet is a set of column indices; it allocates only past 64 columns.
type colSet struct {
	small uint64
	big   []uint64
}

func (s *colSet) has(i int) bool {
	if i < 64 {
		return s.small&(uint64(1)<<i) != 0
	}
	w := i/64 - 1
	return w < len(s.big) && s.big[w]&(uint64(1)<<(i%64)) != 0
}

// add reports whether i was not yet in the set.
func (s *colSet) add(i int) bool {
	if i < 64 {
		bit := uint64(1) << i
		had := s.small&bit != 0
		s.small |= bit
		return !had
	}
	w := i/64 - 1
	if w >= len(s.big) {
		s.big = append(s.big, make([]uint64, w+1-len(s.big))...)
	}
	bit := uint64(1) << (i % 64)
	had := s.big[w]&bit != 0
	s.big[w] |= bit
	return !had
}
