package node

import (
	"strings"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// accessFor describes what q reads, in the form the policy decides on.
func accessFor(q *yrdv1.Query, purpose string) *yrdv1.AccessRequest {
	a := &yrdv1.AccessRequest{DatasetId: q.GetDatasetId(), Purpose: purpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS,
		GroupBy: q.GetGroupBy()}
	seen := map[string]bool{}
	for _, it := range q.GetSelect() {
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			if !seen[x.Column] {
				seen[x.Column] = true
				a.Columns = append(a.Columns, x.Column)
			}
		case *yrdv1.SelectItem_Aggregate:
			a.ResultForm = yrdv1.ResultForm_RESULT_FORM_AGGREGATES
			a.Aggregates = append(a.Aggregates, &yrdv1.Aggregate{Function: aggregateName(x.Aggregate.GetFunction()), Column: x.Aggregate.GetColumn()})
		}
	}
	if len(q.GetGroupBy()) > 0 {
		a.ResultForm = yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	}
	filters := map[string]bool{}
	walkColumns(q.GetWhere(), func(c string) {
		if !filters[c] {
			filters[c] = true
			a.FilterColumns = append(a.FilterColumns, c)
		}
	})
	for _, o := range q.GetOrderBy() {
		switch k := o.GetKey().(type) {
		case *yrdv1.OrderItem_Column:
			a.OrderBy = append(a.OrderBy, k.Column)
		case *yrdv1.OrderItem_SelectIndex:
			// Ordering by an aggregate reads the aggregate, already listed;
			// ordering by a selected column orders by that column.
			if i := int(k.SelectIndex); i >= 0 && i < len(q.GetSelect()) {
				if c := q.GetSelect()[i].GetColumn(); c != "" {
					a.OrderBy = append(a.OrderBy, c)
				}
			}
		}
	}
	return a
}

// planDecision is dec as the planner needs it. The policy judged every
// column the query filters on (accessFor lists them as filter columns: a
// direct identifier, a personal column across the border or a column a row
// result does not show raw is denied), but the decision lists only the
// columns the result shows, and the planner withholds every column the
// decision does not mention. A filter column the decision does not mention
// is therefore added as RAW: the plan compares its raw values inside the
// owner's query and never selects it into the result. Columns the decision
// mentions keep their treatment, so an explicitly withheld column stays
// unusable in a filter too.
func planDecision(dec *yrdv1.Decision, access *yrdv1.AccessRequest) *yrdv1.Decision {
	listed := map[string]bool{}
	for _, c := range dec.GetColumns() {
		listed[c.GetColumn()] = true
	}
	var extra []*yrdv1.ColumnDecision
	for _, c := range access.GetFilterColumns() {
		if !listed[c] {
			listed[c] = true
			extra = append(extra, &yrdv1.ColumnDecision{Column: c, Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW})
		}
	}
	if len(extra) == 0 {
		return dec
	}
	out := proto.Clone(dec).(*yrdv1.Decision)
	out.Columns = append(out.Columns, extra...)
	return out
}

func aggregateName(f yrdv1.AggregateFunction) string {
	switch f {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT:
		return "count"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
		return "count_distinct"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
		return "sum"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
		return "avg"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN:
		return "min"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		return "max"
	}
	return strings.ToLower(f.String())
}

// walkColumns calls f for every column a condition reads.
func walkColumns(e *yrdv1.Expr, f func(string)) {
	switch x := e.GetNode().(type) {
	case *yrdv1.Expr_Comparison:
		f(x.Comparison.GetColumn())
	case *yrdv1.Expr_And:
		for _, o := range x.And.GetOperands() {
			walkColumns(o, f)
		}
	case *yrdv1.Expr_Or:
		for _, o := range x.Or.GetOperands() {
			walkColumns(o, f)
		}
	case *yrdv1.Expr_Not:
		walkColumns(x.Not, f)
	case *yrdv1.Expr_In:
		f(x.In.GetColumn())
	case *yrdv1.Expr_Between:
		f(x.Between.GetColumn())
	case *yrdv1.Expr_IsNull:
		f(x.IsNull.GetColumn())
	}
}
