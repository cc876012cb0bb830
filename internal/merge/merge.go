package merge

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Columns checks one owner's partial result columns against the plan and
// returns the merged result's columns: one per requester select item (or,
// under SELECT *, the owner's columns), named as the package doc says,
// helper columns left out. Types are the requester's: count is BIGINT,
// avg DOUBLE, sum, min, max and columns keep the partial's type. Each
// column keeps the partial column's treatment (Result reports, for a
// column the owners treated differently, the most protective one).
func (m *Merge) Columns(partial []*yrdv1.ResultColumn) ([]*yrdv1.ResultColumn, error) {
	if err := m.check(partial); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return m.final(partial), nil
}

// check checks partial columns against the plan.
func (m *Merge) check(cols []*yrdv1.ResultColumn) error {
	if m.star {
		if len(cols) == 0 {
			return errors.New("no columns")
		}
	} else if len(cols) != len(m.expect) {
		return fmt.Errorf("%d columns, want %d (the partial query's)", len(cols), len(m.expect))
	}
	for i, c := range cols {
		if c == nil {
			return fmt.Errorf("column %d is nil", i+1)
		}
		if _, ok := typeKind(c.GetType()); !ok {
			return fmt.Errorf("column %d (%s): type %q is not a result type (BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE or TIMESTAMP)", i+1, c.GetName(), c.GetType())
		}
		if m.star {
			continue
		}
		e := m.expect[i]
		if e.name != "" && c.GetName() != e.name {
			return fmt.Errorf("column %d is named %q, want %q for %s", i+1, c.GetName(), e.name, e.what)
		}
		if e.types != "" && !slices.Contains(strings.Split(e.types, "|"), c.GetType()) {
			return fmt.Errorf("column %d (%s) is %s, want %s for %s", i+1, c.GetName(), c.GetType(), strings.ReplaceAll(e.types, "|", " or "), e.what)
		}
	}
	_, err := m.resolveOrder(cols)
	return err
}

// resolveOrder returns the sort keys with SELECT * keys resolved against
// the partial columns.
func (m *Merge) resolveOrder(cols []*yrdv1.ResultColumn) ([]sortKey, error) {
	if !m.star {
		return m.order, nil
	}
	keys := slices.Clone(m.order)
	for j, k := range keys {
		if k.col == "" {
			if k.idx >= len(cols) {
				return nil, fmt.Errorf("ORDER BY item %d: select position %d is beyond the %d columns", j+1, k.idx+1, len(cols))
			}
			continue
		}
		keys[j].idx = slices.IndexFunc(cols, func(c *yrdv1.ResultColumn) bool { return c.GetName() == k.col })
		if keys[j].idx < 0 {
			return nil, fmt.Errorf("ORDER BY item %d: column %s is not in the result", j+1, ident(k.col))
		}
	}
	return keys, nil
}

// final builds the merged result's columns from checked partial ones.
func (m *Merge) final(cols []*yrdv1.ResultColumn) []*yrdv1.ResultColumn {
	if m.star {
		out := make([]*yrdv1.ResultColumn, len(cols))
		for i, c := range cols {
			out[i] = proto.Clone(c).(*yrdv1.ResultColumn)
		}
		return out
	}
	out := make([]*yrdv1.ResultColumn, len(m.outs))
	for i, o := range m.outs {
		src := cols[o.src]
		typ := src.GetType()
		switch o.kind {
		case outCount:
			typ = "BIGINT"
		case outAvg:
			typ = "DOUBLE"
		}
		out[i] = &yrdv1.ResultColumn{Name: o.name, Type: typ, Treatment: src.GetTreatment()}
	}
	return out
}

// protection ranks treatments, the most protective highest.
func protection(t yrdv1.ColumnTreatment) int {
	switch t {
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW:
		return 1
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED:
		return 2
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED:
		return 3
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD:
		return 4
	}
	return 0
}

