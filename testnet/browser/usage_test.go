package browser_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// The datasets the usage test spends budget and exports on, both
// Shanghai's, both from internal/sample with synthetic rows.
const (
	usageElderly        = "shanghai.civil-affairs.elderly-population" // GENERAL, person_id DIRECT: noisy aggregates
	usageElderlyPurpose = "elderly-care-planning"
	usageTrips          = "shanghai.connected-vehicles.lingang-trips" // GENERAL, cross-border eligible
	usageTripsPurpose   = "autonomous-driving-research"
	usageExporter       = "lingang-ica" // the trips' owner, whose node counts the exports
)

// TestBrowserUsage spends privacy budget (noisy aggregates by analysts of
// Shanghai, Hangzhou and Nanjing on Shanghai's elderly population) and
// exports trips to Zhoushan, a trial partner outside the mainland, then
// lowers the export threshold so the count is near it. On Shanghai's
// console an auditor's tables are exactly what GetUsage answers the
// auditor, and so are the filtered ones; Shanghai's analyst sees only
// their organisation's row and is refused another's with the API's
// PermissionDenied (403); a publisher is refused the page.
func TestBrowserUsage(t *testing.T) {
	c := startUsageCluster(t)
	exported := spendAndExport(t, c)
	if err := c.UpdatePolicy(apiCtx(t), 0, func(p *yrdv1.PolicyParams) {
		p.CrossBorderIndividualsLimit = exported * 10 / 9 // 90%: a warning, not yet over
	}); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, c.Node(0).AdminAddr())
	b.signIn(c.key(t, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	b.visit("/usage")
	auditor := yrdv1grpc.NewPolicyServiceClient(connAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	all := getUsage(t, auditor, &yrdv1.GetUsageRequest{})
	if len(all.GetBudgets()) != 3 || len(all.GetExports()) != 1 || all.GetExports()[0].GetOrg() != usageExporter {
		t.Fatalf("the API's usage after the setup: %v", all)
	}
	b.wantUsage(all)
	if got := b.text("#budgets tr[data-org=nanjing-analytics] .b-city"); got != "南京" {
		t.Fatalf("Nanjing's budget row names the city %q", got)
	}
	if lvl := b.text("#exports tr.export.warn .badge"); lvl != "接近阈值" {
		t.Fatalf("an export at 90%% of its threshold is marked %q", lvl)
	}
	b.shot("usage")
	b.submit("#lang")
	b.shot("usage-en")
	b.submit("#lang")
	wantUsageFilters(t, b, auditor, int(all.GetYear()))

	b.submit("#signout")
	b.signIn(c.key(t, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST))
	b.visit("/usage")
	own := getUsage(t, yrdv1grpc.NewPolicyServiceClient(connAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)), &yrdv1.GetUsageRequest{})
	if len(own.GetBudgets()) != 1 || own.GetBudgets()[0].GetOrg() != "shanghai-analytics" {
		t.Fatalf("the API's usage for Shanghai's analyst: %v", own)
	}
	b.wantUsage(own)
	b.shot("usage-analyst")
	if code := b.status("/usage?org=nanjing-analytics"); code != 403 || !strings.Contains(b.text("#problem"), "PermissionDenied: org:") {
		t.Fatalf("an analyst asking for another organisation: HTTP %d, the page says %q", code, b.text("#problem"))
	}

	b.submit("#signout")
	b.signIn(c.key(t, 0, usageExporter, yrdv1.Role_ROLE_PUBLISHER))
	if code := b.status("/usage"); code != 403 || !strings.Contains(b.text("#problem"), "PermissionDenied") {
		t.Fatalf("a publisher: HTTP %d, the page says %q", code, b.text("#problem"))
	}
}

// wantUsageFilters: the form's organisation and year are GetUsage's, the
// year defaulting to the node's; a year that is no number is the
// console's 400, one the node does not record the node's InvalidArgument.
func wantUsageFilters(t *testing.T, b *browser, api yrdv1grpc.PolicyServiceClient, year int) {
	t.Helper()
	if got := get(b, chromedp.Value(chromedp.CSS("#f-year"))); got != strconv.Itoa(year) {
		t.Fatalf("the year field shows %q, the node reported %d", got, year)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#f-org"), "nanjing-analytics"))
	b.submit("#usage-apply")
	b.wantUsage(getUsage(t, api, &yrdv1.GetUsageRequest{Org: "nanjing-analytics"}))
	if b.count("#budgets tbody tr") != 1 || b.count("#exports-none") != 1 {
		t.Fatal("the organisation filter shows other organisations' usage")
	}
	b.visit(fmt.Sprintf("/usage?year=%d", year+1))
	if b.count("#budgets-none") != 1 || b.count("#exports-none") != 1 || b.text("#usage-year") != strconv.Itoa(year+1) {
		t.Fatalf("next year shows usage")
	}
	if code := b.status("/usage?year=soon"); code != 400 || b.count("#usage-form") != 1 {
		t.Fatalf("a year that is no number: HTTP %d", code)
	}
	if code := b.status("/usage?year=1999"); code != 400 || !strings.Contains(b.text("#problem"), "InvalidArgument: year: 1999") {
		t.Fatalf("a year before any record: HTTP %d, the page says %q", code, b.text("#problem"))
	}
}

// wantUsage checks the page shows exactly resp: the header, and each
// table's rows in order with the figures as the CLI prints them.
func (b *browser) wantUsage(resp *yrdv1.GetUsageResponse) {
	b.t.Helper()
	if got, want := b.text("#usage-policy"), fmt.Sprintf("v%d", resp.GetPolicyVersion()); got != want {
		b.t.Fatalf("the page shows policy %s, the API %s", got, want)
	}
	if got := b.text("#usage-year"); got != strconv.Itoa(int(resp.GetYear())) {
		b.t.Fatalf("the page shows year %s, the API %d", got, resp.GetYear())
	}
	if got := b.text("#usage-city"); got != "上海" || b.text("#usage-exports-city") != got || resp.GetCity() != "shanghai" {
		b.t.Fatalf("the page says %q answered, the API %q", got, resp.GetCity())
	}
	var budgets, exports []string
	for _, u := range resp.GetBudgets() {
		budgets = append(budgets, strings.Join([]string{u.GetCity(), u.GetOrg(), u.GetFamily(), usageG(u.GetSpent()),
			usageG(u.GetBudget()), usageG(u.GetRemaining())}, " "))
	}
	for _, e := range resp.GetExports() {
		kind := strings.ToLower(strings.TrimPrefix(e.GetKind().String(), "EXPORT_KIND_"))
		exports = append(exports, fmt.Sprintf("%s %s %d %d", e.GetOrg(), kind, e.GetCount(), e.GetThreshold()))
	}
	gotB := get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#budgets tbody tr')].map(r =>
		[r.dataset.city, r.dataset.org, r.dataset.family, ...['.b-spent', '.b-budget', '.b-remaining'].map(s => r.querySelector(s).textContent.trim())].join(' '))`))
	gotE := get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#exports tbody tr')].map(r =>
		[r.dataset.org, r.dataset.kind, ...['.e-count', '.e-threshold'].map(s => r.querySelector(s).textContent.trim())].join(' '))`))
	if fmt.Sprint(gotB) != fmt.Sprint(budgets) || fmt.Sprint(gotE) != fmt.Sprint(exports) {
		b.t.Fatalf("the page shows\n budgets %q\n exports %q\nGetUsage answers\n budgets %q\n exports %q", gotB, gotE, budgets, exports)
	}
	if n := b.count("#usage-budgets .usage-bar svg rect.fill[width]"); n != len(budgets) {
		b.t.Fatalf("%d budget bars for %d budgets", n, len(budgets))
	}
}

