package sqlq

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Limits on what Parse accepts. They bound the work and memory one query
// text can cost a node, and keep the parser's recursion far from the stack's
// limit whatever the input.
const (
	// MaxQueryBytes bounds the query text.
	MaxQueryBytes = 64 << 10
	// MaxSelectItems bounds the select list.
	MaxSelectItems = 1000
	// MaxDepth bounds the nesting of NOT and parentheses in a condition.
	MaxDepth = 100
)

// SyntaxError is why Parse rejected a query text. Line and Column are
// 1-based and count runes (a tab is one column); they point at the
// offending token, or just past the end of the text when it ended early.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// syntaxPosition finds the position a SyntaxError's text names, wherever
// it stands in a longer message.
var syntaxPosition = regexp.MustCompile(`line (\d+), column (\d+)`)

// ErrorPosition reads the line and column a SyntaxError named from a
// message that carries its text (as a node's InvalidArgument answer does),
// so clients mark the place without knowing the format.
func ErrorPosition(msg string) (line, column int, ok bool) {
	m := syntaxPosition.FindStringSubmatch(msg)
	if m == nil {
		return 0, 0, false
	}
	line, err1 := strconv.Atoi(m[1])
	column, err2 := strconv.Atoi(m[2])
	return line, column, err1 == nil && err2 == nil
}

// Why one read at a time: the rest of the system (policy, audit, the owner's
// query planner) reasons about one dataset or one family of same-schema
// datasets, never about combinations of them.
const oneSource = "yrdnode queries read one dataset or one dataset family"

// reserved are the keywords that cannot be bare column names or aliases:
// those the grammar needs to tell clauses and conditions apart, and those
// of unsupported clauses, so that using one gets a clear error. Write
// "order" (double-quoted) for a column named order. DATE, TIMESTAMP and the
// aggregate names are not reserved: what follows them decides.
var reserved = map[string]bool{
	"select": true, "from": true, "where": true, "group": true, "order": true,
	"limit": true, "having": true, "offset": true, "union": true,
	"intersect": true, "except": true, "and": true, "or": true, "not": true,
	"in": true, "between": true, "is": true, "null": true, "true": true,
	"false": true, "as": true, "asc": true, "desc": true, "distinct": true,
	"case": true,
}

var arithmetic = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "||": true}

var joinWords = map[string]bool{
	"join": true, "inner": true, "left": true, "right": true, "full": true,
	"cross": true, "natural": true, "outer": true, "lateral": true,
}

// clauseWords are unreserved words that start a clause (an unsupported
// one) right after the source, where they must not pass for a table alias;
// trailing explains them.
var clauseWords = map[string]bool{"fetch": true, "window": true, "for": true}