// Add adds one owner's partial result: the columns and rows it released
// for the query [Merge.Partial] made. Call it once per dataset that
// answered; one that was denied or failed is simply not added. owner
// labels the part, in messages and in the order of row query results:
// the owner city, or the dataset id where a city may own several
// datasets of the family. It fails, adding nothing, if owner is empty or
// already added (a part counted twice would be wrong), if the
// columns do not fit the partial query (count, names of aliased and
// helper columns, types) or differ in type from the owner added first
// (whose columns set the types; a part whose owner pseudonymises a
// column another shows raw cannot be merged with it), or if a row does
// not fit the columns. NULL is a Value with no kind set; nil rows and
// values are refused.
//
// Add keeps the rows (not a copy of the messages), and Result's rows may
// share Row and Value messages with them: the caller must not change them
// afterwards. Add is not safe for concurrent use.
func (m *Merge) Add(owner string, cols []*yrdv1.ResultColumn, rows []*yrdv1.Row) error {
	if owner == "" {
		return errors.New("merge: add: empty owner")
	}
	if m.seen[owner] {
		return fmt.Errorf("merge: %s: result added twice", owner)
	}
	if m.single && len(m.seen) > 0 {
		return fmt.Errorf("merge: %s: a single-dataset plan takes one part, and %s's is in", owner, m.first)
	}
	if err := m.check(cols); err != nil {
		return fmt.Errorf("merge: %s: %w", owner, err)
	}
	if m.cols != nil {
		if len(cols) != len(m.cols) {
			return fmt.Errorf("merge: %s: %d columns, but %s's result has %d", owner, len(cols), m.first, len(m.cols))
		}
		for i, c := range cols {
			f := m.cols[i]
			if c.GetType() != f.GetType() {
				return fmt.Errorf("merge: %s: column %d (%s) is %s (%v), but %s's is %s (%v); results of owners whose policies treat a column differently cannot be merged",
					owner, i+1, c.GetName(), c.GetType(), c.GetTreatment(), m.first, f.GetType(), f.GetTreatment())
			}
			if (m.star || m.expect[i].name != "") && c.GetName() != f.GetName() {
				return fmt.Errorf("merge: %s: column %d is named %q, but %s's is %q", owner, i+1, c.GetName(), m.first, f.GetName())
			}
		}
	}
	kinds := make([]kind, len(cols))
	for i, c := range cols {
		kinds[i], _ = typeKind(c.GetType())
	}
	for r, row := range rows {
		if row == nil {
			return fmt.Errorf("merge: %s: row %d is nil", owner, r+1)
		}
		vals := row.GetValues()
		if len(vals) != len(cols) {
			return fmt.Errorf("merge: %s: row %d has %d values for %d columns", owner, r+1, len(vals), len(cols))
		}
		for i, v := range vals {
			if v == nil {
				return fmt.Errorf("merge: %s: row %d, column %d (%s): nil value (NULL is an empty Value)", owner, r+1, i+1, cols[i].GetName())
			}
			if k := kindOf(v); k != kNull && k != kinds[i] {
				return fmt.Errorf("merge: %s: row %d, column %d (%s): a %s value in a %s column", owner, r+1, i+1, cols[i].GetName(), kindName(k), cols[i].GetType())
			}
		}
	}

	if m.cols == nil {
		m.cols = make([]*yrdv1.ResultColumn, len(cols))
		for i, c := range cols {
			m.cols[i] = proto.Clone(c).(*yrdv1.ResultColumn)
		}
		m.first = owner
	} else {
		for i, c := range cols {
			if protection(c.GetTreatment()) > protection(m.cols[i].GetTreatment()) {
				m.cols[i].Treatment = c.GetTreatment()
			}
		}
	}
	m.seen[owner] = true
	m.parts = append(m.parts, part{owner: owner, rows: slices.Clone(rows)})
	return nil
}

func kindName(k kind) string {
	return [...]string{"NULL", "string", "int", "double", "bool", "date", "timestamp"}[k]
}

