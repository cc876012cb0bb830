package sqlq

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Format renders q as canonical query text: keywords in upper case, one
// line, single spaces, names quoted only where they must be, and
// parentheses only where the tree needs them. For every q that Parse
// returned, Parse(Format(q)) equals q.
//
// Format is for people (logs, the audit trail, error reports) and for
// storing a query as text; it is never backend SQL. Parts that a valid
// query cannot have (an unset oneof, an empty list, a NaN) are rendered as
// <...> placeholders, which Parse rejects, so a broken query never reads as
// a different valid one.
func Format(q *yrdv1.Query) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	writeSelectList(&b, q.GetSelect())
	b.WriteString(" FROM ")
	switch src := q.GetSource().(type) {
	case *yrdv1.Query_DatasetId:
		if datasetIDRE.MatchString(src.DatasetId) && !reserved[src.DatasetId] {
			b.WriteString(src.DatasetId)
		} else {
			b.WriteString(quote(src.DatasetId, '"'))
		}
	case *yrdv1.Query_Family:
		b.WriteString("family:")
		b.WriteString(src.Family)
	default:
		b.WriteString("<missing source>")
	}
	if q.GetWhere() != nil {
		b.WriteString(" WHERE ")
		writeExpr(&b, q.GetWhere(), precOr)
	}
	for i, col := range q.GetGroupBy() {
		if i == 0 {
			b.WriteString(" GROUP BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(ident(col))
	}
	writeOrderBy(&b, q)
	if q.GetLimit() > 0 {
		b.WriteString(" LIMIT ")
		b.WriteString(strconv.FormatUint(q.GetLimit(), 10))
	}
	return b.String()
}

// writeSelectList renders the select items, or * for none.
func writeSelectList(b *strings.Builder, items []*yrdv1.SelectItem) {
	if len(items) == 0 {
		b.WriteByte('*')
	}
	for i, item := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		switch it := item.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			b.WriteString(ident(it.Column))
		case *yrdv1.SelectItem_Aggregate:
			writeAggregate(b, it.Aggregate)
		default:
			b.WriteString("<missing select item>")
		}
		if item.GetAlias() != "" {
			b.WriteString(" AS ")
			b.WriteString(ident(item.GetAlias()))
		}
	}
}

// writeOrderBy renders the ORDER BY clause, if q has one.
func writeOrderBy(b *strings.Builder, q *yrdv1.Query) {
	for i, o := range q.GetOrderBy() {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		switch k := o.GetKey().(type) {
		case *yrdv1.OrderItem_Column:
			b.WriteString(ident(k.Column))
		case *yrdv1.OrderItem_SelectIndex:
			writeSelectRef(b, q.GetSelect(), int(k.SelectIndex))
		default:
			b.WriteString("<missing order key>")
		}
		if o.GetDescending() {
			b.WriteString(" DESC")
		}
	}
}

