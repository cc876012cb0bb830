package connector

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// MinPseudonymKeyLen is the shortest pseudonym key Compile accepts: a
// short key would let anyone who knows the id space recompute pseudonyms.
const MinPseudonymKeyLen = 16

// personAlias names the raw person key inside the compiled query, for the
// k-anonymity HAVING clause only; it is never part of the result. Compile
// refuses schemas that use the name.
const personAlias = "__yrd_person_key"

// oneAlias names the constant column of an inner query that needs none.
const oneAlias = "__yrd_one"

// aliasRE is what a requester's result column name may look like. Aliases
// are the one piece of requester text that reaches the SQL, so they are
// held to a plain identifier and then quoted.
var aliasRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// compiler holds the state of one Compile call.
type compiler struct {
	dl      dialect
	d       *yrdv1.Dataset
	dec     *yrdv1.Decision
	key     []byte
	opts    Options
	cols    map[string]*yrdv1.Column
	treat   map[string]yrdv1.ColumnTreatment
	args    []any
	needCol map[string]bool // columns the outer query reads from the inner one
	order   []string        // needCol in first-use order, for stable SQL
	// cellRows is set when the SQL returns a total's sketch cells as rows
	// (see Statement.cellRows).
	cellRows bool
	// err is the first value bind could not bind.
	err error
}

// Compile builds the SQL, over the dataset's view, that answers q as the
// policy decision dec allows, enforcing the decision in the plan:
// WITHHELD columns are never read into the result, MASKED columns are a
// constant, PSEUDONYMISED columns a keyed hash (pseudonymKey, bound as a
// parameter; the caller keys it per dataset and grant), aggregate results
// drop groups of fewer than dec.min_group_size distinct individuals, and
// row results are capped at dec.row_cap rows.
//
// Identifiers come from the catalog schema only and every literal is a
// parameter in args (positional "?"), so no requester text is spliced
// into the SQL except result aliases, which must be plain identifiers.
func Compile(d *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, pseudonymKey []byte) (string, []any, error) {
	return CompileWith(d, q, dec, Options{PseudonymKey: pseudonymKey})
}

// IndividualsColumn names the column that Options.Individuals appends to
// an aggregate result: the distinct individuals in each group, which the
// node checks against k on the result and counts for the receipt, then
// drops before anything leaves.
const IndividualsColumn = "__yrd_individuals"

// Options are the node's settings for one compiled query, beyond the
// decision.
type Options struct {
	// PseudonymKey keys the hash of pseudonymised columns.
	PseudonymKey []byte
	// Individuals appends IndividualsColumn to an aggregate result.
	Individuals bool
	// SumBound, when positive, clamps every sum and avg argument to
	// [-SumBound, SumBound], which bounds one row's effect on the result
	// (the sensitivity that calibrated noise is scaled to).
	SumBound float64
	// SumBounds, per column, overrides SumBound for that column's sums
	// and averages: each column is clamped to its own declared bound.
	SumBounds map[string]float64
	// PersonKeys compiles, instead of the result, the distinct person keys
	// (as text) of the rows the query reads: what a cross-border export
	// ledger counts. It needs a DIRECT identifier column.
	PersonKeys bool
	// Sketch appends to an aggregate result over a dataset with a DIRECT
	// identifier the individuals of each group and a linear sketch of
	// their set (see SketchOptions); elsewhere it is ignored.
	Sketch *SketchOptions

	// Set by the engines' Plan, never by callers:
	// personUnique says the engine verified that the person key is unique
	// per row of the data the query will read, which lets a sketch skip
	// its distinct step; names are the result names the engine gives the
	// plain plan's select items, so a sketch plan's columns are named alike.
	personUnique bool
	names        []string
	// cellRows lets a sketch plan return a total of counts as one row per
	// cell, for a Statement to fold.
	cellRows bool
}