// Result returns the merged result: its columns (see [Merge.Columns])
// and rows, merged as the package doc describes, in order and cut to the
// query's LIMIT. It takes the parts in the order of their owner labels,
// so the result does not depend on the order of the Add calls. With no
// part added it returns no columns and no rows, as there are no column
// types to give.
// It fails only when an integer sum or count overflows BIGINT (the error
// wraps [ErrOverflow]). Result may be called again, also after more Adds.
func (m *Merge) Result() ([]*yrdv1.ResultColumn, []*yrdv1.Row, error) {
	if len(m.parts) == 0 {
		return nil, nil, nil
	}
	cols := m.final(m.cols)
	keys, err := m.resolveOrder(m.cols)
	if err != nil {
		return nil, nil, fmt.Errorf("merge: %w", err) // unreachable: Add checked the columns
	}
	parts := slices.SortedFunc(slices.Values(m.parts), func(a, b part) int { return strings.Compare(a.owner, b.owner) })
	var recs []record
	if m.aggregate {
		if recs, err = m.groups(parts); err != nil {
			return nil, nil, err
		}
	} else {
		n := 0
		for _, p := range parts {
			n += len(p.rows)
		}
		recs = make([]record, 0, n)
		for _, p := range parts {
			for _, r := range p.rows {
				recs = append(recs, record{row: r, vals: r.GetValues()})
			}
		}
	}
	// Sort positions, not records: cheaper to swap, and the position is
	// the last tie-break, which makes the order that of a stable sort.
	order := make([]int32, len(recs))
	for i := range order {
		order[i] = int32(i)
	}
	if len(keys) > 0 || m.aggregate {
		slices.SortFunc(order, func(i, j int32) int {
			a, b := &recs[i], &recs[j]
			for _, k := range keys {
				var x, y *yrdv1.Value
				if k.fromKey {
					x, y = a.key[k.idx], b.key[k.idx]
				} else {
					x, y = a.vals[k.idx], b.vals[k.idx]
				}
				if c := compareNullsLast(x, y, k.desc); c != 0 {
					return c
				}
			}
			for g := range a.key {
				if c := compareNullsLast(a.key[g], b.key[g], false); c != 0 {
					return c
				}
			}
			return int(i - j)
		})
	}
	if m.limit > 0 && uint64(len(order)) > m.limit {
		order = order[:m.limit]
	}
	rows := make([]*yrdv1.Row, len(order))
	var fresh []yrdv1.Row // one allocation for the rows made here
	for i, p := range order {
		r := &recs[p]
		if r.row != nil && len(r.vals) == len(cols) {
			rows[i] = r.row
			continue
		}
		if len(fresh) == 0 {
			fresh = make([]yrdv1.Row, len(order)-i)
		}
		nr := &fresh[0]
		fresh = fresh[1:]
		nr.Values = r.vals[:len(cols):len(cols)]
		rows[i] = nr
	}
	return cols, rows, nil
}

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
	nk, no := len(m.groupSrc), len(m.outs)
	most := 0 // a size hint: one part's rows are distinct groups
	for _, p := range parts {
		most = max(most, len(p.rows))
	}
	index := make(map[string]int, most)
	keys := make([]*yrdv1.Value, 0, most*nk)
	// Each group's accumulators are a slice of a slab; slabs are never
	// copied as groups are added.
	groupAccs := make([][]acc, 0, most)
	var slab []acc
	var buf []byte
	for _, p := range parts {
		for _, row := range p.rows {
			vals := row.GetValues()
			buf = buf[:0]
			for _, s := range m.groupSrc {
				buf = appendKey(buf, vals[s])
			}
			g, ok := index[string(buf)]
			if !ok {
				g = len(index)
				index[string(buf)] = g
				for _, s := range m.groupSrc {
					keys = append(keys, vals[s])
				}
				if len(slab) < no {
					slab = make([]acc, no*max(most-g, 64))
				}
				groupAccs = append(groupAccs, slab[:no:no])
				slab = slab[no:]
			}
			ga := groupAccs[g]
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
	}

	null := &yrdv1.Value{}
	fresh := 0 // outputs whose values are made here
	for _, o := range m.outs {
		if o.kind == outCount || o.kind == outSum || o.kind == outAvg {
			fresh++
		}
	}
	va := newValues(len(index) * fresh)
	recs := make([]record, len(index))
	vals := make([]*yrdv1.Value, len(index)*no)
	for g := range recs {
		key := keys[g*nk : (g+1)*nk : (g+1)*nk]
		out := vals[g*no : (g+1)*no : (g+1)*no]
		for i, o := range m.outs {
			a := &groupAccs[g][i]
			switch o.kind {
			case outColumn:
				out[i] = key[o.gpos]
			case outCount:
				n, ok := a.isum.int64()
				if !ok {
					return nil, m.overflow(i, key)
				}
				out[i] = va.int(n)
			case outSum:
				switch {
				case !a.some:
					out[i] = null
				case m.cols[o.src].GetType() == "BIGINT":
					n, ok := a.isum.int64()
					if !ok {
						return nil, m.overflow(i, key)
					}
					out[i] = va.int(n)
				default:
					out[i] = va.double(a.fsum)
				}
			case outMin, outMax:
				out[i] = a.best
				if out[i] == nil {
					out[i] = null
				}
			case outAvg:
				cnt := a.n.float64()
				if cnt == 0 {
					out[i] = null
					break
				}
				sum := a.fsum
				if m.cols[o.src].GetType() == "BIGINT" {
					sum = a.isum.float64()
				}
				out[i] = va.double(sum / cnt)
			}
		}
		recs[g] = record{vals: out, key: key}
	}
	return recs, nil
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

// values allocates result Values in batches.
type values struct {
	vals []yrdv1.Value
	ints []yrdv1.Value_IntValue
	dbls []yrdv1.Value_DoubleValue
}

func newValues(n int) *values {
	return &values{vals: make([]yrdv1.Value, 0, n)}
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
