package policy

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yrd-exchange/yrdnode/internal/fielderr"
	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// FieldError and Errors name problems by proto field path (see fielderr).
type (
	FieldError = fielderr.FieldError
	Errors     = fielderr.Errors
)

// maxList bounds each list of an access request, so that a hostile request
// cannot make a decision expensive. No schema has more columns (catalogspec
// allows 512).
const maxList = 1024

// aggregateFuncs are the aggregate functions the executor implements, by
// their canonical names.
var aggregateFuncs = querylang.Keys()

// ValidateAccess checks that a names only columns of d, known aggregate
// functions and a result form, and that its parts fit the form. It returns
// nil or an Errors naming each bad field, e.g.
// `group_by[1]: unknown column "distrct"`. It does not judge whether the
// request is allowed; that is Decide's job.
func ValidateAccess(d *yrdv1.Dataset, a *yrdv1.AccessRequest) error {
	if errs := validate(d, a, newSchema(d)); len(errs) > 0 {
		return errs
	}
	return nil
}

// ValidateParams checks policy parameters proposed to replace the current
// ones and returns nil or an Errors naming each bad field, e.g.
// `privacy_budget: NaN is not a finite number ≥ 0`. Version, updated_at and
// updated_by are not checked: the catalog sets them. Whether each of
// trial_sectors is a known sector is left to the caller (the list is
// catalogspec.Sectors, which this package does not depend on).
func ValidateParams(p *yrdv1.PolicyParams) error {
	if p == nil {
		return Errors{{Msg: "params are required"}}
	}
	var errs Errors
	add := func(field string, msg ...string) {
		errs = append(errs, &FieldError{Field: field, Msg: strings.Join(msg, "")})
	}
	if k := p.GetDefaultMinGroupSize(); k < minK {
		add("default_min_group_size", strconv.FormatUint(uint64(k), 10), " is below ", strconv.Itoa(minK),
			": a group of one individual is that individual's value")
	}
	if p.GetRowCap() == 0 {
		add("row_cap", "must be positive")
	}
	if p.GetCrossBorderIndividualsLimit() == 0 {
		add("cross_border_individuals_limit", "must be positive")
	}
	if p.GetCrossBorderSensitiveIndividualsLimit() == 0 {
		add("cross_border_sensitive_individuals_limit", "must be positive")
	}
	if fe := privacyBudgetError(p.GetPrivacyBudget()); fe != nil {
		errs = append(errs, fe)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"max_query_epsilon", p.GetMaxQueryEpsilon()}, {"default_query_epsilon", p.GetDefaultQueryEpsilon()}} {
		if !(f.v >= 0 && !math.IsInf(f.v, 1)) {
			add(f.name, strconv.FormatFloat(f.v, 'g', -1, 64), " is not a finite number ≥ 0 (0 means the default)")
		}
	}
	if d := p.GetDefaultQueryEpsilon(); d > MaxQueryEpsilon(p) {
		add("default_query_epsilon", strconv.FormatFloat(d, 'g', -1, 64), " is above max_query_epsilon ",
			strconv.FormatFloat(MaxQueryEpsilon(p), 'g', -1, 64))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// ValidatePrivacyBudget checks PolicyParams.privacy_budget: a finite number
// ≥ 0, where 0 allows no noisy query at all. It returns nil or a
// *FieldError for field "privacy_budget". The raft FSM applies it to every
// policy update, so no replica ever stores a budget it cannot compare with.
func ValidatePrivacyBudget(b float64) error {
	if fe := privacyBudgetError(b); fe != nil {
		return fe
	}
	return nil
}

func privacyBudgetError(b float64) *FieldError {
	if b >= 0 && !math.IsInf(b, 1) { // NaN fails b >= 0
		return nil
	}
	return &FieldError{Field: "privacy_budget",
		Msg: strconv.FormatFloat(b, 'g', -1, 64) + " is not a finite number ≥ 0 (the total epsilon per organisation and year; 0 allows no noisy query)"}
}

type vchecker struct {
	s    schema
	errs Errors
}

func (c *vchecker) add(field string, msg ...string) {
	c.errs = append(c.errs, &FieldError{Field: field, Msg: strings.Join(msg, "")})
}

// validate allocates only when it finds a problem, since Decide runs it on
// every request.
func validate(d *yrdv1.Dataset, a *yrdv1.AccessRequest, s schema) Errors {
	c := &vchecker{s: s}
	if d == nil || a == nil {
		if d == nil {
			c.add("", "dataset is required")
		}
		if a == nil {
			c.add("", "access request is required")
		}
		return c.errs
	}
	if len(s.cols) == 0 {
		c.add("", "dataset ", show(d.GetId()), " has no columns")
	}
	switch id := a.GetDatasetId(); {
	case id == "":
		c.add("dataset_id", "required")
	case id != d.GetId():
		c.add("dataset_id", "names dataset ", show(id), ", but the dataset is ", show(d.GetId()))
	}
	if a.GetPurpose() == "" {
		c.add("purpose", "required: state what the result will be used for")
	}
	form := a.GetResultForm()
	switch form {
	case yrdv1.ResultForm_RESULT_FORM_ROWS, yrdv1.ResultForm_RESULT_FORM_AGGREGATES:
	case yrdv1.ResultForm_RESULT_FORM_UNSPECIFIED:
		c.add("result_form", "required: RESULT_FORM_ROWS or RESULT_FORM_AGGREGATES")
	default:
		c.add("result_form", "unknown value ", strconv.Itoa(int(form)), ", want RESULT_FORM_ROWS or RESULT_FORM_AGGREGATES")
	}
	c.names("columns", a.GetColumns(), true)
	c.names("filter_columns", a.GetFilterColumns(), false)
	c.names("group_by", a.GetGroupBy(), true)
	c.names("order_by", a.GetOrderBy(), false)
	c.aggregates(a.GetAggregates())
	switch form {
	case yrdv1.ResultForm_RESULT_FORM_ROWS:
		if len(a.GetGroupBy()) > 0 {
			c.add("group_by", "only with RESULT_FORM_AGGREGATES")
		}
		if len(a.GetAggregates()) > 0 {
			c.add("aggregates", "only with RESULT_FORM_AGGREGATES")
		}
	case yrdv1.ResultForm_RESULT_FORM_AGGREGATES:
		if len(a.GetAggregates()) == 0 {
			c.add("aggregates", "required with RESULT_FORM_AGGREGATES: at least one of ", aggregateFuncs)
		}
		if len(a.GetOrderBy()) <= maxList {
			ok := groupedOrAggregated(a, &s)
			for i, n := range a.GetOrderBy() {
				if j := s.find(n); j >= 0 && !ok.has(j) {
					c.add(index("order_by", i), show(n), " is neither in group_by nor aggregated, so the result cannot be ordered by it")
				}
			}
		}
	}
	return c.errs
}

// names checks a list of column names; noDup rejects repeats, which make no
// sense in a projection or grouping (filters may name a column twice).
func (c *vchecker) names(field string, names []string, noDup bool) {
	if len(names) > maxList {
		c.add(field, "has ", strconv.Itoa(len(names)), " entries, at most ", strconv.Itoa(maxList))
		return
	}
	var seen colSet
	for i, n := range names {
		j := c.s.find(n)
		switch {
		case j < 0:
			c.add(index(field, i), "unknown column ", show(n))
		case noDup && !seen.add(j):
			c.add(index(field, i), "duplicate column ", show(n))
		}
	}
}

func (c *vchecker) aggregates(ags []*yrdv1.Aggregate) {
	if len(ags) > maxList {
		c.add("aggregates", "has ", strconv.Itoa(len(ags)), " entries, at most ", strconv.Itoa(maxList))
		return
	}
	for i, ag := range ags {
		if ag == nil {
			c.add(index("aggregates", i), "missing aggregate")
			continue
		}
		f, name := ag.GetFunction(), ag.GetColumn()
		agg, ok := querylang.AggregateByKey(f)
		if !ok {
			c.add(index("aggregates", i)+".function", "unknown function ", show(f), ", want one of ", aggregateFuncs)
			continue
		}
		if name == "" {
			if !agg.StarAllowed {
				c.add(index("aggregates", i)+".column", "required for ", f, " (only count may omit it, for count(*))")
			}
			continue
		}
		j := c.s.find(name)
		if j < 0 {
			c.add(index("aggregates", i)+".column", "unknown column ", show(name))
			continue
		}
		if agg.Numeric && !querylang.NumericType(c.s.cols[j].GetType()) {
			c.add(index("aggregates", i)+".column", f, " needs a numeric column, and ", show(name), " is ", c.s.cols[j].GetType())
		}
	}
}

func index(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

func show(s string) string { return string(appendShow(nil, s)) }

// showMax is the most runes of a value a message quotes.
const showMax = 48

// plainASCII reports whether s quotes as itself: printable ASCII without
// quote or backslash.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendShow quotes a value for a message, shortened so that a huge value
// does not drown the rest.
func appendShow(b []byte, s string) []byte {
	if utf8.RuneCountInString(s) <= showMax {
		return strconv.AppendQuote(b, s)
	}
	n := 0
	for i := range s {
		if n == showMax {
			s = s[:i]
			break
		}
		n++
	}
	return append(strconv.AppendQuote(b, s), "…"...)
}
