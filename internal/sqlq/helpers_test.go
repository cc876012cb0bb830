package sqlq

import (
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Constructors that keep the expected messages in the tables readable.

const elderly = "shanghai.civil-affairs.elderly-population"

func fromDS(id string, sel ...*yrdv1.SelectItem) *yrdv1.Query {
	return &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: id}, Select: sel}
}

func fromFamily(id string, sel ...*yrdv1.SelectItem) *yrdv1.Query {
	return &yrdv1.Query{Source: &yrdv1.Query_Family{Family: id}, Select: sel}
}

func where(q *yrdv1.Query, e *yrdv1.Expr) *yrdv1.Query {
	q.Where = e
	return q
}

func colItem(c string) *yrdv1.SelectItem {
	return &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: c}}
}

func aliased(item *yrdv1.SelectItem, alias string) *yrdv1.SelectItem {
	item.Alias = alias
	return item
}

func aggItem(fn yrdv1.AggregateFunction, c string) *yrdv1.SelectItem {
	return &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: fn, Column: c}}}
}

const (
	fnCount         = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT
	fnCountDistinct = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT
	fnSum           = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM
	fnAvg           = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG
	fnMin           = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN
	fnMax           = yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX

	opEQ = yrdv1.CompareOp_COMPARE_OP_EQ
	opNE = yrdv1.CompareOp_COMPARE_OP_NE
	opLT = yrdv1.CompareOp_COMPARE_OP_LT
	opLE = yrdv1.CompareOp_COMPARE_OP_LE
	opGT = yrdv1.CompareOp_COMPARE_OP_GT
	opGE = yrdv1.CompareOp_COMPARE_OP_GE
)

func orderCol(c string, desc bool) *yrdv1.OrderItem {
	return &yrdv1.OrderItem{Key: &yrdv1.OrderItem_Column{Column: c}, Descending: desc}
}

func orderIdx(i int32, desc bool) *yrdv1.OrderItem {
	return &yrdv1.OrderItem{Key: &yrdv1.OrderItem_SelectIndex{SelectIndex: i}, Descending: desc}
}

func str(s string) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_StringValue{StringValue: s}}
}

func num(n int64) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: n}}
}

func dbl(f float64) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_DoubleValue{DoubleValue: f}}
}

func boolean(b bool) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_BoolValue{BoolValue: b}}
}

func date(s string) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_DateValue{DateValue: s}}
}

func ts(s string) *yrdv1.Literal {
	return &yrdv1.Literal{Value: &yrdv1.Literal_TimestampValue{TimestampValue: s}}
}

func cmp(c string, op yrdv1.CompareOp, v *yrdv1.Literal) *yrdv1.Expr {
	return comparison(c, op, v)
}

func and(ops ...*yrdv1.Expr) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: ops}}}
}

func or(ops ...*yrdv1.Expr) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: ops}}}
}

func not(e *yrdv1.Expr) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_Not{Not: e}}
}

func in(c string, negated bool, vs ...*yrdv1.Literal) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: c, Values: vs, Negated: negated}}}
}

func between(c string, negated bool, lo, hi *yrdv1.Literal) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: c, Low: lo, High: hi, Negated: negated}}}
}

func isNull(c string, negated bool) *yrdv1.Expr {
	return &yrdv1.Expr{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: c, Negated: negated}}}
}