// usageG is an epsilon as the CLI prints it.
func usageG(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func getUsage(t *testing.T, api yrdv1grpc.PolicyServiceClient, req *yrdv1.GetUsageRequest) *yrdv1.GetUsageResponse {
	t.Helper()
	resp, err := api.GetUsage(apiCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// startUsageCluster is startConsoleCluster's delta with a fourth city,
// Zhoushan, a trial partner outside the mainland, and Shanghai serving
// synthetic rows of its elderly population and Lingang trips (whose
// vehicle_id identifies an individual, so exports are counted), both
// published and served.
func startUsageCluster(t *testing.T) *consoleCluster {
	t.Helper()
	files, datasets := usageData(t)
	clock := &fakeClock{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cities := []string{"shanghai", "hangzhou", "nanjing", "zhoushan"}
	tc, err := testnet.Start(ctx, testnet.Options{Cities: cities, Voters: 3, DataDir: t.TempDir(),
		OutsideMainland: map[string]bool{"zhoushan": true},
		Configure: func(i int, cfg *node.Config) {
			cfg.AdminAddr, cfg.ConsoleClock = "127.0.0.1:0", clock.now
			if cities[i] == "shanghai" {
				cfg.Data.Files = files
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	c := &consoleCluster{Cluster: tc, clock: clock}
	for _, d := range datasets {
		pub := yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER))
		if _, err := pub.PublishDataset(apiCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range datasets {
		waitServing(t, c.Node(0), d.GetId())
	}
	return c
}

// usageData writes 3000 synthetic rows (seed 7) of each usage dataset to
// CSV files and returns them as Shanghai's sources, with the datasets.
func usageData(t *testing.T) ([]connector.Source, []*yrdv1.Dataset) {
	t.Helper()
	dir := t.TempDir()
	var files []connector.Source
	var datasets []*yrdv1.Dataset
	for _, d := range synth.ForCity("shanghai") {
		if d.GetId() != usageElderly && d.GetId() != usageTrips {
			continue
		}
		for _, col := range d.GetSchema().GetColumns() {
			if d.GetId() == usageTrips && col.GetName() == "vehicle_id" {
				col.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
			}
		}
		path := filepath.Join(dir, d.GetId()+".csv")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := synth.WriteCSV(f, d, 3000, 7); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		files = append(files, connector.Source{DatasetID: d.GetId(), Format: "csv", Paths: []string{path}})
		datasets = append(datasets, d)
	}
	if len(datasets) != 2 {
		t.Fatalf("Shanghai's synthetic datasets lack %s or %s", usageElderly, usageTrips)
	}
	return files, datasets
}

// waitServing waits until n serves dataset id: publishing starts the
// owner's schema check, which ends in its own time.
func waitServing(t *testing.T, n *node.Node, id string) {
	t.Helper()
	ctx := apiCtx(t)
	for !n.Serving(id) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s is not served after publishing", id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// spendAndExport has analysts of Shanghai, Hangzhou and Nanjing (twice)
// ask noisy aggregates of Shanghai's elderly population, spending budget,
// and Zhoushan's partner take trips out of the mainland. It returns how
// many individuals Shanghai's node counted as exported.
func spendAndExport(t *testing.T, c *consoleCluster) uint64 {
	t.Helper()
	noisy := "SELECT district, count(*) FROM " + usageElderly + " GROUP BY district"
	for _, q := range []struct {
		city int
		org  string
	}{{0, "shanghai-analytics"}, {1, "hangzhou-analytics"}, {2, "nanjing-analytics"}, {2, "nanjing-analytics"}} {
		usageQuery(t, connAs(t, c, q.city, q.org, yrdv1.Role_ROLE_ANALYST), usageElderlyPurpose, noisy)
	}
	partner := connAs(t, c, c.Index("zhoushan"), "overseas-oem", yrdv1.Role_ROLE_ANALYST)
	usageQuery(t, partner, usageTripsPurpose, "SELECT trip_id FROM "+usageTrips+" LIMIT 40")
	resp := getUsage(t, yrdv1grpc.NewPolicyServiceClient(c.Conn(0)), &yrdv1.GetUsageRequest{Org: usageExporter})
	if len(resp.GetExports()) != 1 || resp.GetExports()[0].GetCount() < 10 {
		t.Fatalf("the trips' export was counted as %v", resp.GetExports())
	}
	return resp.GetExports()[0].GetCount()
}

// usageQuery runs sql for purpose on conn and requires an answer from
// Shanghai with rows.
func usageQuery(t *testing.T, conn *grpc.ClientConn, purpose, sql string) {
	t.Helper()
	st, err := yrdv1grpc.NewQueryServiceClient(conn).Query(apiCtx(t), &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sql}, Purpose: purpose})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var trailer *yrdv1.ResultTrailer
	rows := 0
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		rows += len(msg.GetBatch().GetRows()) + int(msg.GetColumns().GetRows())
		if tr := msg.GetTrailer(); tr != nil {
			trailer = tr
		}
	}
	if cs := trailer.GetCities(); len(cs) != 1 || cs[0].GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK || rows == 0 {
		t.Fatalf("%s: %d rows, trailer %v", sql, rows, trailer)
	}
}