// CompileWith is Compile with the node's options.
func CompileWith(d *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (string, []any, error) {
	o.cellRows = false // the SQL alone is the result
	st, err := compileStatement(duckDialect{}, d, q, dec, o)
	return st.SQL, st.Args, err
}

// compileStatement compiles q as CompileWith does, into a Statement in
// the engine's dialect dl.
func compileStatement(dl dialect, d *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (Statement, error) {
	c, err := newCompiler(dl, d, q, dec, o)
	if err != nil {
		return Statement{}, err
	}
	var st Statement
	if o.PersonKeys {
		st.SQL, st.Args, err = c.personKeys(q)
	} else {
		st.SQL, st.Args, err = c.compile(q)
	}
	if err == nil {
		err = c.err
	}
	if err != nil {
		return Statement{}, err
	}
	with, err := dl.with(d)
	if err != nil {
		return Statement{}, err
	}
	st.SQL = with + st.SQL
	st.cellRows, st.minIndividuals = c.cellRows, int64(dec.GetMinGroupSize())
	return st, nil
}

// newCompiler checks what a compile starts from and sets up the compiler.
func newCompiler(dl dialect, d *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, o Options) (*compiler, error) {
	pseudonymKey := o.PseudonymKey
	if d == nil || q == nil || dec == nil {
		return nil, errors.New("connector: compile: nil dataset, query or decision")
	}
	switch src := q.GetSource().(type) {
	case *yrdv1.Query_DatasetId:
		if src.DatasetId != d.GetId() {
			return nil, fmt.Errorf("connector: query is on dataset %q, not %q", src.DatasetId, d.GetId())
		}
	case *yrdv1.Query_Family:
		if src.Family == "" || src.Family != d.GetStandardSchemaId() {
			return nil, fmt.Errorf("connector: query is on family %q; dataset %q is of %q", src.Family, d.GetId(), d.GetStandardSchemaId())
		}
	default:
		return nil, errors.New("connector: query names no dataset")
	}
	c := &compiler{dl: dl, d: d, dec: dec, key: pseudonymKey, opts: o,
		cols: map[string]*yrdv1.Column{}, treat: map[string]yrdv1.ColumnTreatment{}, needCol: map[string]bool{}}
	for _, col := range d.GetSchema().GetColumns() {
		if col.GetName() == personAlias || col.GetName() == oneAlias {
			return nil, fmt.Errorf("connector: dataset %s: column name %q is reserved", d.GetId(), col.GetName())
		}
		c.cols[col.GetName()] = col
		// A column the decision does not mention is withheld: the
		// connector fails closed rather than guess.
		c.treat[col.GetName()] = yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD
	}
	for _, cd := range dec.GetColumns() {
		if _, ok := c.cols[cd.GetColumn()]; ok {
			c.treat[cd.GetColumn()] = cd.GetTreatment()
		}
	}
	switch dec.GetEffect() {
	case yrdv1.Effect_EFFECT_ALLOW_ROWS, yrdv1.Effect_EFFECT_ALLOW_AGGREGATES:
	default:
		return nil, fmt.Errorf("connector: decision effect %v allows no query", dec.GetEffect())
	}
	if o.Sketch != nil && !o.PersonKeys {
		if err := o.Sketch.validate(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// personKey is the dataset's DIRECT identifier column, or "".
func (c *compiler) personKey() string {
	for _, col := range c.d.GetSchema().GetColumns() {
		if col.GetIdentifierRole() == yrdv1.IdentifierRole_IDENTIFIER_DIRECT {
			return col.GetName()
		}
	}
	return ""
}

// HasPersonalInfo reports whether any column of d holds personal
// information.
func HasPersonalInfo(d *yrdv1.Dataset) bool {
	for _, col := range d.GetSchema().GetColumns() {
		switch col.GetPersonalInfo() {
		case yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL, yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE:
			return true
		}
		if col.GetIdentifierRole() == yrdv1.IdentifierRole_IDENTIFIER_DIRECT {
			return true
		}
	}
	return false
}

// personKeys compiles the distinct person keys of the rows q's filter
// selects: an upper bound of the individuals whose data is in the result.
func (c *compiler) personKeys(q *yrdv1.Query) (string, []any, error) {
	pk := c.personKey()
	if pk == "" {
		return "", nil, fmt.Errorf("connector: dataset %s has no DIRECT identifier column to count individuals by", c.d.GetId())
	}
	var b strings.Builder
	b.WriteString("SELECT DISTINCT " + cast(c.dl, c.id(pk), "VARCHAR") + " AS " + c.id(personAlias) + " FROM " + c.id(c.d.GetId()))
	if w := q.GetWhere(); w != nil {
		cond, err := c.expr(w, 0)
		if err != nil {
			return "", nil, err
		}
		b.WriteString(" WHERE " + cond)
	}
	return b.String(), c.args, nil
}

// bind adds v to the statement's parameters and returns its placeholder.
// Values must be bound in the order the SQL text is written: DuckDB's "?"
// are positional.
func (c *compiler) bind(v any) string {
	c.args = append(c.args, v)
	p, err := c.dl.placeholder(len(c.args), v)
	if err != nil && c.err == nil {
		c.err = err
	}
	return p
}

// id quotes an identifier in the engine's dialect.
func (c *compiler) id(name string) string { return c.dl.ident(name) }

// column checks that name is in the schema and may appear in the result.
func (c *compiler) column(name, use string) (*yrdv1.Column, error) {
	col, ok := c.cols[name]
	if !ok {
		return nil, fmt.Errorf("connector: %s: unknown column %q (not in the schema of %s)", use, name, c.d.GetId())
	}
	if c.treat[name] == yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD {
		return nil, fmt.Errorf("connector: %s: column %q is withheld by the policy decision", use, name)
	}
	return col, nil
}

// need records that the outer query reads col from the inner one.
func (c *compiler) need(name string) string {
	if !c.needCol[name] {
		c.needCol[name] = true
		c.order = append(c.order, name)
	}
	return c.id(name)
}

// treated is the inner-query expression for a column under its treatment:
// the only place raw values are turned into what may leave the node.
func (c *compiler) treated(col *yrdv1.Column) (string, error) {
	id := c.id(col.GetName())
	switch c.treat[col.GetName()] {
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW:
		return id, nil
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED:
		if strings.EqualFold(col.GetType(), "VARCHAR") {
			return "'***'", nil
		}
		return cast(c.dl, "NULL", col.GetType()), nil
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED:
		if len(c.key) < MinPseudonymKeyLen {
			return "", fmt.Errorf("connector: column %q is pseudonymised but the key is shorter than %d bytes", col.GetName(), MinPseudonymKeyLen)
		}
		// The key goes in as hex text: sha256 hashes text, and hex keeps
		// arbitrary key bytes valid UTF-8.
		return c.dl.keyedHash(c.bind(hex.EncodeToString(c.key)), c.dl.valueText(id, col.GetType())), nil
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED:
		return generalised(c.dl, col)
	}
	return "", fmt.Errorf("connector: column %q: no usable treatment", col.GetName())
}

func (c *compiler) compile(q *yrdv1.Query) (string, []any, error) {
	aggOnly := c.dec.GetEffect() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES
	items := q.GetSelect()
	if len(items) == 0 {
		if aggOnly {
			return "", nil, errors.New("connector: the decision allows aggregates only; SELECT * is a row query")
		}
		// SELECT * shows what may be shown: withheld columns are left
		// out, as the requester did not name them.
		for _, col := range c.d.GetSchema().GetColumns() {
			if c.treat[col.GetName()] != yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD {
				items = append(items, &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: col.GetName()}})
			}
		}
		if len(items) == 0 {
			return "", nil, errors.New("connector: every column is withheld")
		}
	}

	groupBy := map[string]bool{}
	var groupSQL []string
	for _, g := range q.GetGroupBy() {
		if _, err := c.column(g, "GROUP BY"); err != nil {
			return "", nil, err
		}
		if !groupBy[g] {
			groupBy[g] = true
			groupSQL = append(groupSQL, c.need(g))
		}
	}

	// The outer query reads treated columns by name from the inner one and
	// binds no parameters before the inner query's, so binding in the
	// order the SQL text is written keeps "?" positions right.
	var aggregates int
	outs := make([]outItem, len(items))
	for i, it := range items {
		var o outItem
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			if _, err := c.column(x.Column, "SELECT"); err != nil {
				return "", nil, err
			}
			o.col = x.Column
		case *yrdv1.SelectItem_Aggregate:
			if err := c.checkAggregate(x.Aggregate); err != nil {
				return "", nil, err
			}
			o.agg = x.Aggregate
			aggregates++
		default:
			return "", nil, fmt.Errorf("connector: select item %d is empty", i)
		}
		if a := it.GetAlias(); a != "" {
			if !aliasRE.MatchString(a) {
				return "", nil, fmt.Errorf("connector: select item %d: alias is not a plain identifier", i)
			}
			o.name = a
		}
		outs[i] = o
	}
	grouped := aggregates > 0 || len(groupBy) > 0
	if grouped {
		for _, o := range outs {
			if o.col != "" && !groupBy[o.col] {
				return "", nil, fmt.Errorf("connector: column %q is selected but neither grouped nor aggregated", o.col)
			}
		}
	}
	if aggOnly && !grouped {
		return "", nil, errors.New("connector: the decision allows aggregates only; the query is a row query")
	}

	var personKey string
	if aggOnly {
		if c.dec.GetMinGroupSize() == 0 {
			return "", nil, errors.New("connector: aggregate decision without a minimum group size")
		}
		if personKey = c.personKey(); personKey == "" && HasPersonalInfo(c.d) {
			return "", nil, fmt.Errorf("connector: dataset %s has personal information but no DIRECT identifier column to count distinct individuals by", c.d.GetId())
		}
		// With no personal information at all (e.g. enterprises), there
		// are no individuals to protect: each row counts as one entity.
	}
	groupSize := "count(*)"
	if personKey != "" {
		groupSize = "count(DISTINCT " + c.id(personAlias) + ")"
	}

	// Inner query: the view's rows, filtered on raw values, with every
	// column the outer query reads replaced by its treated form.
	for _, o := range outs {
		switch {
		case o.col != "":
			c.need(o.col)
		case o.agg.GetColumn() != "":
			c.need(o.agg.GetColumn())
		}
	}
	var orderSQL []string
	for _, ob := range q.GetOrderBy() {
		var key string
		switch k := ob.GetKey().(type) {
		case *yrdv1.OrderItem_Column:
			if _, err := c.column(k.Column, "ORDER BY"); err != nil {
				return "", nil, err
			}
			if grouped && !groupBy[k.Column] {
				return "", nil, fmt.Errorf("connector: ORDER BY column %q is not grouped", k.Column)
			}
			key = c.need(k.Column)
		case *yrdv1.OrderItem_SelectIndex:
			if k.SelectIndex < 0 || int(k.SelectIndex) >= len(outs) {
				return "", nil, fmt.Errorf("connector: ORDER BY select index %d out of range", k.SelectIndex)
			}
			key = strconv.Itoa(int(k.SelectIndex) + 1)
		default:
			return "", nil, errors.New("connector: empty ORDER BY item")
		}
		if ob.GetDescending() {
			key += " DESC"
		}
		// Explicit, because PostgreSQL puts NULLs first when descending and
		// a family's owners must all order alike for a merged top N.
		orderSQL = append(orderSQL, key+" NULLS LAST")
	}

	limit := q.GetLimit()
	if !aggOnly {
		rc := c.dec.GetRowCap()
		if rc == 0 {
			return "", nil, errors.New("connector: row decision without a row cap")
		}
		if limit == 0 || limit > rc {
			limit = rc
		}
	}
	if limit > 1<<62 {
		limit = 1 << 62
	}
	if aggOnly && personKey != "" && c.opts.Sketch != nil {
		return c.sketch(q, outs, groupSQL, orderSQL, personKey, limit)
	}

	var b strings.Builder
	b.WriteString("SELECT ")
	outer := make([]string, len(outs))
	for i, o := range outs {
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
	if aggOnly && c.opts.Individuals {
		outer = append(outer, groupSize+" AS "+c.id(IndividualsColumn))
	}
	b.WriteString(strings.Join(outer, ", "))
	inner, err := c.innerQuery(q, personKey, nil)
	if err != nil {
		return "", nil, err
	}
	b.WriteString(" FROM (")
	b.WriteString(inner)
	b.WriteString(") AS ")
	b.WriteString(c.id("t"))
	if len(groupSQL) > 0 {
		b.WriteString(" GROUP BY ")
		b.WriteString(strings.Join(groupSQL, ", "))
	}
	if aggOnly {
		// k-anonymity in the plan: a group of fewer than k distinct
		// individuals is never computed into the result.
		b.WriteString(" HAVING " + groupSize + " >= " + c.bind(int64(c.dec.GetMinGroupSize())))
	}
	if len(orderSQL) > 0 {
		b.WriteString(" ORDER BY ")
		b.WriteString(strings.Join(orderSQL, ", "))
	}
	if limit > 0 {
		b.WriteString(" LIMIT " + c.bind(int64(limit)))
	}
	return b.String(), c.args, nil
}

// innerQuery is the inner query: the view's rows, filtered on raw values,
// with every column the outer query reads replaced by its treated form,
// and the raw person key (if personKey is set) as personAlias. extra, if
// set, appends more items after those, binding in text order.
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
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(inner, ", "))
	b.WriteString(" FROM ")
	b.WriteString(c.id(c.d.GetId()))
	if w := q.GetWhere(); w != nil {
		cond, err := c.expr(w, 0)
		if err != nil {
			return "", err
		}
		b.WriteString(" WHERE ")
		b.WriteString(cond)
	}
	return b.String(), nil
}

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

// generalised is the SQL that coarsens a quasi-identifier by its catalog
// generalisation, written so that PostgreSQL reads it alike: the lower
// bound of a numeric band, a string's prefix, a date or timestamp
// truncated to its month or year. The numbers come from the catalog, not
// from requester text, so they are written in place.
func generalised(dl dialect, col *yrdv1.Column) (string, error) {
	id := dl.ident(col.GetName())
	typ := strings.ToUpper(col.GetType())
	switch r := col.GetGeneralise().GetRule().(type) {
	case *yrdv1.Generalisation_BandWidth:
		w := r.BandWidth
		if !(w > 0) || math.IsInf(w, 1) || (typ != "INTEGER" && typ != "BIGINT" && typ != "DOUBLE" && typ != "DECIMAL") {
			break
		}
		band := "floor(" + cast(dl, id, "DOUBLE") + " / " + strconv.FormatFloat(w, 'g', -1, 64) + ") * " + strconv.FormatFloat(w, 'g', -1, 64)
		if (typ == "INTEGER" || typ == "BIGINT") && w == math.Trunc(w) {
			return cast(dl, band, "BIGINT"), nil
		}
		return cast(dl, band, "DOUBLE"), nil
	case *yrdv1.Generalisation_PrefixLength:
		if r.PrefixLength > 0 && typ == "VARCHAR" {
			return "left(" + id + ", " + strconv.FormatUint(uint64(r.PrefixLength), 10) + ")", nil
		}
	case *yrdv1.Generalisation_Truncate:
		unit := map[yrdv1.DateTruncation]string{yrdv1.DateTruncation_DATE_TRUNCATION_MONTH: "month", yrdv1.DateTruncation_DATE_TRUNCATION_YEAR: "year"}[r.Truncate]
		if unit != "" && (typ == "DATE" || typ == "TIMESTAMP") {
			return cast(dl, "date_trunc('"+unit+"', "+cast(dl, id, "TIMESTAMP")+")", typ), nil
		}
	}
	return "", fmt.Errorf("connector: column %q is generalised but has no generalisation that fits its type %s", col.GetName(), typ)
}
