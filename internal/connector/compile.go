package connector

import (
	"errors"
	"fmt"
	"regexp"
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
