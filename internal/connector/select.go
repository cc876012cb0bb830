package connector

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// shape is what compile reads from a query, checked against the schema
// and the decision, before any SQL of the outer query is written.
type shape struct {
	aggOnly  bool // the decision allows aggregates only
	outs     []outItem
	groupBy  map[string]bool
	groupSQL []string // the GROUP BY keys, quoted, in query order
	grouped  bool     // an aggregate or a GROUP BY: one row per group
	// personKey is the DIRECT identifier whose distinct values are the
	// individuals k counts, or "" where rows are the entities.
	personKey string
	orderSQL  []string
	limit     uint64
}

// outItem is one select item of the outer query.
type outItem struct {
	col  string // plain column, or ""
	agg  *yrdv1.AggregateCall
	name string // the requester's alias, or ""
}

// compile writes the plan of q: the plain plan, or the sketch plan when
// the node asked for a sketch of an aggregate over individuals.
func (c *compiler) compile(q *yrdv1.Query) (string, []any, error) {
	s, err := c.shape(q)
	if err != nil {
		return "", nil, err
	}
	if s.aggOnly && s.personKey != "" && c.opts.Sketch != nil {
		return c.sketch(q, s.outs, s.groupSQL, s.orderSQL, s.personKey, s.limit)
	}
	return c.plain(q, s)
}

// shape reads q in the order its errors are reported: select items,
// groups, the decision's effect, individuals, order, limit. It records,
// in first-use order, the columns the outer query reads (see need).
func (c *compiler) shape(q *yrdv1.Query) (*shape, error) {
	s := &shape{aggOnly: c.dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES}
	items, err := c.selectItems(q, s.aggOnly)
	if err != nil {
		return nil, err
	}
	if err := c.groupKeys(q, s); err != nil {
		return nil, err
	}
	var aggregates int
	if s.outs, aggregates, err = c.outItems(items); err != nil {
		return nil, err
	}
	s.grouped = aggregates > 0 || len(s.groupBy) > 0
	if s.grouped {
		for _, o := range s.outs {
			if o.col != "" && !s.groupBy[o.col] {
				return nil, fmt.Errorf("connector: column %q is selected but neither grouped nor aggregated", o.col)
			}
		}
	}
	if s.aggOnly && !s.grouped {
		return nil, errors.New("connector: the decision allows aggregates only; the query is a row query")
	}
	if s.aggOnly {
		if s.personKey, err = c.individuals(); err != nil {
			return nil, err
		}
	}
	for _, o := range s.outs {
		switch {
		case o.col != "":
			c.need(o.col)
		case o.agg.GetColumn() != "":
			c.need(o.agg.GetColumn())
		}
	}
	if s.orderSQL, err = c.orderBy(q, s); err != nil {
		return nil, err
	}
	s.limit, err = c.limit(q, s.aggOnly)
	return s, err
}

// selectItems are q's select items; SELECT * shows what may be shown:
// withheld columns are left out, as the requester did not name them.
func (c *compiler) selectItems(q *yrdv1.Query, aggOnly bool) ([]*yrdv1.SelectItem, error) {
	items := q.GetSelect()
	if len(items) > 0 {
		return items, nil
	}
	if aggOnly {
		return nil, errors.New("connector: the decision allows aggregates only; SELECT * is a row query")
	}
	for _, col := range c.d.GetSchema().GetColumns() {
		if c.treat[col.GetName()] != yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD {
			items = append(items, &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: col.GetName()}})
		}
	}
	if len(items) == 0 {
		return nil, errors.New("connector: every column is withheld")
	}
	return items, nil
}

// groupKeys checks q's GROUP BY columns into s.
func (c *compiler) groupKeys(q *yrdv1.Query, s *shape) error {
	s.groupBy = map[string]bool{}
	for _, g := range q.GetGroupBy() {
		if _, err := c.column(g, "GROUP BY"); err != nil {
			return err
		}
		if !s.groupBy[g] {
			s.groupBy[g] = true
			s.groupSQL = append(s.groupSQL, c.need(g))
		}
	}
	return nil
}

// outItems checks the select items and counts the aggregates among them.
func (c *compiler) outItems(items []*yrdv1.SelectItem) ([]outItem, int, error) {
	var aggregates int
	outs := make([]outItem, len(items))
	for i, it := range items {
		var o outItem
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			if _, err := c.column(x.Column, "SELECT"); err != nil {
				return nil, 0, err
			}
			o.col = x.Column
		case *yrdv1.SelectItem_Aggregate:
			if err := c.checkAggregate(x.Aggregate); err != nil {
				return nil, 0, err
			}
			o.agg = x.Aggregate
			aggregates++
		default:
			return nil, 0, fmt.Errorf("connector: select item %d is empty", i)
		}
		if a := it.GetAlias(); a != "" {
			if !aliasRE.MatchString(a) {
				return nil, 0, fmt.Errorf("connector: select item %d: alias is not a plain identifier", i)
			}
			o.name = a
		}
		outs[i] = o
	}
	return outs, aggregates, nil
}

