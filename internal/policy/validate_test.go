package policy

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestValidateAccess: ValidateAccess accepts well-formed access requests
// and names the field of each mistake. Long because its table of cases
// is inline, one entry per mistake.
func TestValidateAccess(t *testing.T) {
	cases := []struct {
		name  string
		form  yrdv1.ResultForm
		edit  func(*yrdv1.AccessRequest)
		field string // "" with msg "" means valid
		msg   string
	}{
		{name: "rows, all columns", form: rows},
		{name: "rows, projection, filter, order", form: rows, edit: func(a *yrdv1.AccessRequest) {
			a.Columns, a.FilterColumns, a.OrderBy = []string{"district", "age"}, []string{"age", "age"}, []string{"district"}
		}},
		{name: "aggregates", form: aggs, edit: func(a *yrdv1.AccessRequest) {
			a.GroupBy, a.OrderBy = []string{"district"}, []string{"age", "district"}
			a.Aggregates = []*yrdv1.Aggregate{count(), agg("avg", "age"), agg("count_distinct", "person_id"), agg("min", "gender")}
		}},
		{name: "misspelt group column", form: aggs, edit: func(a *yrdv1.AccessRequest) {
			a.GroupBy, a.Aggregates = []string{"district", "distrct"}, []*yrdv1.Aggregate{count()}
		}, field: "group_by[1]", msg: `group_by[1]: unknown column "distrct"`},
		{name: "unknown projected column", form: rows, edit: func(a *yrdv1.AccessRequest) { a.Columns = []string{"name"} },
			field: "columns[0]", msg: `unknown column "name"`},
		{name: "duplicate projected column", form: rows, edit: func(a *yrdv1.AccessRequest) { a.Columns = []string{"age", "district", "age"} },
			field: "columns[2]", msg: `duplicate column "age"`},
		{name: "unknown filter column", form: rows, edit: func(a *yrdv1.AccessRequest) { a.FilterColumns = []string{""} },
			field: "filter_columns[0]", msg: `unknown column ""`},
		{name: "unknown order column", form: rows, edit: func(a *yrdv1.AccessRequest) { a.OrderBy = []string{"district", "Age"} },
			field: "order_by[1]", msg: `unknown column "Age"`},
		{name: "unknown function", form: aggs, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{agg("median", "age")} },
			field: "aggregates[0].function", msg: `unknown function "median", want one of count, count_distinct, sum, avg, min, max`},
		{name: "functions are lower case", form: aggs, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{count(), agg("COUNT", "")} },
			field: "aggregates[1].function"},
		{name: "unknown aggregate column", form: aggs, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{agg("sum", "pension")} },
			field: "aggregates[0].column", msg: `unknown column "pension"`},
		{name: "sum needs a column", form: aggs, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{agg("sum", "")} },
			field: "aggregates[0].column", msg: "required for sum"},
		{name: "avg over text", form: aggs, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{agg("avg", "gender")} },
			field: "aggregates[0].column", msg: `avg needs a numeric column, and "gender" is VARCHAR`},
		{name: "nil aggregate", form: aggs, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{count(), nil} },
			field: "aggregates[1]"},
		{name: "aggregates need a function", form: aggs, field: "aggregates", msg: "required with RESULT_FORM_AGGREGATES"},
		{name: "group_by with rows", form: rows, edit: func(a *yrdv1.AccessRequest) { a.GroupBy = []string{"district"} },
			field: "group_by", msg: "only with RESULT_FORM_AGGREGATES"},
		{name: "aggregates with rows", form: rows, edit: func(a *yrdv1.AccessRequest) { a.Aggregates = []*yrdv1.Aggregate{count()} },
			field: "aggregates"},
		{name: "order an aggregate by an ungrouped column", form: aggs, edit: func(a *yrdv1.AccessRequest) {
			a.GroupBy, a.OrderBy, a.Aggregates = []string{"district"}, []string{"gender"}, []*yrdv1.Aggregate{count()}
		}, field: "order_by[0]", msg: `"gender" is neither in group_by nor aggregated`},
		{name: "no result form", form: yrdv1.ResultForm_RESULT_FORM_UNSPECIFIED, field: "result_form", msg: "required"},
		{name: "unknown result form", form: 9, field: "result_form", msg: "unknown value 9"},
		{name: "no purpose", form: rows, edit: func(a *yrdv1.AccessRequest) { a.Purpose = "" }, field: "purpose", msg: "required"},
		{name: "no dataset id", form: rows, edit: func(a *yrdv1.AccessRequest) { a.DatasetId = "" }, field: "dataset_id", msg: "required"},
		{name: "another dataset", form: rows, edit: func(a *yrdv1.AccessRequest) { a.DatasetId = hospitalID },
			field: "dataset_id", msg: `names dataset "nanjing.health.hospital-visits", but the dataset is "shanghai.civil-affairs.elderly-population"`},
		{name: "too many columns", form: rows, edit: func(a *yrdv1.AccessRequest) { a.Columns = make([]string, maxList+1) },
			field: "columns", msg: "has 1025 entries, at most 1024"},
		{name: "long names are shortened", form: rows, edit: func(a *yrdv1.AccessRequest) { a.Columns = []string{strings.Repeat("x", 500)} },
			field: "columns[0]", msg: `"` + strings.Repeat("x", 48) + `"…`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &yrdv1.AccessRequest{DatasetId: elderlyID, Purpose: "elderly-care-planning", ResultForm: c.form}
			if c.edit != nil {
				c.edit(a)
			}
			err := ValidateAccess(dataset(t, elderlyID), a)
			if c.field == "" && c.msg == "" {
				if err != nil {
					t.Fatalf("ValidateAccess = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateAccess = nil, want an error on %s", c.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("first field error of %q is not on field %q", err, c.field)
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), c.field) {
				t.Errorf("error %q, want it to start with %q and contain %q", err, c.field, c.msg)
			}
		})
	}
}

