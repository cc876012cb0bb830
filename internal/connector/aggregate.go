package connector

import (
	"fmt"
	"strconv"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// checkAggregate validates an aggregate call against the schema and the
// treatments, as the querylang table says: counting works on any shown
// column, but an aggregate that reads values (sum, avg, min, max) needs
// the raw column, and a numeric one a numeric column.
func (c *compiler) checkAggregate(a *yrdv1.AggregateCall) error {
	ag, ok := querylang.AggregateOf(a.GetFunction())
	if !ok {
		return fmt.Errorf("connector: unknown aggregate function %v", a.GetFunction())
	}
	if ag.Star(a.GetColumn()) {
		return nil
	}
	if a.GetColumn() == "" {
		return fmt.Errorf("connector: aggregate %v needs a column", a.GetFunction())
	}
	col, err := c.column(a.GetColumn(), "aggregate")
	if err != nil {
		return err
	}
	if !ag.ReadsValues {
		return nil
	}
	if c.treat[col.GetName()] != yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
		return fmt.Errorf("connector: %v over column %q needs its raw values, which the decision does not allow", a.GetFunction(), col.GetName())
	}
	if ag.Numeric && !querylang.NumericType(col.GetType()) {
		return fmt.Errorf("connector: %v over non-numeric column %q (%s)", a.GetFunction(), col.GetName(), col.GetType())
	}
	return nil
}

// aggregateSQL is the SQL of an aggregate call that checkAggregate
// accepted, as the querylang table writes it, its argument clamped to the
// sum bound where the aggregate's noise is scaled to one.
func (c *compiler) aggregateSQL(a *yrdv1.AggregateCall) string {
	ag, ok := querylang.AggregateOf(a.GetFunction())
	if !ok {
		return "NULL" // unreachable: checkAggregate rejected it
	}
	if ag.Star(a.GetColumn()) {
		return ag.Call("")
	}
	col := c.id(a.GetColumn())
	b := c.opts.SumBound
	if cb, ok := c.opts.SumBounds[a.GetColumn()]; ok {
		b = cb
	}
	if b > 0 && ag.NeedsSumBound() {
		// A number from the catalog, not requester text; written in place
		// because the outer query binds nothing (see compile).
		bound := strconv.FormatFloat(b, 'g', -1, 64)
		// least and greatest skip NULLs (in DuckDB and PostgreSQL), so
		// NULL must be kept NULL explicitly, or it would count as the bound.
		col = "CASE WHEN " + col + " IS NULL THEN NULL ELSE least(greatest(" + cast(c.dl, col, "DOUBLE") + ", -" + bound + "), " + bound + ") END"
	}
	return ag.Call(col)
}

// aggregateOf is the querylang entry of a call's function. An unknown
// function, which checkAggregate refuses before any name is asked for,
// reads as count.
func aggregateOf(a *yrdv1.AggregateCall) querylang.Aggregate {
	if ag, ok := querylang.AggregateOf(a.GetFunction()); ok {
		return ag
	}
	ag, _ := querylang.AggregateOf(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT)
	return ag
}