var (
	bareIdentRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	datasetIDRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// ident renders a column name or alias, bare if it reads back as itself.
func ident(s string) string {
	if s == "" {
		return "<missing name>"
	}
	if bareIdentRE.MatchString(s) && !reserved[s] {
		return s
	}
	return quote(s, '"')
}

// quote wraps s in q, doubling any q inside.
func quote(s string, q byte) string {
	qs := string(q)
	return qs + strings.ReplaceAll(s, qs, qs+qs) + qs
}

// writeAggregate renders a call as the table writes it: count(*),
// count(DISTINCT x), sum(x).
func writeAggregate(b *strings.Builder, a *yrdv1.AggregateCall) {
	agg, ok := querylang.AggregateOf(a.GetFunction())
	if !ok {
		b.WriteString("<invalid aggregate function>(")
		b.WriteString(ident(a.GetColumn()))
		b.WriteByte(')')
		return
	}
	b.WriteString(agg.SQL)
	b.WriteByte('(')
	switch {
	case agg.Star(a.GetColumn()):
		b.WriteByte('*')
	case agg.Distinct:
		b.WriteString("DISTINCT ")
		fallthrough
	default:
		b.WriteString(ident(a.GetColumn()))
	}
	b.WriteByte(')')
}

// writeSelectRef renders an ORDER BY reference to select item i: its alias
// if it has one that names it alone, else its 1-based position.
func writeSelectRef(b *strings.Builder, items []*yrdv1.SelectItem, i int) {
	if i < 0 || i >= len(items) {
		b.WriteString("<invalid select index " + strconv.Itoa(i) + ">")
		return
	}
	if a := items[i].GetAlias(); a != "" {
		first := true
		for _, it := range items[:i] {
			first = first && it.GetAlias() != a
		}
		if first {
			b.WriteString(ident(a))
			return
		}
	}
	b.WriteString(strconv.Itoa(i + 1))
}

// Binding strength of a condition's nodes, loosest first.
const (
	precOr = iota
	precAnd
	precNot
)

// writeExpr renders e where the context binds with strength ctx: an operand
// of OR has ctx precAnd, of AND precNot, of NOT precNot. An AND or OR
// directly inside the same operator is parenthesised too, because Parse
// flattens chains and the tree must come back as it was.
func writeExpr(b *strings.Builder, e *yrdv1.Expr, ctx int) {
	e = collapse(e)
	var prec int
	switch e.GetNode().(type) {
	case *yrdv1.Expr_Or:
		prec = precOr
	case *yrdv1.Expr_And:
		prec = precAnd
	default:
		prec = precNot
	}
	if prec < ctx {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch n := e.GetNode().(type) {
	case *yrdv1.Expr_Or:
		writeLogical(b, n.Or, "OR", precAnd)
	case *yrdv1.Expr_And:
		writeLogical(b, n.And, "AND", precNot)
	case *yrdv1.Expr_Not:
		b.WriteString("NOT ")
		writeExpr(b, n.Not, precNot)
	case *yrdv1.Expr_Comparison:
		c := n.Comparison
		b.WriteString(ident(c.GetColumn()))
		b.WriteByte(' ')
		b.WriteString(opText(c.GetOp()))
		b.WriteByte(' ')
		writeLiteral(b, c.GetValue())
	case *yrdv1.Expr_In:
		in := n.In
		b.WriteString(ident(in.GetColumn()))
		if in.GetNegated() {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, v := range in.GetValues() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeLiteral(b, v)
		}
		if len(in.GetValues()) == 0 {
			b.WriteString("<empty list>")
		}
		b.WriteByte(')')
	case *yrdv1.Expr_Between:
		bt := n.Between
		b.WriteString(ident(bt.GetColumn()))
		if bt.GetNegated() {
			b.WriteString(" NOT")
		}
		b.WriteString(" BETWEEN ")
		writeLiteral(b, bt.GetLow())
		b.WriteString(" AND ")
		writeLiteral(b, bt.GetHigh())
	case *yrdv1.Expr_IsNull:
		b.WriteString(ident(n.IsNull.GetColumn()))
		if n.IsNull.GetNegated() {
			b.WriteString(" IS NOT NULL")
		} else {
			b.WriteString(" IS NULL")
		}
	default:
		b.WriteString("<missing condition>")
	}
}

// collapse replaces a one-operand AND or OR by its operand, which means the
// same; Parse never makes one, but a hand-built query might.
func collapse(e *yrdv1.Expr) *yrdv1.Expr {
	for {
		var ops []*yrdv1.Expr
		switch n := e.GetNode().(type) {
		case *yrdv1.Expr_And:
			ops = n.And.GetOperands()
		case *yrdv1.Expr_Or:
			ops = n.Or.GetOperands()
		default:
			return e
		}
		if len(ops) != 1 {
			return e
		}
		e = ops[0]
	}
}

func writeLogical(b *strings.Builder, l *yrdv1.Logical, op string, operandCtx int) {
	if len(l.GetOperands()) == 0 {
		b.WriteString("<empty " + op + ">")
		return
	}
	for i, operand := range l.GetOperands() {
		if i > 0 {
			b.WriteString(" " + op + " ")
		}
		writeExpr(b, operand, operandCtx)
	}
}

func opText(op yrdv1.CompareOp) string {
	if c, ok := querylang.ComparisonOf(op); ok {
		return c.SQL
	}
	return "<invalid operator>"
}

func writeLiteral(b *strings.Builder, l *yrdv1.Literal) {
	switch v := l.GetValue().(type) {
	case *yrdv1.Literal_StringValue:
		b.WriteString(quote(v.StringValue, '\''))
	case *yrdv1.Literal_IntValue:
		b.WriteString(strconv.FormatInt(v.IntValue, 10))
	case *yrdv1.Literal_DoubleValue:
		b.WriteString(formatDouble(v.DoubleValue))
	case *yrdv1.Literal_BoolValue:
		if v.BoolValue {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case *yrdv1.Literal_DateValue:
		b.WriteString("DATE ")
		b.WriteString(quote(v.DateValue, '\''))
	case *yrdv1.Literal_TimestampValue:
		b.WriteString("TIMESTAMP ")
		b.WriteString(quote(v.TimestampValue, '\''))
	default:
		b.WriteString("<missing literal>")
	}
}

// formatDouble renders the shortest text that reads back as exactly f,
// always with a point or an exponent so that it reads back as a double,
// not an integer.
func formatDouble(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "<invalid number " + strconv.FormatFloat(f, 'g', -1, 64) + ">"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