// individuals is the person key k counts under an aggregate decision.
// With no personal information at all (e.g. enterprises), there are no
// individuals to protect: each row counts as one entity, and it is "".
func (c *compiler) individuals() (string, error) {
	if c.dec.GetMinGroupSize() == 0 {
		return "", errors.New("connector: aggregate decision without a minimum group size")
	}
	personKey := c.personKey()
	if personKey == "" && HasPersonalInfo(c.d) {
		return "", fmt.Errorf("connector: dataset %s has personal information but no DIRECT identifier column to count distinct individuals by", c.d.GetId())
	}
	return personKey, nil
}

// orderBy is q's ORDER BY, by grouped column or select index.
func (c *compiler) orderBy(q *yrdv1.Query, s *shape) ([]string, error) {
	var orderSQL []string
	for _, ob := range q.GetOrderBy() {
		var key string
		switch k := ob.GetKey().(type) {
		case *yrdv1.OrderItem_Column:
			if _, err := c.column(k.Column, "ORDER BY"); err != nil {
				return nil, err
			}
			if s.grouped && !s.groupBy[k.Column] {
				return nil, fmt.Errorf("connector: ORDER BY column %q is not grouped", k.Column)
			}
			key = c.need(k.Column)
		case *yrdv1.OrderItem_SelectIndex:
			if k.SelectIndex < 0 || int(k.SelectIndex) >= len(s.outs) {
				return nil, fmt.Errorf("connector: ORDER BY select index %d out of range", k.SelectIndex)
			}
			key = strconv.Itoa(int(k.SelectIndex) + 1)
		default:
			return nil, errors.New("connector: empty ORDER BY item")
		}
		if ob.GetDescending() {
			key += " DESC"
		}
		// Explicit, because PostgreSQL puts NULLs first when descending and
		// a family's owners must all order alike for a merged top N.
		orderSQL = append(orderSQL, key+" NULLS LAST")
	}
	return orderSQL, nil
}

// limit is q's LIMIT, capped by a row decision's row cap.
func (c *compiler) limit(q *yrdv1.Query, aggOnly bool) (uint64, error) {
	limit := q.GetLimit()
	if !aggOnly {
		rc := c.dec.GetRowCap()
		if rc == 0 {
			return 0, errors.New("connector: row decision without a row cap")
		}
		if limit == 0 || limit > rc {
			limit = rc
		}
	}
	return min(limit, 1<<62), nil
}

// plain writes the plain plan: the requested items over the inner query,
// grouped, with groups under k left out by a HAVING on their individuals.
// The outer query reads treated columns by name from the inner one and
// binds no parameters before the inner query's, so binding in the order
// the SQL text is written keeps the placeholders in order.
func (c *compiler) plain(q *yrdv1.Query, s *shape) (string, []any, error) {
	groupSize := "count(*)"
	if s.personKey != "" {
		groupSize = "count(DISTINCT " + c.id(personAlias) + ")"
	}
	outer := make([]string, len(s.outs))
	for i, o := range s.outs {
		var e string
		if o.col != "" {
			e = c.id(o.col)
		} else {
			e = c.aggregateSQL(o.agg)
		}
		if o.name != "" {
			e += " AS " + c.id(o.name)
		}
		outer[i] = e
	}
	if s.aggOnly && c.opts.Individuals {
		outer = append(outer, groupSize+" AS "+c.id(IndividualsColumn))
	}
	inner, err := c.innerQuery(q, s.personKey, nil)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(outer, ", ") + " FROM (" + inner + ") AS " + c.id("t"))
	if len(s.groupSQL) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(s.groupSQL, ", "))
	}
	if s.aggOnly {
		// k-anonymity in the plan: a group of fewer than k distinct
		// individuals is never computed into the result.
		b.WriteString(" HAVING " + groupSize + " >= " + c.bind(int64(c.dec.GetMinGroupSize())))
	}
	if len(s.orderSQL) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(s.orderSQL, ", "))
	}
	if s.limit > 0 {
		b.WriteString(" LIMIT " + c.bind(int64(s.limit)))
	}
	return b.String(), c.args, nil
}

// innerQuery is the inner query: the dataset's rows, filtered on raw
// values, with every column the outer query reads replaced by its treated
// form, and the raw person key (if personKey is set) as personAlias.
// extra, if set, appends more items after those, binding in text order.
func (c *compiler) innerQuery(q *yrdv1.Query, personKey string, extra func() []string) (string, error) {
	var inner []string
	for _, name := range c.order {
		e, err := c.treated(c.cols[name])
		if err != nil {
			return "", err
		}
		inner = append(inner, e+" AS "+c.id(name))
	}
	if personKey != "" {
		inner = append(inner, c.id(personKey)+" AS "+c.id(personAlias))
	}
	if extra != nil {
		inner = append(inner, extra()...)
	}
	if len(inner) == 0 {
		// count(*) alone reads no column; DuckDB still needs a projection.
		inner = append(inner, "1 AS "+c.id(oneAlias))
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(inner, ", ") + " FROM " + c.id(c.d.GetId()))
	if w := q.GetWhere(); w != nil {
		cond, err := c.expr(w, 0)
		if err != nil {
			return "", err
		}
		b.WriteString(" WHERE " + cond)
	}
	return b.String(), nil
}
