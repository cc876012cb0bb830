package connector

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// maxExprDepth bounds the filter tree, so a hostile query cannot exhaust
// the stack here or in DuckDB's planner.
const maxExprDepth = 64

// expr compiles a filter. Filters read raw values inside the node; what
// a filter may reveal is the policy's call (it sees filter_columns), but
// a withheld column stays unusable here too.
func (c *compiler) expr(e *yrdv1.Expr, depth int) (string, error) {
	if depth > maxExprDepth {
		return "", fmt.Errorf("connector: filter nested deeper than %d", maxExprDepth)
	}
	switch n := e.GetNode().(type) {
	case *yrdv1.Expr_Comparison:
		col, err := c.filterColumn(n.Comparison.GetColumn())
		if err != nil {
			return "", err
		}
		op, ok := querylang.ComparisonOf(n.Comparison.GetOp())
		if !ok {
			return "", fmt.Errorf("connector: column %q: unknown comparison %v", col.GetName(), n.Comparison.GetOp())
		}
		p, err := c.literal(col, n.Comparison.GetValue())
		if err != nil {
			return "", err
		}
		return c.id(col.GetName()) + " " + op.SQL + " " + p, nil
	case *yrdv1.Expr_And:
		return c.logical(n.And, " AND ", depth)
	case *yrdv1.Expr_Or:
		return c.logical(n.Or, " OR ", depth)
	case *yrdv1.Expr_Not:
		inner, err := c.expr(n.Not, depth+1)
		if err != nil {
			return "", err
		}
		return "(NOT " + inner + ")", nil
	case *yrdv1.Expr_In:
		col, err := c.filterColumn(n.In.GetColumn())
		if err != nil {
			return "", err
		}
		if len(n.In.GetValues()) == 0 {
			return "", fmt.Errorf("connector: column %q: empty IN list", col.GetName())
		}
		ps := make([]string, len(n.In.GetValues()))
		for i, v := range n.In.GetValues() {
			if ps[i], err = c.literal(col, v); err != nil {
				return "", err
			}
		}
		op := " IN ("
		if n.In.GetNegated() {
			op = " NOT IN ("
		}
		return "(" + c.id(col.GetName()) + op + strings.Join(ps, ", ") + "))", nil
	case *yrdv1.Expr_Between:
		col, err := c.filterColumn(n.Between.GetColumn())
		if err != nil {
			return "", err
		}
		lo, err := c.literal(col, n.Between.GetLow())
		if err != nil {
			return "", err
		}
		hi, err := c.literal(col, n.Between.GetHigh())
		if err != nil {
			return "", err
		}
		op := " BETWEEN "
		if n.Between.GetNegated() {
			op = " NOT BETWEEN "
		}
		return "(" + c.id(col.GetName()) + op + lo + " AND " + hi + ")", nil
	case *yrdv1.Expr_IsNull:
		col, err := c.filterColumn(n.IsNull.GetColumn())
		if err != nil {
			return "", err
		}
		if n.IsNull.GetNegated() {
			return "(" + c.id(col.GetName()) + " IS NOT NULL)", nil
		}
		return "(" + c.id(col.GetName()) + " IS NULL)", nil
	}
	return "", errors.New("connector: empty filter expression")
}

func (c *compiler) logical(l *yrdv1.Logical, op string, depth int) (string, error) {
	if len(l.GetOperands()) == 0 {
		return "", errors.New("connector: AND/OR without operands")
	}
	parts := make([]string, len(l.GetOperands()))
	for i, o := range l.GetOperands() {
		s, err := c.expr(o, depth+1)
		if err != nil {
			return "", err
		}
		parts[i] = s
	}
	return "(" + strings.Join(parts, op) + ")", nil
}

func (c *compiler) filterColumn(name string) (*yrdv1.Column, error) {
	return c.column(name, "WHERE")
}

// literal binds v as a parameter of the Go type matching the column's
// catalog type, rejecting combinations that DuckDB would only fail on (or
// silently coerce) at run time. Dates and timestamps are validated here
// and bound as canonical text under an explicit CAST, so the driver's
// time zone handling cannot shift them.
func (c *compiler) literal(col *yrdv1.Column, v *yrdv1.Literal) (string, error) {
	typ := strings.ToUpper(col.GetType())
	bad := func() (string, error) {
		return "", fmt.Errorf("connector: column %q (%s): literal of the wrong type", col.GetName(), typ)
	}
	switch x := v.GetValue().(type) {
	case *yrdv1.Literal_StringValue:
		if typ != "VARCHAR" {
			return bad()
		}
		return c.bind(x.StringValue), nil
	case *yrdv1.Literal_IntValue:
		switch typ {
		case "INTEGER", "BIGINT":
			return c.bind(x.IntValue), nil
		case "DOUBLE", "DECIMAL":
			return c.bind(float64(x.IntValue)), nil
		}
		return bad()
	case *yrdv1.Literal_DoubleValue:
		if typ != "DOUBLE" && typ != "DECIMAL" && typ != "INTEGER" && typ != "BIGINT" {
			return bad()
		}
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return "", fmt.Errorf("connector: column %q: non-finite number", col.GetName())
		}
		return c.bind(x.DoubleValue), nil
	case *yrdv1.Literal_BoolValue:
		if typ != "BOOLEAN" {
			return bad()
		}
		return c.bind(x.BoolValue), nil
	case *yrdv1.Literal_DateValue:
		d, err := time.Parse(time.DateOnly, x.DateValue)
		if err != nil {
			return "", fmt.Errorf("connector: column %q: bad date literal", col.GetName())
		}
		switch typ {
		case "DATE":
			return cast(c.dl, c.bind(d.Format(time.DateOnly)), "DATE"), nil
		case "TIMESTAMP":
			return cast(c.dl, c.bind(d.Format(time.DateOnly)), "TIMESTAMP"), nil
		}
		return bad()
	case *yrdv1.Literal_TimestampValue:
		t, err := time.Parse(time.RFC3339Nano, x.TimestampValue)
		if err != nil {
			return "", fmt.Errorf("connector: column %q: bad timestamp literal", col.GetName())
		}
		if typ != "TIMESTAMP" && typ != "DATE" {
			return bad()
		}
		// Catalog timestamps are instants in UTC, as the generator and
		// loaders write them.
		return cast(c.dl, c.bind(t.UTC().Format("2006-01-02 15:04:05.999999")), typ), nil
	}
	return "", fmt.Errorf("connector: column %q: empty literal", col.GetName())
}
