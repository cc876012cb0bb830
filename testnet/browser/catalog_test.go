package browser_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestBrowserCatalogAndDataset: with Shanghai's and Hangzhou's sample
// datasets published, a Hangzhou analyst on Hangzhou's console sees in the
// catalog exactly what ListDatasets gives for the same filter (all, by
// city, by level, by words, page by page); the dataset page shows the
// schema, level and rights; the analyst requests access through the form
// and the grant is pending at the node. A Shanghai publisher gets no form,
// and a forged request is refused by the node (PermissionDenied, 403).
func TestBrowserCatalogAndDataset(t *testing.T) {
	c := startConsoleCluster(t, nil)
	datasets := catalogPublish(t, c, "shanghai", "hangzhou")
	analyst, err := c.ConnAs(1, "hz-planning", yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		t.Fatal(err)
	}
	api := yrdv1grpc.NewCatalogServiceClient(analyst)
	b := newBrowser(t, c.Node(1).AdminAddr())
	b.signIn(c.key(t, 1, "hz-planning", yrdv1.Role_ROLE_ANALYST))

	b.visit("/catalog")
	catalogWantRows(t, b, api, &yrdv1.ListDatasetsRequest{}, len(datasets))
	if n := b.count("#datasets .badge.pi"); n != 4 {
		t.Errorf("%d rows carry a personal-information badge, want 4 (all but the enterprise credit ratings)", n)
	}
	b.shot("catalog")

	b.do(chromedp.SetValue(chromedp.CSS("#city"), "shanghai"))
	b.submit("#search")
	if p := b.path(); !strings.Contains(p, "city=shanghai") {
		t.Fatalf("the search form went to %s", p)
	}
	catalogWantRows(t, b, api, &yrdv1.ListDatasetsRequest{OwnerCity: "shanghai"}, 3)
	if got := b.text("#datasets tbody td.owner"); !strings.Contains(got, "上海") {
		t.Errorf("the owner city reads %q, want its Chinese name", got)
	}
	b.shot("catalog-filtered")

	b.do(chromedp.SetValue(chromedp.CSS("#city"), ""), chromedp.SetValue(chromedp.CSS("#level"), "core"))
	b.submit("#search")
	catalogWantRows(t, b, api, &yrdv1.ListDatasetsRequest{Level: yrdv1.ClassificationLevel_LEVEL_CORE}, 1)
	if n := b.count("#datasets tbody .badge.core"); n != 1 || b.text("#datasets tbody .badge.core") != "核心数据" {
		t.Errorf("the core row's badge: %d of them, reading %q", n, b.text("#datasets tbody .badge.core"))
	}

	b.visit("/catalog?text=Lingang")
	catalogWantRows(t, b, api, &yrdv1.ListDatasetsRequest{Text: "Lingang"}, 1)
	if got := b.text("#datasets tbody tr"); !strings.Contains(got, "shanghai.connected-vehicles.lingang-trips") {
		t.Errorf("searching for a word of its title found %q", got)
	}
	catalogPages(t, b, api, len(datasets))

	catalogDatasetPage(t, b, datasets["shanghai.civil-affairs.elderly-population"], analyst)
	catalogForeignPublisher(t, c, datasets["hangzhou.civil-affairs.elderly-population"])
}

// catalogPublish publishes the sample datasets of cities through the API,
// each by a publisher of its organisation, and returns them by id.
func catalogPublish(t *testing.T, c *consoleCluster, cities ...string) map[string]*yrdv1.Dataset {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]*yrdv1.Dataset{}
	for _, d := range sample.Datasets() {
		if !slices.Contains(cities, d.GetOwnerCity()) {
			continue
		}
		conn, err := c.PublisherConn(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
		out[d.GetId()] = d
	}
	return out
}

// catalogWantRows checks that the results table lists exactly the ids
// ListDatasets gives for req, and that they are want many.
func catalogWantRows(t *testing.T, b *browser, api yrdv1grpc.CatalogServiceClient, req *yrdv1.ListDatasetsRequest, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := api.ListDatasets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range resp.GetDatasets() {
		ids = append(ids, d.GetId())
	}
	shown := catalogShownIDs(b)
	if !slices.Equal(shown, ids) || len(ids) != want {
		t.Fatalf("for %v the console lists %v, the API %v (want %d)", req, shown, ids, want)
	}
	if got := b.text("#result-count"); got != strconv.Itoa(want) {
		t.Errorf("the count reads %q, want %d", got, want)
	}
}