func TestValidateAccessReportsEveryProblem(t *testing.T) {
	a := &yrdv1.AccessRequest{DatasetId: elderlyID, ResultForm: aggs,
		GroupBy: []string{"distrct"}, Aggregates: []*yrdv1.Aggregate{agg("median", "age")}}
	err := ValidateAccess(dataset(t, elderlyID), a)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("ValidateAccess = %v, want three problems", err)
	}
	want := `purpose: required: state what the result will be used for; group_by[0]: unknown column "distrct"; aggregates[0].function: unknown function "median", want one of count, count_distinct, sum, avg, min, max`
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
}

func TestValidateAccessNil(t *testing.T) {
	if err := ValidateAccess(nil, nil); err == nil || !strings.Contains(err.Error(), "dataset is required") ||
		!strings.Contains(err.Error(), "access request is required") {
		t.Errorf("ValidateAccess(nil, nil) = %v", err)
	}
	d := dataset(t, elderlyID)
	d.Schema = nil
	if err := ValidateAccess(d, &yrdv1.AccessRequest{DatasetId: elderlyID, Purpose: "x", ResultForm: rows}); err == nil ||
		!strings.Contains(err.Error(), "has no columns") {
		t.Errorf("ValidateAccess without a schema = %v", err)
	}
}

// Large schemas take the map path of the column lookup; it must agree with
// the linear one.
func TestValidateAccessLargeSchema(t *testing.T) {
	d := dataset(t, elderlyID)
	for i := range 100 {
		d.Schema.Columns = append(d.Schema.Columns, &yrdv1.Column{
			Name: "extra_" + strconv.Itoa(i), Type: "INTEGER", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_NONE,
		})
	}
	a := &yrdv1.AccessRequest{DatasetId: elderlyID, Purpose: "elderly-care-planning", ResultForm: rows,
		Columns: []string{"extra_99", "age", "extra_70", "extra_99"}}
	err := ValidateAccess(d, a)
	if err == nil || err.Error() != `columns[3]: duplicate column "extra_99"` {
		t.Fatalf("ValidateAccess = %v", err)
	}
	a.Columns = a.Columns[:3]
	r := &Request{Requester: analyst(), Dataset: d, Access: a, Now: now, Params: DefaultParams()}
	dec := decide(t, r)
	if got := treatments(dec); dec.GetEffect() != allowRows || got["extra_99"] != raw || got["age"] != generalised || len(got) != 3 {
		t.Errorf("decision %v %v", dec.GetEffect(), got)
	}
}

// The raft FSM decides budget spends with DefaultParams until the first
// policy update, so version 1 must stay exactly this.
func TestDefaultParams(t *testing.T) {
	want := &yrdv1.PolicyParams{
		Version:                              1,
		DefaultMinGroupSize:                  10,
		RowCap:                               100000,
		CrossBorderIndividualsLimit:          100000,
		CrossBorderSensitiveIndividualsLimit: 10000,
		TrialSectors:                         []string{"connected-vehicles", "fintech", "industrial-internet"},
		PrivacyBudget:                        10,
	}
	if got := DefaultParams(); !proto.Equal(got, want) {
		t.Errorf("DefaultParams() =\n%v\nwant\n%v", got, want)
	}
	if err := ValidateParams(DefaultParams()); err != nil {
		t.Errorf("the defaults are invalid: %v", err)
	}
}

