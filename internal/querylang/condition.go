package querylang

import yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"

// ConditionColumns calls f for every column condition e reads, in the
// order they are written: the policy decides on them (the owner's access
// request) and the home node checks them against the schema (sqlq).
func ConditionColumns(e *yrdv1.Expr, f func(column string)) {
	switch x := e.GetNode().(type) {
	case *yrdv1.Expr_Comparison:
		f(x.Comparison.GetColumn())
	case *yrdv1.Expr_And:
		for _, o := range x.And.GetOperands() {
			ConditionColumns(o, f)
		}
	case *yrdv1.Expr_Or:
		for _, o := range x.Or.GetOperands() {
			ConditionColumns(o, f)
		}
	case *yrdv1.Expr_Not:
		ConditionColumns(x.Not, f)
	case *yrdv1.Expr_In:
		f(x.In.GetColumn())
	case *yrdv1.Expr_Between:
		f(x.Between.GetColumn())
	case *yrdv1.Expr_IsNull:
		f(x.IsNull.GetColumn())
	}
}
