package sqlq

import (
	"fmt"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// ColumnRef is a column a query reads and, for a query text, where the
// text names it (Line and Column 1-based, in runes; 0 without a text).
type ColumnRef struct {
	Name         string
	Line, Column int
}

// String names the column and its position, as error messages put it:
// "distrct at line 1, column 62".
func (r ColumnRef) String() string {
	if r.Line == 0 {
		return r.Name
	}
	return fmt.Sprintf("%s at line %d, column %d", r.Name, r.Line, r.Column)
}

func (p *parser) ref(t token) {
	p.refs = append(p.refs, ColumnRef{Name: t.val, Line: t.line, Column: t.col})
}

// Columns lists the columns q reads in the order a query text names them
// (select list, WHERE, GROUP BY, ORDER BY), without positions: for a
// structured query, which has no text.
func Columns(q *yrdv1.Query) []ColumnRef {
	var refs []ColumnRef
	add := func(name string) {
		if name != "" {
			refs = append(refs, ColumnRef{Name: name})
		}
	}
	for _, it := range q.GetSelect() {
		add(it.GetColumn())
		add(it.GetAggregate().GetColumn())
	}
	querylang.ConditionColumns(q.GetWhere(), add)
	for _, g := range q.GetGroupBy() {
		add(g)
	}
	for _, o := range q.GetOrderBy() {
		add(o.GetColumn())
	}
	return refs
}