func TestValidateParams(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*yrdv1.PolicyParams)
		field string // "" means valid
		msg   string
	}{
		{name: "defaults"},
		{name: "budget 0 allows no noisy query but is valid", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = 0 }},
		{name: "fractional budget", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = 0.5 }},
		{name: "large budget", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = 1e6 }},
		{name: "negative budget", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = -1 },
			field: "privacy_budget", msg: "privacy_budget: -1 is not a finite number ≥ 0"},
		{name: "NaN budget", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = math.NaN() },
			field: "privacy_budget", msg: "NaN is not a finite number"},
		{name: "infinite budget", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = math.Inf(1) },
			field: "privacy_budget", msg: "+Inf is not a finite number"},
		{name: "minus infinite budget", edit: func(p *yrdv1.PolicyParams) { p.PrivacyBudget = math.Inf(-1) },
			field: "privacy_budget"},
		{name: "k of 1", edit: func(p *yrdv1.PolicyParams) { p.DefaultMinGroupSize = 1 },
			field: "default_min_group_size", msg: "1 is below 2"},
		{name: "no row cap", edit: func(p *yrdv1.PolicyParams) { p.RowCap = 0 }, field: "row_cap", msg: "must be positive"},
		{name: "no cross-border limit", edit: func(p *yrdv1.PolicyParams) { p.CrossBorderIndividualsLimit = 0 },
			field: "cross_border_individuals_limit"},
		{name: "no sensitive cross-border limit", edit: func(p *yrdv1.PolicyParams) { p.CrossBorderSensitiveIndividualsLimit = 0 },
			field: "cross_border_sensitive_individuals_limit"},
		{name: "per-query epsilon bound and default", edit: func(p *yrdv1.PolicyParams) { p.MaxQueryEpsilon, p.DefaultQueryEpsilon = 0.3, 0.2 }},
		{name: "negative per-query bound", edit: func(p *yrdv1.PolicyParams) { p.MaxQueryEpsilon = -1 },
			field: "max_query_epsilon", msg: "-1 is not a finite number ≥ 0"},
		{name: "NaN default epsilon", edit: func(p *yrdv1.PolicyParams) { p.DefaultQueryEpsilon = math.NaN() },
			field: "default_query_epsilon", msg: "NaN is not a finite number"},
		{name: "default epsilon above the bound", edit: func(p *yrdv1.PolicyParams) { p.MaxQueryEpsilon, p.DefaultQueryEpsilon = 0.2, 0.3 },
			field: "default_query_epsilon", msg: "0.3 is above max_query_epsilon 0.2"},
		{name: "default epsilon above the default bound", edit: func(p *yrdv1.PolicyParams) { p.DefaultQueryEpsilon = 2 },
			field: "default_query_epsilon", msg: "2 is above max_query_epsilon 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			if c.edit != nil {
				c.edit(p)
			}
			err := ValidateParams(p)
			if c.field == "" {
				if err != nil {
					t.Fatalf("ValidateParams = %v, want nil", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != c.field {
				t.Fatalf("ValidateParams = %v, want one error on %s", err, c.field)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not contain %q", err, c.msg)
			}
		})
	}
	if err := ValidateParams(nil); err == nil {
		t.Error("nil params valid")
	}
	err := ValidateParams(&yrdv1.PolicyParams{PrivacyBudget: math.NaN()})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 5 {
		t.Errorf("empty params with a NaN budget: %v, want five problems", err)
	}
}

func TestValidatePrivacyBudget(t *testing.T) {
	for _, b := range []float64{0, 1e-9, 10, math.MaxFloat64} {
		if err := ValidatePrivacyBudget(b); err != nil {
			t.Errorf("ValidatePrivacyBudget(%v) = %v", b, err)
		}
	}
	for _, b := range []float64{-1e-300, math.NaN(), math.Inf(1), math.Inf(-1)} {
		var fe *FieldError
		if err := ValidatePrivacyBudget(b); !errors.As(err, &fe) || fe.Field != "privacy_budget" {
			t.Errorf("ValidatePrivacyBudget(%v) = %v, want a privacy_budget FieldError", b, err)
		}
	}
}
