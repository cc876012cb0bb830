package merge

import (
	"fmt"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// record is one row of the merged result before ordering: a partial row
// (row queries; vals are its values, helper columns included) or a
// merged group (vals are the outputs, key the group key values).
type record struct {
	row  *yrdv1.Row
	vals []*yrdv1.Value
	key  []*yrdv1.Value
}

// acc accumulates one aggregate output of one group.
type acc struct {
	isum int128       // count; sum and avg's sum over BIGINT
	fsum float64      // sum and avg's sum over DOUBLE
	n    int128       // avg's count
	some bool         // sum: a non-NULL partial sum was seen
	best *yrdv1.Value // min, max
}

// groups merges the parts' partial groups, parts in the order given,
// each's rows as received, and returns one record per group in the order
// the groups were first seen.
func (m *Merge) groups(parts []part) ([]record, error) {
	gs := m.accumulate(parts)
	return m.records(gs)
}

// groupSet is the groups being merged, in the order first seen: each
// one's key values (len(groupSrc) per group) and accumulators.
type groupSet struct {
	index map[string]int
	keys  []*yrdv1.Value
	accs  [][]acc
}

// accumulate finds each partial row's group and folds the row into the
// group's accumulators.
func (m *Merge) accumulate(parts []part) *groupSet {
	nk, no := len(m.groupSrc), len(m.outs)
	most := 0 // a size hint: one part's rows are distinct groups
	for _, p := range parts {
		most = max(most, len(p.rows))
	}
	gs := &groupSet{index: make(map[string]int, most), keys: make([]*yrdv1.Value, 0, most*nk), accs: make([][]acc, 0, most)}
	// Each group's accumulators are a slice of a slab; slabs are never
	// copied as groups are added.
	var slab []acc
	var buf []byte
	for _, p := range parts {
		for _, row := range p.rows {
			vals := row.GetValues()
			buf = buf[:0]
			for _, s := range m.groupSrc {
				buf = appendKey(buf, vals[s])
			}
			g, ok := gs.index[string(buf)]
			if !ok {
				g = len(gs.index)
				gs.index[string(buf)] = g
				for _, s := range m.groupSrc {
					gs.keys = append(gs.keys, vals[s])
				}
				if len(slab) < no {
					slab = make([]acc, no*max(most-g, 64))
				}
				gs.accs = append(gs.accs, slab[:no:no])
				slab = slab[no:]
			}
			m.fold(gs.accs[g], vals)
		}
	}
	return gs
}

// fold adds one partial row's values to its group's accumulators, each
// output as its aggregate merges (querylang's Merge of the function).
func (m *Merge) fold(ga []acc, vals []*yrdv1.Value) {
	for i, out := range m.outs {
		a := &ga[i]
		v := vals[out.src]
		switch out.kind {
		case outCount:
			a.isum.add(v.GetIntValue())
		case outSum, outAvg:
			switch x := v.GetKind().(type) {
			case *yrdv1.Value_IntValue:
				a.isum.add(x.IntValue)
				a.some = true
			case *yrdv1.Value_DoubleValue:
				a.fsum += x.DoubleValue
				a.some = true
			}
			if out.kind == outAvg {
				a.n.add(vals[out.cnt].GetIntValue())
			}
		case outMin, outMax:
			if kindOf(v) == kNull {
				continue
			}
			if a.best == nil {
				a.best = v
			} else if c := compareValues(v, a.best); out.kind == outMin && c < 0 || out.kind == outMax && c > 0 {
				a.best = v
			}
		}
	}
}

// records turns the merged groups into records: per group its key and
// each output's value.
func (m *Merge) records(gs *groupSet) ([]record, error) {
	nk, no := len(m.groupSrc), len(m.outs)
	fresh := 0 // outputs whose values are made here
	for _, o := range m.outs {
		if o.kind == outCount || o.kind == outSum || o.kind == outAvg {
			fresh++
		}
	}
	va := newValues(len(gs.index) * fresh)
	recs := make([]record, len(gs.index))
	vals := make([]*yrdv1.Value, len(gs.index)*no)
	for g := range recs {
		key := gs.keys[g*nk : (g+1)*nk : (g+1)*nk]
		out := vals[g*no : (g+1)*no : (g+1)*no]
		for i, o := range m.outs {
			v, err := m.outValue(o, &gs.accs[g][i], key, va)
			if err != nil {
				return nil, m.overflow(i, key)
			}
			out[i] = v
		}
		recs[g] = record{vals: out, key: key}
	}
	return recs, nil
}

// outValue is output o's value for the group with key values key and
// accumulator a; it fails only when an integer total overflows BIGINT.
func (m *Merge) outValue(o output, a *acc, key []*yrdv1.Value, va *values) (*yrdv1.Value, error) {
	switch o.kind {
	case outColumn:
		return key[o.gpos], nil
	case outCount:
		n, ok := a.isum.int64()
		if !ok {
			return nil, ErrOverflow
		}
		return va.int(n), nil
	case outSum:
		switch {
		case !a.some:
			return va.null, nil
		case m.cols[o.src].GetType() == "BIGINT":
			n, ok := a.isum.int64()
			if !ok {
				return nil, ErrOverflow
			}
			return va.int(n), nil
		}
		return va.double(a.fsum), nil
	case outMin, outMax:
		if a.best == nil {
			return va.null, nil
		}
		return a.best, nil
	case outAvg:
		cnt := a.n.float64()
		if cnt == 0 {
			return va.null, nil
		}
		sum := a.fsum
		if m.cols[o.src].GetType() == "BIGINT" {
			sum = a.isum.float64()
		}
		return va.double(sum / cnt), nil
	}
	return va.null, nil
}

// overflow is the error for output i (select item i, as aggregate
// queries have one output per item) of the group with key values key.
func (m *Merge) overflow(i int, key []*yrdv1.Value) error {
	var group string
	if len(key) > 0 {
		parts := make([]string, len(key))
		for j, v := range key {
			parts[j] = valueText(v)
		}
		group = " in group (" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Errorf("merge: select item %d: %s: the cities' results add up to more than BIGINT holds%s: %w",
		i+1, m.outs[i].text, group, ErrOverflow)
}

// valueText writes a value for a message.
func valueText(v *yrdv1.Value) string {
	switch x := v.GetKind().(type) {
	case *yrdv1.Value_StringValue:
		return "'" + strings.ReplaceAll(x.StringValue, "'", "''") + "'"
	case *yrdv1.Value_IntValue:
		return fmt.Sprint(x.IntValue)
	case *yrdv1.Value_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *yrdv1.Value_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *yrdv1.Value_DateValue:
		return "DATE '" + x.DateValue + "'"
	case *yrdv1.Value_TimestampValue:
		return "TIMESTAMP '" + x.TimestampValue + "'"
	}
	return "NULL"
}

// values allocates result Values in batches; the NULL outputs of one
// result share null.
type values struct {
	null *yrdv1.Value
	vals []yrdv1.Value
	ints []yrdv1.Value_IntValue
	dbls []yrdv1.Value_DoubleValue
}

func newValues(n int) *values {
	return &values{null: &yrdv1.Value{}, vals: make([]yrdv1.Value, 0, n)}
}

func (va *values) next() *yrdv1.Value {
	if len(va.vals) == cap(va.vals) {
		va.vals = make([]yrdv1.Value, 0, max(cap(va.vals), 64))
	}
	va.vals = va.vals[:len(va.vals)+1]
	return &va.vals[len(va.vals)-1]
}

func (va *values) int(n int64) *yrdv1.Value {
	if len(va.ints) == 0 {
		va.ints = make([]yrdv1.Value_IntValue, max(cap(va.vals)/2, 64))
	}
	k := &va.ints[0]
	va.ints = va.ints[1:]
	k.IntValue = n
	v := va.next()
	v.Kind = k
	return v
}

func (va *values) double(f float64) *yrdv1.Value {
	if len(va.dbls) == 0 {
		va.dbls = make([]yrdv1.Value_DoubleValue, max(cap(va.vals)/2, 64))
	}
	k := &va.dbls[0]
	va.dbls = va.dbls[1:]
	k.DoubleValue = f
	v := va.next()
	v.Kind = k
	return v
}