// standardSchemaRE is catalogspec's rule for standard_schema_id (which it
// does not export); a family reference must be one.
var standardSchemaRE = regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9-]+)*\.v[0-9]+$`)

const maxStandardSchemaLen = 128

// Parse parses one query of the SQL subset into a Query. Every error is a
// *SyntaxError.
func Parse(text string) (*yrdv1.Query, error) {
	return parseWith(&parser{}, text)
}

func parseWith(p *parser, text string) (q *yrdv1.Query, err error) {
	if len(text) > MaxQueryBytes {
		line, col := posAt(text, MaxQueryBytes)
		return nil, &SyntaxError{Line: line, Column: col,
			Msg: fmt.Sprintf("the query is %d bytes, more than the limit of %d", len(text), MaxQueryBytes)}
	}
	p.lex, p.aliases = newLexer(text), map[string]int{}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			q, err = nil, se
		}
	}()
	p.advance()
	return p.query(), nil
}

// ParseColumns parses text as Parse does and also returns the columns it
// names, in text order, with their positions: the catalog's schema is
// checked against them where the text is gone.
func ParseColumns(text string) (*yrdv1.Query, []ColumnRef, error) {
	p := &parser{}
	q, err := parseWith(p, text)
	if err != nil {
		return nil, nil, err
	}
	return q, p.refs, nil
}

// parser is a recursive-descent parser with one token of lookahead. Errors
// panic with a *SyntaxError, which Parse recovers; nothing else is
// recovered.
type parser struct {
	lex     lexer
	tok     token
	q       *yrdv1.Query
	aliases map[string]int // select item index by alias
	refs    []ColumnRef    // the columns named, in text order
}

func (p *parser) advance() { p.tok = p.lex.next() }

func (p *parser) fail(t token, format string, args ...any) {
	panic(&SyntaxError{Line: t.line, Column: t.col, Msg: fmt.Sprintf(format, args...)})
}

// expected fails at the current token: "expected WHAT, found TOKEN".
func (p *parser) expected(what string) {
	p.fail(p.tok, "expected %s, found %s%s", what, describe(p.tok), reservedHint(p.tok))
}

// describe names a token for a message.
func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string " + truncate(oneLine(t.raw))
	}
	return show(oneLine(t.raw))
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

// plausibleNames are the reserved words that could well be column names.
var plausibleNames = map[string]bool{"group": true, "order": true, "limit": true, "offset": true, "asc": true, "desc": true, "case": true, "except": true}

func reservedHint(t token) string {
	if t.kind == tIdent && plausibleNames[t.val] {
		return fmt.Sprintf(` (a reserved word; write "%s" to use it as a name)`, t.val)
	}
	return ""
}

func (p *parser) isKw(kw string) bool   { return p.tok.kind == tIdent && p.tok.val == kw }
func (p *parser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.val == s }

func (p *parser) expectKw(kw string) {
	if !p.isKw(kw) {
		p.expected(strings.ToUpper(kw))
	}
	p.advance()
}

func (p *parser) expectPunct(s, what string) {
	if !p.isPunct(s) {
		p.expected(what)
	}
	p.advance()
}

// name accepts a column name or alias: an unreserved identifier or a
// double-quoted one.
func (p *parser) name(what string) (string, token) {
	t := p.tok
	switch {
	case t.kind == tQIdent, t.kind == tIdent && !reserved[t.val]:
		p.advance()
		return t.val, t
	}
	p.expected(what)
	panic("unreachable")
}

func (p *parser) query() *yrdv1.Query {
	p.q = &yrdv1.Query{}
	switch {
	case p.isKw("select"):
		p.advance()
	case p.isKw("with"):
		p.fail(p.tok, "unsupported WITH (common table expressions); %s", oneSource)
	default:
		p.fail(p.tok, "expected SELECT, found %s; yrdnode queries are single read-only SELECT statements", describe(p.tok))
	}
	p.selectList()
	p.from()
	stage := "WHERE, GROUP BY, ORDER BY, LIMIT or end of query"
	if p.isKw("where") {
		p.advance()
		p.q.Where = p.or(0)
		stage = "AND, OR, GROUP BY, ORDER BY, LIMIT or end of query"
	}
	if p.isKw("group") {
		p.advance()
		p.expectKw("by")
		p.groupBy()
		stage = "',', ORDER BY, LIMIT or end of query"
	}
	if p.isKw("order") {
		p.advance()
		p.expectKw("by")
		p.orderBy()
		stage = "',', LIMIT or end of query"
	}
	if p.isKw("limit") {
		p.advance()
		p.limit()
		stage = "end of query"
	}
	if p.isPunct(";") {
		p.advance()
		if p.tok.kind != tEOF {
			p.fail(p.tok, "expected end of input after ';', found %s; one statement per query", describe(p.tok))
		}
	}
	if p.tok.kind != tEOF {
		p.trailing(stage)
	}
	return p.q
}

// trailing explains a token where the query should have ended or gone on
// with a later clause.
func (p *parser) trailing(stage string) {
	t := p.tok
	if t.kind == tIdent {
		switch t.val {
		case "offset":
			p.fail(t, "unsupported OFFSET; paging through results is not supported, use LIMIT alone")
		case "fetch":
			p.fail(t, "unsupported FETCH; use LIMIT")
		case "union", "intersect", "except":
			p.fail(t, "unsupported %s; %s", strings.ToUpper(t.val), oneSource)
		case "having":
			p.fail(t, "unsupported HAVING; filter rows with WHERE, before grouping")
		case "window":
			p.fail(t, "unsupported WINDOW clause; window functions are not supported")
		case "where", "group", "order", "limit":
			p.fail(t, "%s is out of place; clauses go in the order WHERE, GROUP BY, ORDER BY, LIMIT, each at most once", strings.ToUpper(t.val))
		}
	}
	p.expected(stage)
}

func (p *parser) selectList() {
	if p.isKw("distinct") {
		p.fail(p.tok, "unsupported SELECT DISTINCT; use GROUP BY")
	}
	if p.isPunct("*") {
		p.advance()
		if p.isPunct(",") {
			p.fail(p.tok, "'*' must be the only select item")
		}
		if p.isPunct(".") {
			p.fail(p.tok, "qualified names are not supported; %s", oneSource)
		}
		return
	}
	for {
		if len(p.q.Select) == MaxSelectItems {
			p.fail(p.tok, "more than %d select items", MaxSelectItems)
		}
		p.q.Select = append(p.q.Select, p.selectItem())
		if !p.isPunct(",") {
			return
		}
		p.advance()
	}
}

func (p *parser) selectItem() *yrdv1.SelectItem {
	item := &yrdv1.SelectItem{}
	t := p.tok
	switch {
	case p.isPunct("*"):
		p.fail(t, "'*' must be the only select item")
	case p.isKw("case"):
		p.fail(t, "unsupported CASE expression; select columns and aggregates")
	}
	if t.kind != tQIdent && !(t.kind == tIdent && !reserved[t.val]) {
		if len(p.q.Select) == 0 {
			p.expected("a column name, an aggregate or '*'")
		}
		p.expected("a column name or an aggregate")
	}
	col, _ := p.name("")
	if t.kind == tIdent && p.isPunct("(") {
		item.Item = &yrdv1.SelectItem_Aggregate{Aggregate: p.aggregate(t)}
	} else {
		item.Item = &yrdv1.SelectItem_Column{Column: col}
		p.ref(t)
		p.afterOperand("select columns and aggregates")
	}
	if p.isKw("as") {
		p.advance()
		alias, at := p.name("an alias after AS")
		if prev, dup := p.aliases[alias]; dup {
			p.fail(at, "alias %s is already used by select item %d", show(alias), prev+1)
		}
		p.aliases[alias] = len(p.q.Select)
		item.Alias = alias
	}
	return item
}

// afterOperand rejects what would continue a column or aggregate into an
// expression the subset does not have.
func (p *parser) afterOperand(hint string) {
	t := p.tok
	switch {
	case t.kind == tPunct && arithmetic[t.val]:
		p.fail(t, "unsupported arithmetic operator %s; %s", show(t.val), hint)
	case p.isPunct("."):
		p.fail(t, "qualified names are not supported; %s", oneSource)
	case p.isPunct("::"):
		p.fail(t, "unsupported cast '::'; %s", hint)
	}
}

// aggregateHint is what a select list may hold, for the message on an
// unknown function.
var aggregateHint = "select columns and aggregates (" + querylang.WrittenNames() + ") of columns"

// aggregate parses agg(col), count(*) or count(DISTINCT col); the name has
// been consumed and the current token is '('.
func (p *parser) aggregate(nameTok token) *yrdv1.AggregateCall {
	agg, ok := querylang.AggregateWritten(nameTok.val, false)
	if !ok {
		p.unsupportedFunction(nameTok, aggregateHint)
	}
	p.advance() // (
	call := &yrdv1.AggregateCall{Function: agg.Function}
	switch {
	case p.isPunct("*"):
		if !agg.StarAllowed {
			p.fail(p.tok, "only count accepts '*'; %s needs a column", nameTok.val)
		}
		p.advance()
	case p.isKw("distinct"):
		distinct, ok := querylang.AggregateWritten(nameTok.val, true)
		if !ok {
			p.fail(p.tok, "DISTINCT is supported only as count(DISTINCT column)")
		}
		p.advance()
		call.Function = distinct.Function
		fallthrough
	default:
		call.Column = p.column("aggregates take a column")
	}
	p.expectPunct(")", "')'")
	switch {
	case p.isKw("over"):
		p.fail(p.tok, "unsupported window function (OVER); aggregate with GROUP BY")
	case p.isKw("filter"):
		p.fail(p.tok, "unsupported FILTER clause; filter rows with WHERE")
	}
	p.afterOperand("select columns and aggregates")
	return call
}

func (p *parser) unsupportedFunction(t token, hint string) {
	switch t.val {
	case "exists":
		p.fail(t, "unsupported subquery (EXISTS); %s", oneSource)
	}
	p.fail(t, "unsupported function %s(); %s", t.val, hint)
}

func (p *parser) from() {
	if !p.isKw("from") {
		if p.tok.kind == tEOF {
			p.expected("FROM")
		}
		p.expected("',', AS or FROM")
	}
	p.tok = p.lex.nextSource() // dataset ids have hyphens
	t := p.tok
	const want = "a dataset id or family:<standard schema id>"
	switch t.kind {
	case tSource:
		lower := strings.ToLower(t.val)
		if reserved[lower] {
			p.expected(want)
		}
		if strings.HasPrefix(lower, "family:") {
			id := t.val[len("family:"):]
			switch {
			case id == "":
				p.fail(t, "expected a standard schema id after family:, e.g. family:yrd.elderly-population.v1")
			case len(id) > maxStandardSchemaLen:
				p.fail(t, "standard schema id %s is %d characters, at most %d", show(id), len(id), maxStandardSchemaLen)
			case !standardSchemaRE.MatchString(id):
				p.fail(t, `invalid standard schema id %s, want dot-separated lowercase segments ending in a version, e.g. "yrd.elderly-population.v1"`, show(id))
			}
			p.q.Source = &yrdv1.Query_Family{Family: id}
		} else {
			p.datasetID(t)
		}
	case tQIdent:
		p.datasetID(t)
	default:
		if p.isPunct("(") {
			p.fail(t, "unsupported subquery; %s", oneSource)
		}
		p.expected(want)
	}
	p.advance()
	switch {
	case p.isPunct(","):
		p.fail(p.tok, "unsupported JOIN; %s", oneSource)
	case p.tok.kind == tIdent && joinWords[p.tok.val]:
		p.fail(p.tok, "unsupported JOIN; %s", oneSource)
	case p.tok.kind == tIdent && clauseWords[p.tok.val]:
		// Left to the caller, which knows what may follow.
	case p.isKw("as"), p.tok.kind == tIdent && !reserved[p.tok.val], p.tok.kind == tQIdent:
		p.fail(p.tok, "unsupported table alias; name columns alone, %s", oneSource)
	}
}

func (p *parser) datasetID(t token) {
	if err := catalogspec.ValidateID(t.val); err != nil {
		msg := err.Error()
		if fe := (*catalogspec.FieldError)(nil); errors.As(err, &fe) {
			msg = fe.Msg
		}
		p.fail(t, "dataset id: %s", msg)
	}
	p.q.Source = &yrdv1.Query_DatasetId{DatasetId: t.val}
}

// column parses a column name where no function may be applied to it.
func (p *parser) column(hint string) string {
	t := p.tok
	col, _ := p.name("a column name")
	if t.kind == tIdent && p.isPunct("(") {
		p.unsupportedFunction(t, hint)
	}
	p.ref(t)
	p.afterOperand(hint)
	return col
}

func (p *parser) groupBy() {
	for {
		p.q.GroupBy = append(p.q.GroupBy, p.column("group by columns"))
		if !p.isPunct(",") {
			return
		}
		p.advance()
	}
}

// orderBy parses the sort keys. A name that is an alias of a select item,
// a 1-based position and an aggregate that is in the select list all sort
// by that select item; any other name is a column.
func (p *parser) orderBy() {
	for {
		item := &yrdv1.OrderItem{}
		t := p.tok
		switch {
		case t.kind == tNumber:
			n, err := strconv.ParseUint(t.val, 10, 31)
			if err != nil || n == 0 || int(n) > len(p.q.Select) {
				if len(p.q.Select) == 0 {
					p.fail(t, "ORDER BY position %s needs a select list; with SELECT * order by column names", t.raw)
				}
				p.fail(t, "ORDER BY position %s is not a select item; want 1 to %d", t.raw, len(p.q.Select))
			}
			item.Key = &yrdv1.OrderItem_SelectIndex{SelectIndex: int32(n - 1)}
			p.advance()
		case t.kind == tQIdent, t.kind == tIdent && !reserved[t.val]:
			name, _ := p.name("")
			if t.kind == tIdent && p.isPunct("(") {
				call := p.aggregate(t)
				idx := slices.IndexFunc(p.q.Select, func(s *yrdv1.SelectItem) bool { return proto.Equal(s.GetAggregate(), call) })
				if idx < 0 {
					p.fail(t, "ORDER BY %s() must be in the select list; select it and order by its alias or position", t.val)
				}
				item.Key = &yrdv1.OrderItem_SelectIndex{SelectIndex: int32(idx)}
			} else if idx, ok := p.aliases[name]; ok {
				item.Key = &yrdv1.OrderItem_SelectIndex{SelectIndex: int32(idx)}
			} else {
				item.Key = &yrdv1.OrderItem_Column{Column: name}
				p.ref(t)
			}
		default:
			p.expected("a column name, alias or select item position")
		}
		p.afterOperand("order by columns, aliases or positions")
		switch {
		case p.isKw("desc"):
			item.Descending = true
			p.advance()
		case p.isKw("asc"):
			p.advance()
		}
		if p.isKw("nulls") {
			p.fail(p.tok, "unsupported NULLS FIRST/LAST; order by columns, aliases or positions, ASC or DESC")
		}
		p.q.OrderBy = append(p.q.OrderBy, item)
		if !p.isPunct(",") {
			return
		}
		p.advance()
	}
}

func (p *parser) limit() {
	t := p.tok
	if t.kind != tNumber || strings.ContainsAny(t.val, ".eE") {
		p.expected("a positive integer")
	}
	n, err := strconv.ParseUint(t.val, 10, 64)
	switch {
	case err != nil:
		p.fail(t, "LIMIT %s is out of range", t.raw)
	case n == 0:
		// 0 is the proto's "no limit", so LIMIT 0 cannot be represented; it
		// would ask for nothing anyway.
		p.fail(t, "LIMIT must be at least 1")
	}
	p.q.Limit = n
	p.advance()
}
