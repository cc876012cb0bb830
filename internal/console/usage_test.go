package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestUsageBarIsTheShareOfTheLimit: the width is the share in percent,
// capped at the bar's end; from 80% on a warning, from 100% bad; a limit
// of 0 with anything used is over it.
func TestUsageBarIsTheShareOfTheLimit(t *testing.T) {
	for _, c := range []struct {
		used, limit       float64
		width, pct, level string
	}{
		{0, 10, "0.0", "0%", "ok"},
		{0.001, 10, "0.0", "<1%", "ok"},
		{29, 100, "29.0", "29%", "ok"},
		{7.99, 10, "79.9", "79%", "ok"},
		{8, 10, "80.0", "80%", "warn"},
		{598, 664, "90.1", "90%", "warn"},
		{664, 664, "100.0", "100%", "bad"},
		{12, 10, "100.0", "120%", "bad"},
		{0, 0, "0.0", "0%", "ok"},
		{3, 0, "100.0", "∞", "bad"},
	} {
		b := newUsageBar(c.used, c.limit)
		if b.Width != c.width || b.Percent != c.pct || b.Level != c.level {
			t.Errorf("%v of %v: %+v, want width %s, %s, %s", c.used, c.limit, b, c.width, c.pct, c.level)
		}
	}
}

// usageAnswer is a PolicyService whose GetUsage answers resp and records
// the request.
type usageAnswer struct {
	yrdv1grpc.PolicyServiceClient
	resp *yrdv1.GetUsageResponse
	got  *yrdv1.GetUsageRequest
}

func (u *usageAnswer) GetUsage(_ context.Context, req *yrdv1.GetUsageRequest, _ ...grpc.CallOption) (*yrdv1.GetUsageResponse, error) {
	u.got = req
	return u.resp, nil
}

// TestUsagePageShowsTheAnswer: the form's values are the request; the
// organisation-wide row (family "") is labelled; the bars are SVG widths
// with no inline style; each export's kind is in words and its row is
// marked by how near its threshold it is.
func TestUsagePageShowsTheAnswer(t *testing.T) {
	api := &usageAnswer{resp: &yrdv1.GetUsageResponse{City: "nanjing", Year: 2026, PolicyVersion: 7,
		Budgets: []*yrdv1.BudgetUsage{
			{City: "hangzhou", Org: "hz-old", Year: 2026, Spent: 0.1 + 0.2, Budget: 10, Remaining: 10 - (0.1 + 0.2)},
			{City: "nanjing", Org: "nj-a", Year: 2026, Family: "yrd.f.v1", Spent: 12, Budget: 10, Remaining: 0},
		},
		Exports: []*yrdv1.ExportUsage{
			{Org: "nj-a", Year: 2026, Kind: yrdv1.ExportKind_EXPORT_KIND_PERSONAL, Count: 50, Threshold: 100},
			{Org: "nj-a", Year: 2026, Kind: yrdv1.ExportKind_EXPORT_KIND_SENSITIVE, Count: 85, Threshold: 100},
			{Org: "nj-b", Year: 2026, Kind: yrdv1.ExportKind_EXPORT_KIND_SENSITIVE, Count: 100, Threshold: 100},
		}}}
	body, code := usageGet(t, api, "/usage?year=2026&org=+nj-a+")
	if code != http.StatusOK || api.got.GetYear() != 2026 || api.got.GetOrg() != "nj-a" {
		t.Fatalf("HTTP %d, request %v", code, api.got)
	}
	for _, want := range []string{`id="usage-city">南京<`, `id="usage-policy">v7<`, "全机构合计", `class="num b-spent" data-label="已用">0.3<`,
		`<rect class="fill" width="100.0" height="10">`, `<tr class="budget" data-city="nanjing" data-org="nj-a" data-family="yrd.f.v1" data-level="bad">`,
		`<tr class="export ok" data-org="nj-a" data-kind="personal"`, `<tr class="export warn" data-org="nj-a" data-kind="sensitive"`,
		`<tr class="export bad" data-org="nj-b"`, "敏感个人信息", "接近阈值", "已达阈值"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if regexp.MustCompile(`\sstyle=`).MatchString(body) {
		t.Error("the page has an inline style, which the CSP forbids")
	}
}

// TestUsageYearMustBeANumber: a year that is no number is the console's
// 400, with the form to correct it, and no call; an empty year asks for
// the node's current one and fills the form with it.
func TestUsageYearMustBeANumber(t *testing.T) {
	api := &usageAnswer{resp: &yrdv1.GetUsageResponse{City: "nanjing", Year: 2031}}
	body, code := usageGet(t, api, "/usage?year=next")
	if code != http.StatusBadRequest || api.got != nil || !strings.Contains(body, `id="usage-form"`) || !strings.Contains(body, `id="problem"`) {
		t.Fatalf("HTTP %d, request %v", code, api.got)
	}
	body, code = usageGet(t, api, "/usage")
	if code != http.StatusOK || api.got.GetYear() != 0 || !strings.Contains(body, `name="year" min="2000" step="1" value="2031"`) ||
		!strings.Contains(body, `id="budgets-none"`) || !strings.Contains(body, `id="exports-none"`) {
		t.Fatalf("HTTP %d, request %v:\n%s", code, api.got, body)
	}
}

// usageGet gets path from a console whose policy service is api, signed
// in as an auditor.
func usageGet(t *testing.T, api yrdv1grpc.PolicyServiceClient, path string) (string, int) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := New(DefaultConfig(conn, "nanjing", slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	c.api.policy = api
	s := c.sessions.create(callCreds{apiKey: "k"}, &yrdv1.Principal{City: "nanjing", Org: "nj-audit", Role: yrdv1.Role_ROLE_AUDITOR}, "api-key")
	r := httptest.NewRequest("GET", path, nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.id})
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	return w.Body.String(), w.Code
}
