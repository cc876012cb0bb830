package sqlq

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// patternWords start pattern matches, which conditions do not have.
var patternWords = map[string]bool{"like": true, "ilike": true, "similar": true, "regexp": true, "rlike": true, "glob": true, "match": true}

// Conditions. Precedence, loosest first: OR, AND, NOT. A chain of one
// operator becomes one Logical node; parentheses nest, so the tree keeps the
// grouping that was written.

func (p *parser) or(depth int) *yrdv1.Expr {
	first := p.and(depth)
	if !p.isKw("or") {
		return first
	}
	ops := []*yrdv1.Expr{first}
	for p.isKw("or") {
		p.advance()
		ops = append(ops, p.and(depth))
	}
	return &yrdv1.Expr{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: ops}}}
}

func (p *parser) and(depth int) *yrdv1.Expr {
	first := p.unary(depth)
	if !p.isKw("and") {
		return first
	}
	ops := []*yrdv1.Expr{first}
	for p.isKw("and") {
		p.advance()
		ops = append(ops, p.unary(depth))
	}
	return &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: ops}}}
}

func (p *parser) deeper(depth int) int {
	if depth >= MaxDepth {
		p.fail(p.tok, "the condition nests more than %d levels deep (NOT and parentheses)", MaxDepth)
	}
	return depth + 1
}

func (p *parser) unary(depth int) *yrdv1.Expr {
	switch {
	case p.isKw("not"):
		depth = p.deeper(depth)
		p.advance()
		return &yrdv1.Expr{Node: &yrdv1.Expr_Not{Not: p.unary(depth)}}
	case p.isPunct("("):
		depth = p.deeper(depth)
		p.advance()
		if p.isKw("select") {
			p.fail(p.tok, "unsupported subquery; %s", oneSource)
		}
		e := p.or(depth)
		p.expectPunct(")", "AND, OR or ')'")
		return e
	}
	return p.predicate()
}

// operand is one side of a comparison: a column, a literal, or NULL (which
// is only ever an error).
type operand struct {
	column string
	lit    *yrdv1.Literal
	null   bool
	tok    token
}

func (o operand) isColumn() bool { return o.lit == nil && !o.null }

const whereHint = "WHERE compares columns with literals"

// operand parses a column, a literal or NULL; want says what is expected,
// for the message if it is none of them.
func (p *parser) operand(want string) operand {
	t := p.tok
	switch t.kind {
	case tIdent:
		switch t.val {
		case "true", "false":
			p.advance()
			return operand{lit: &yrdv1.Literal{Value: &yrdv1.Literal_BoolValue{BoolValue: t.val == "true"}}, tok: t}
		case "null":
			p.advance()
			return operand{null: true, tok: t}
		case "case":
			p.fail(t, "unsupported CASE expression; %s", whereHint)
		}
		if reserved[t.val] {
			p.expected(want)
		}
		p.advance()
		if p.tok.kind == tString {
			return operand{lit: p.typedLiteral(t), tok: t}
		}
		if p.isPunct("(") {
			if _, ok := querylang.AggregateWritten(t.val, false); ok {
				p.fail(t, "aggregates are not allowed in WHERE, and HAVING is not supported; %s", whereHint)
			}
			p.unsupportedFunction(t, whereHint)
		}
		p.ref(t)
		return operand{column: t.val, tok: t}
	case tQIdent:
		p.advance()
		p.ref(t)
		return operand{column: t.val, tok: t}
	case tString:
		p.advance()
		return operand{lit: &yrdv1.Literal{Value: &yrdv1.Literal_StringValue{StringValue: t.val}}, tok: t}
	case tNumber:
		p.advance()
		return operand{lit: p.number("", t), tok: t}
	case tPunct:
		switch t.val {
		case "-", "+":
			p.advance()
			if p.tok.kind != tNumber {
				p.expected("a number after " + show(t.val))
			}
			n := p.tok
			p.advance()
			sign := t.val
			if sign == "+" {
				sign = ""
			}
			return operand{lit: p.number(sign, n), tok: t}
		case "(":
			p.advance()
			if p.isKw("select") {
				p.fail(p.tok, "unsupported subquery; %s", oneSource)
			}
			p.fail(t, "expected %s, found '('", want)
		case "?", "$", ":", "@":
			p.fail(t, "query parameters are not supported; write the value as a literal")
		}
	}
	p.expected(want)
	panic("unreachable")
}

// typedLiteral parses DATE '...' or TIMESTAMP '...'; the type name has been
// consumed and the current token is the string. The value is kept as
// written once it is known to be valid, so that nothing is lost or
// reinterpreted between the requester and the owner's engine.
func (p *parser) typedLiteral(typ token) *yrdv1.Literal {
	s := p.tok
	p.advance()
	switch typ.val {
	case "date":
		if _, err := time.Parse(time.DateOnly, s.val); err != nil {
			p.fail(s, "invalid DATE %s, want YYYY-MM-DD, e.g. DATE '2024-01-31'", oneLine(s.raw))
		}
		return &yrdv1.Literal{Value: &yrdv1.Literal_DateValue{DateValue: s.val}}
	case "timestamp":
		if _, err := time.Parse(time.RFC3339, s.val); err != nil {
			p.fail(s, "invalid TIMESTAMP %s, want RFC 3339 with an offset, e.g. TIMESTAMP '2024-01-31T08:00:00+08:00'", oneLine(s.raw))
		}
		return &yrdv1.Literal{Value: &yrdv1.Literal_TimestampValue{TimestampValue: s.val}}
	}
	p.fail(typ, "unsupported typed literal %s; only DATE '...' and TIMESTAMP '...' are supported", strings.ToUpper(typ.raw))
	panic("unreachable")
}

