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
		if o.kind != outColumn {
			// The partial's sum is already clamped or not, as the owner ran it.
			typ = o.agg.ResultType(typ, false)
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
	order := m.sortOrder(recs, keys)
	if m.limit > 0 && uint64(len(order)) > m.limit {
		order = order[:m.limit]
	}
	rows := resultRows(recs, order, len(cols))
	return cols, rows, nil
}

// sortOrder is the order of recs by the sort keys, then (aggregate
// queries) the group key: positions into recs, not records, which are
// cheaper to swap, and the position is the last tie-break, which makes the
// order that of a stable sort.
func (m *Merge) sortOrder(recs []record, keys []sortKey) []int32 {
	order := make([]int32, len(recs))
	for i := range order {
		order[i] = int32(i)
	}
	if len(keys) == 0 && !m.aggregate {
		return order
	}
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
	return order
}

// resultRows are the rows of recs in order, each cut to the ncols result
// columns: a partial row as it came when it has no helper columns, else
// a new row.
func resultRows(recs []record, order []int32, ncols int) []*yrdv1.Row {
	rows := make([]*yrdv1.Row, len(order))
	var fresh []yrdv1.Row // one allocation for the rows made here
	for i, p := range order {
		r := &recs[p]
		if r.row != nil && len(r.vals) == ncols {
			rows[i] = r.row
			continue
		}
		if len(fresh) == 0 {
			fresh = make([]yrdv1.Row, len(order)-i)
		}
		nr := &fresh[0]
		fresh = fresh[1:]
		nr.Values = r.vals[:ncols:ncols]
		rows[i] = nr
	}
	return rows
}