func catalogShownIDs(b *browser) []string {
	return get(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#datasets tbody tr')).map(r => r.dataset.id)`))
}

// catalogPages walks the catalog two datasets a page: the pages together
// are the whole catalog, in the API's order, and the last has no next.
func catalogPages(t *testing.T, b *browser, api yrdv1grpc.CatalogServiceClient, total int) {
	t.Helper()
	b.visit("/catalog?size=2")
	var all []string
	for page := 0; ; page++ {
		shown := catalogShownIDs(b)
		if len(shown) == 0 || len(shown) > 2 || page > total {
			t.Fatalf("page %d lists %v", page, shown)
		}
		all = append(all, shown...)
		if b.count("#next-page") == 0 {
			break
		}
		b.submit("#next-page")
		if b.count("#first-page") != 1 {
			t.Fatal("a later page has no link to the first")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := api.ListDatasets(ctx, &yrdv1.ListDatasetsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range resp.GetDatasets() {
		want = append(want, d.GetId())
	}
	if !slices.Equal(all, want) || len(all) != total {
		t.Fatalf("page by page the console lists %v, the API %v", all, want)
	}
}

// catalogDatasetPage opens d's page as the analyst behind conn, checks
// what it shows, requests access through its form and finds the grant
// pending at the node.
func catalogDatasetPage(t *testing.T, b *browser, d *yrdv1.Dataset, conn *grpc.ClientConn) {
	t.Helper()
	b.visit("/datasets/" + d.GetId())
	if got := b.text("#dataset-title"); got != d.GetTitle() {
		t.Errorf("the title reads %q, want %q as published", got, d.GetTitle())
	}
	if n := b.count("#schema tbody tr"); n != len(d.GetSchema().GetColumns()) {
		t.Errorf("the schema shows %d columns, want %d", n, len(d.GetSchema().GetColumns()))
	}
	if b.count("#level.badge.general") != 1 || b.text("#level") != "一般数据" {
		t.Errorf("the level badge: %q", b.text("#level"))
	}
	if got := b.text("#rights"); !strings.Contains(got, d.GetDataRights().GetHolder()) || !strings.Contains(got, d.GetDataRights().GetRegistrationRef()) {
		t.Errorf("the data rights read %q", got)
	}
	if got := b.text("#family"); !strings.Contains(got, d.GetStandardSchemaId()) {
		t.Errorf("the family reads %q, want %s", got, d.GetStandardSchemaId())
	}
	if n := b.count("#purpose option"); n != len(d.GetPermittedPurposes()) || b.count("#no-grants") != 1 {
		t.Fatalf("the request form offers %d purposes (want %d); no-grants shown %d times", n, len(d.GetPermittedPurposes()), b.count("#no-grants"))
	}
	purpose := d.GetPermittedPurposes()[1]
	b.do(chromedp.SetValue(chromedp.CSS("#purpose"), purpose), chromedp.SetValue(chromedp.CSS("#result_form"), "aggregates"),
		chromedp.SetValue(chromedp.CSS("#days"), "30"), chromedp.SendKeys(chromedp.CSS("#note"), "养老服务设施规划"))
	if code := catalogSubmitStatus(b, "#request-submit"); code != http.StatusOK {
		t.Fatalf("the request ended with HTTP %d", code)
	}
	g := catalogOnlyGrant(t, conn, d.GetId())
	if g.GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED || g.GetRequesterOrg() != "hz-planning" || g.GetPurpose() != purpose ||
		g.GetResultForm() != yrdv1.ResultForm_RESULT_FORM_AGGREGATES || g.GetDuration().AsDuration() != 30*24*time.Hour || g.GetNote() != "养老服务设施规划" {
		t.Fatalf("the node holds %v", g)
	}
	if got := b.text("#notice"); !strings.Contains(got, g.GetId()) {
		t.Errorf("the notice reads %q, want the grant %s", got, g.GetId())
	}
	if got := b.text("#grant-list tbody tr"); !strings.Contains(got, "待审批") || !strings.Contains(got, purpose) {
		t.Errorf("the grants section reads %q", got)
	}
	b.shot("dataset")
}

// catalogOnlyGrant is the one grant the node lists on dataset.
func catalogOnlyGrant(t *testing.T, conn *grpc.ClientConn, dataset string) *yrdv1.Grant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := yrdv1grpc.NewGrantServiceClient(conn).ListGrants(ctx, &yrdv1.ListGrantsRequest{DatasetId: dataset})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetGrants()) != 1 {
		t.Fatalf("the node lists %d grants on %s, want 1", len(resp.GetGrants()), dataset)
	}
	return resp.GetGrants()[0]
}

// catalogForeignPublisher: a Shanghai publisher on Shanghai's console sees
// Hangzhou's dataset without a request form; a request forged with the
// session's own CSRF token reaches the node, which refuses the role.
func catalogForeignPublisher(t *testing.T, c *consoleCluster, d *yrdv1.Dataset) {
	t.Helper()
	b := newBrowser(t, c.Node(0).AdminAddr())
	b.signIn(c.key(t, 0, "sh-civil-affairs", yrdv1.Role_ROLE_PUBLISHER))
	b.visit("/datasets/" + d.GetId())
	if b.count("#request-form") != 0 || b.count("#schema tbody tr") != len(d.GetSchema().GetColumns()) {
		t.Fatalf("the publisher's dataset page: %d request forms, %d schema rows", b.count("#request-form"), b.count("#schema tbody tr"))
	}
	b.postForm("/datasets/"+d.GetId()+"/request", map[string]string{
		"purpose": d.GetPermittedPurposes()[0], "result_form": "aggregates", "days": "30"})
	if code := b.pageStatus(); code != http.StatusForbidden {
		t.Errorf("the publisher's request ended with HTTP %d, want 403", code)
	}
	if msg := b.text("#problem"); !strings.Contains(msg, "PermissionDenied") || !strings.Contains(msg, "publisher") {
		t.Errorf("the refusal reads %q", msg)
	}
	b.shot("dataset-refused")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := yrdv1grpc.NewGrantServiceClient(c.Conn(0)).ListGrants(ctx, &yrdv1.ListGrantsRequest{DatasetId: d.GetId()})
	if err != nil || len(resp.GetGrants()) != 0 {
		t.Fatalf("after the refusal the node lists %v (%v)", resp.GetGrants(), err)
	}
}

// catalogSubmitStatus clicks sel and returns the HTTP status of the page
// it leads to (after redirects).
func catalogSubmitStatus(b *browser, sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return resp.Status
}
