package querylang

import (
	"slices"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestConditionColumnsInWrittenOrder(t *testing.T) {
	cmp := func(col string) *yrdv1.Expr {
		return &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: col}}}
	}
	e := &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: []*yrdv1.Expr{
		cmp("a"),
		{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: []*yrdv1.Expr{
			{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "b"}}},
			{Node: &yrdv1.Expr_Not{Not: &yrdv1.Expr{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: "c"}}}}},
		}}}},
		{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: "d"}}},
	}}}}
	var got []string
	ConditionColumns(e, func(c string) { got = append(got, c) })
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("columns %v, want %v", got, want)
	}
	ConditionColumns(nil, func(c string) { t.Fatalf("a missing condition reads %q", c) })
}
