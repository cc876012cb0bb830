package console

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// routeUsage adds the budgets and exports page: a year's privacy budget
// spending and cross-border export counts against their limits, as
// PolicyService.GetUsage answers them (what `yrdnode policy usage` prints).
// Who sees which organisations is the node's rule (node/usage.go).
func (c *Console) routeUsage(mux *http.ServeMux) {
	mux.HandleFunc("GET /usage", c.withSession(c.usagePage))
}

// Thresholds of the bars' colours, in percent of a budget or export
// limit: from usageWarn on a warning, from usageBad on (the limit
// reached) bad. Only the colour: the figures are the node's.
const (
	usageWarn = 80
	usageBad  = 100
)

// usageForm is the form as typed, to fill it in again.
type usageForm struct{ Year, Org string }

// usageView is the page: the form, the answer's header and both tables.
type usageView struct {
	Form          usageForm
	City          string // the answering node's city, in the page's language
	Year          int32
	PolicyVersion uint64
	Budgets       []budgetRow
	Exports       []exportRow
}

// budgetRow is one BudgetUsage as the table shows it.
type budgetRow struct {
	B                     *yrdv1.BudgetUsage
	City                  string
	Spent, Budget, Remain string // epsilons as the CLI prints them
	Bar                   usageBar
	OrgTotal              bool // family "": the organisation's spends before families
}

// exportRow is one ExportUsage as the table shows it.
type exportRow struct {
	E    *yrdv1.ExportUsage
	Kind string // the CLI's word: personal or sensitive
	Bar  usageBar
}

// usageBar is a share of a limit drawn as an SVG bar: Width is the
// filled rect's width attribute out of 100 (the CSP forbids inline
// styles, not SVG attributes), Level the class: ok, warn or bad.
type usageBar struct {
	Width   string
	Percent string
	Level   string
}

func (c *Console) usagePage(w http.ResponseWriter, r *http.Request, s *session) {
	form := usageForm{Year: strings.TrimSpace(r.URL.Query().Get("year")), Org: strings.TrimSpace(r.URL.Query().Get("org"))}
	req, err := form.request()
	if err != nil {
		d := c.sessionData(s, "usage", usageView{Form: form})
		d.Problem = c.tr(r, "usage.bad_year") + ": " + err.Error()
		c.render(w, r, http.StatusBadRequest, "usage", d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.api.policy.GetUsage(s.creds.outgoing(ctx), req)
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	c.page(w, r, s, "usage", "usage", newUsageView(form, resp, language(r)))
}

// request is the GetUsage request the form asks for. The year must be a
// number; whether it is a year the node records is the node's to say.
func (f usageForm) request() (*yrdv1.GetUsageRequest, error) {
	req := &yrdv1.GetUsageRequest{Org: f.Org}
	if f.Year != "" {
		y, err := strconv.ParseInt(f.Year, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a year", f.Year)
		}
		req.Year = int32(y)
	}
	return req, nil
}

// newUsageView is the page for resp; the form's year defaults to the one
// the node reported.
func newUsageView(form usageForm, resp *yrdv1.GetUsageResponse, lang string) usageView {
	if form.Year == "" {
		form.Year = strconv.Itoa(int(resp.GetYear()))
	}
	v := usageView{Form: form, City: cityName(resp.GetCity(), lang), Year: resp.GetYear(), PolicyVersion: resp.GetPolicyVersion()}
	for _, b := range resp.GetBudgets() {
		v.Budgets = append(v.Budgets, budgetRow{B: b, City: cityName(b.GetCity(), lang), Spent: usageEpsilon(b.GetSpent()),
			Budget: usageEpsilon(b.GetBudget()), Remain: usageEpsilon(b.GetRemaining()), Bar: newUsageBar(b.GetSpent(), b.GetBudget()),
			OrgTotal: b.GetFamily() == ""})
	}
	for _, e := range resp.GetExports() {
		v.Exports = append(v.Exports, exportRow{E: e, Kind: enumWord(e.GetKind().String(), "EXPORT_KIND_"),
			Bar: newUsageBar(float64(e.GetCount()), float64(e.GetThreshold()))})
	}
	return v
}

// newUsageBar is used of limit as a bar. A limit of 0 with anything used
// is over it. The percentage is used*100/limit, not (used/limit)*100,
// so that 29 of 100 is 29, not 28.999….
func newUsageBar(used, limit float64) usageBar {
	pct := 0.0
	switch {
	case limit > 0:
		pct = used * 100 / limit
	case used > 0:
		pct = math.Inf(1)
	}
	b := usageBar{Level: "ok", Width: strconv.FormatFloat(math.Min(pct, 100), 'f', 1, 64), Percent: usagePercent(pct)}
	switch {
	case pct >= usageBad:
		b.Level = "bad"
	case pct >= usageWarn:
		b.Level = "warn"
	}
	return b
}

// usagePercent is pct in whole percent, rounded down so that a share shows 80%
// only once it reaches the warning; a little is "<1%", not "0%".
func usagePercent(pct float64) string {
	switch {
	case math.IsInf(pct, 1):
		return "∞"
	case pct > 0 && pct < 1:
		return "<1%"
	case pct > 10000:
		return ">10000%"
	}
	return strconv.FormatFloat(math.Floor(pct), 'f', 0, 64) + "%"
}

// usageEpsilon is a privacy loss to six significant digits, as the CLI prints
// it (internal/cli/usage.go), so sums like 0.1+0.2 show no float error.
func usageEpsilon(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
