package connector

import (
	"fmt"
	"strconv"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// checkAggregate validates an aggregate call against the schema and the
// treatments: counting works on any shown column, but sum, avg, min and
// max compute on values, so they need the raw column.
func (c *compiler) checkAggregate(a *yrdv1.AggregateCall) error {
	switch a.GetFunction() {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT:
		if a.GetColumn() == "" {
			return nil
		}
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT,
		yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG,
		yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		if a.GetColumn() == "" {
			return fmt.Errorf("connector: aggregate %v needs a column", a.GetFunction())
		}
	default:
		return fmt.Errorf("connector: unknown aggregate function %v", a.GetFunction())
	}
	col, err := c.column(a.GetColumn(), "aggregate")
	if err != nil {
		return err
	}
	switch a.GetFunction() {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
		return nil
	}
	if c.treat[col.GetName()] != yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
		return fmt.Errorf("connector: %v over column %q needs its raw values, which the decision does not allow", a.GetFunction(), col.GetName())
	}
	if a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM || a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG {
		switch strings.ToUpper(col.GetType()) {
		case "INTEGER", "BIGINT", "DOUBLE", "DECIMAL":
		default:
			return fmt.Errorf("connector: %v over non-numeric column %q (%s)", a.GetFunction(), col.GetName(), col.GetType())
		}
	}
	return nil
}

func (c *compiler) aggregateSQL(a *yrdv1.AggregateCall) string {
	col := c.id(a.GetColumn())
	b := c.opts.SumBound
	if cb, ok := c.opts.SumBounds[a.GetColumn()]; ok {
		b = cb
	}
	if b > 0 {
		switch a.GetFunction() {
		case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
			// A number from the catalog, not requester text; written in
			// place because the outer query binds nothing (see compile).
			bound := strconv.FormatFloat(b, 'g', -1, 64)
			// least and greatest skip NULLs (in DuckDB and PostgreSQL), so
			// NULL must be kept NULL explicitly, or it would count as the bound.
			col = "CASE WHEN " + col + " IS NULL THEN NULL ELSE least(greatest(" + cast(c.dl, col, "DOUBLE") + ", -" + bound + "), " + bound + ") END"
		}
	}
	switch a.GetFunction() {
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT:
		if a.GetColumn() == "" {
			return "count(*)"
		}
		return "count(" + col + ")"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
		return "count(DISTINCT " + col + ")"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
		return "sum(" + col + ")"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
		return "avg(" + col + ")"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN:
		return "min(" + col + ")"
	case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX:
		return "max(" + col + ")"
	}
	return "NULL" // unreachable: checkAggregate rejected it
}