// number converts a number token, with its sign, to an integer literal if
// it has neither a point nor an exponent, else to a double.
func (p *parser) number(sign string, t token) *yrdv1.Literal {
	text := sign + t.val
	if !strings.ContainsAny(t.val, ".eE") {
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			p.fail(t, "integer %s is out of the 64-bit range", text)
		}
		return &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: v}}
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		p.fail(t, "number %s is out of the range of a double", text)
	}
	return &yrdv1.Literal{Value: &yrdv1.Literal_DoubleValue{DoubleValue: v}}
}

// literal parses an operand that must be a literal (IN lists, BETWEEN).
func (p *parser) literal(where string) *yrdv1.Literal {
	o := p.operand("a literal " + where)
	switch {
	case o.null:
		p.fail(o.tok, "NULL is not allowed %s; test with IS NULL", where)
	case o.isColumn():
		p.fail(o.tok, "expected a literal %s, found column %s; %s", where, show(o.column), whereHint)
	}
	return o.lit
}

func (p *parser) predicate() *yrdv1.Expr {
	left := p.operand("a column name or a literal")
	if !left.isColumn() {
		return p.literalFirst(left)
	}
	col := left.column
	t := p.tok
	if t.kind == tPunct {
		if cmp, ok := querylang.ComparisonWritten(t.val); ok {
			p.advance()
			right := p.operand("a literal")
			switch {
			case right.null:
				p.fail(right.tok, "a comparison with NULL is never true; use IS NULL or IS NOT NULL")
			case right.isColumn():
				p.fail(right.tok, "comparing two columns is not supported; %s", whereHint)
			}
			p.afterOperand(whereHint)
			return comparison(col, cmp.Op, right.lit)
		}
	}
	switch {
	case p.isKw("is"):
		p.advance()
		neg := p.isKw("not")
		if neg {
			p.advance()
		}
		if !p.isKw("null") {
			p.expected("NULL (only IS NULL and IS NOT NULL are supported)")
		}
		p.advance()
		return &yrdv1.Expr{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: col, Negated: neg}}}
	case p.isKw("not"):
		p.advance()
		switch {
		case p.isKw("in"):
			return p.in(col, true)
		case p.isKw("between"):
			return p.between(col, true)
		case p.tok.kind == tIdent && patternWords[p.tok.val]:
			p.unsupportedPattern()
		}
		p.expected("IN or BETWEEN after NOT")
	case p.isKw("in"):
		return p.in(col, false)
	case p.isKw("between"):
		return p.between(col, false)
	case t.kind == tIdent && patternWords[t.val]:
		p.unsupportedPattern()
	case t.kind == tPunct && (t.val == "~" || t.val == "!~"):
		p.unsupportedPattern()
	}
	p.afterOperand(whereHint)
	p.expected(fmt.Sprintf("a comparison operator, IN, BETWEEN or IS after column %s", show(col)))
	panic("unreachable")
}

func (p *parser) unsupportedPattern() {
	p.fail(p.tok, "unsupported pattern match %s; compare with =, IN or BETWEEN", strings.ToUpper(p.tok.raw))
}

// literalFirst handles a condition that starts with a literal: only
// "literal op column" is allowed, and it is turned round.
func (p *parser) literalFirst(left operand) *yrdv1.Expr {
	if left.null {
		p.fail(left.tok, "expected a column name, found 'NULL'; test a column with IS NULL")
	}
	t := p.tok
	cmp, ok := querylang.ComparisonWritten(t.val)
	if t.kind != tPunct || !ok {
		switch {
		case p.isKw("in"), p.isKw("between"), p.isKw("is"), p.isKw("not"):
			p.fail(left.tok, "expected a column name, found %s; IN, BETWEEN and IS need the column on the left", describe(left.tok))
		case t.kind == tPunct && arithmetic[t.val]:
			p.fail(t, "unsupported arithmetic operator %s; %s", show(t.val), whereHint)
		}
		p.expected("a comparison operator")
	}
	p.advance()
	right := p.operand("a column name")
	switch {
	case right.null:
		p.fail(right.tok, "a comparison with NULL is never true; use IS NULL or IS NOT NULL")
	case !right.isColumn():
		p.fail(right.tok, "comparing two literals is not supported; a comparison needs a column on one side")
	}
	p.afterOperand(whereHint)
	return comparison(right.column, cmp.Flipped, left.lit)
}

func comparison(col string, op yrdv1.CompareOp, v *yrdv1.Literal) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: col, Op: op, Value: v}}}
}

func (p *parser) in(col string, neg bool) *yrdv1.Expr {
	p.advance() // IN
	if !p.isPunct("(") {
		p.expected("'(' after IN")
	}
	p.advance()
	if p.isKw("select") {
		p.fail(p.tok, "unsupported subquery; %s", oneSource)
	}
	list := &yrdv1.InList{Column: col, Negated: neg}
	for {
		list.Values = append(list.Values, p.literal("in an IN list"))
		if p.isPunct(")") {
			p.advance()
			return &yrdv1.Expr{Node: &yrdv1.Expr_In{In: list}}
		}
		if !p.isPunct(",") {
			p.expected("',' or ')' in the IN list")
		}
		p.advance()
	}
}

func (p *parser) between(col string, neg bool) *yrdv1.Expr {
	p.advance() // BETWEEN
	b := &yrdv1.Between{Column: col, Negated: neg}
	b.Low = p.literal("in BETWEEN")
	p.expectKw("and")
	b.High = p.literal("in BETWEEN")
	p.afterOperand(whereHint)
	return &yrdv1.Expr{Node: &yrdv1.Expr_Between{Between: b}}
}
