package browser_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestBrowserGrants: Shanghai publishes its sample datasets and a Hangzhou
// analyst asks twice to use Shanghai's elderly population. On Hangzhou's
// console the analyst sees the requests waiting and cannot approve one: a
// forged approval is the API's PermissionDenied, HTTP 403. On Shanghai's
// console a CDO of another Shanghai organisation sees no form, and a
// forged approval is refused by the API. The owner's CDO approves one with
// a reason and an expiry date (the API then holds exactly that), rejects
// the other with a reason, and revokes the approved one; the analyst's
// page shows the outcome.
func TestBrowserGrants(t *testing.T) {
	c := startConsoleCluster(t, nil)
	ds, other := publishShanghaiSamples(t, c)
	first := requestGrant(t, c, ds, "elderly care planning for 2027")
	second := requestGrant(t, c, ds, "a second look")
	third := requestGrant(t, c, ds, "the 2028 plan, waiting")

	hz := newBrowser(t, c.Node(1).AdminAddr())
	hz.signIn(c.key(t, 1, "hz-planning", yrdv1.Role_ROLE_ANALYST))
	hz.visit("/grants")
	if n := hz.count("#pending article.grant"); n != 3 {
		t.Fatalf("the analyst's page lists %d waiting requests, want 3", n)
	}
	if n := hz.count("#pending form, button.approve"); n != 0 {
		t.Fatalf("the analyst's page offers %d decision forms", n)
	}
	if got := hz.text("#grant-" + first + " .purpose"); got != ds.GetPermittedPurposes()[0] {
		t.Fatalf("the analyst's request shows purpose %q", got)
	}
	hz.postForm("/grants/"+first+"/approve", map[string]string{"note": "self-approved"})
	assertRefused(t, hz, 403, "PermissionDenied")

	sh := newBrowser(t, c.Node(0).AdminAddr())
	sh.signIn(c.key(t, 0, other, yrdv1.Role_ROLE_CDO))
	sh.visit("/grants")
	if n := sh.count("#pending article.grant"); n != 0 {
		t.Fatalf("another organisation's CDO sees %d requests on their own data, want none", n)
	}
	sh.visit("/grants?owner=any")
	if n := sh.count("#grant-" + first + " form"); n != 0 || sh.count("#pending article.grant") != 3 {
		t.Fatalf("another organisation's CDO, all data: %d forms on the request, %d requests", n, sh.count("#pending article.grant"))
	}
	sh.postForm("/grants/"+first+"/approve", map[string]string{"note": "not mine to give"})
	assertRefused(t, sh, 403, "PermissionDenied: only a CDO of "+ds.GetOwnerOrg())
	if g := getGrant(t, c, first); g.GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED {
		t.Fatalf("after the refusals the grant is %v", g.GetState())
	}

	sh.signIn(c.key(t, 0, ds.GetOwnerOrg(), yrdv1.Role_ROLE_CDO))
	approveInBrowser(t, c, sh, first)
	sh.do(chromedp.SendKeys(chromedp.CSS("#note-"+second), "the first grant covers it"))
	sh.submit("#grant-" + second + " button.reject")
	if g := getGrant(t, c, second); g.GetState() != yrdv1.GrantState_GRANT_STATE_REJECTED || g.GetNote() != "the first grant covers it" {
		t.Fatalf("rejected in the browser, the API holds %v", g)
	}
	if n := sh.count("#pending article.grant"); n != 1 || sh.count("#grant-"+third+" form.decide") != 1 || sh.count("#decided-grants tbody tr") != 2 {
		t.Fatalf("after two decisions: %d waiting, %d decided", n, sh.count("#decided-grants tbody tr"))
	}
	sh.shot("grants-cdo")

	revokeInBrowser(t, c, sh, first)
	hz.visit("/grants")
	if got := hz.text("#grant-" + first + " .badge"); got != "已撤销" {
		t.Fatalf("the analyst sees the revoked grant as %q", got)
	}
	if got := hz.text("#grant-" + second + " .badge"); got != "已驳回" {
		t.Fatalf("the analyst sees the rejected grant as %q", got)
	}
	if got := hz.text("#grant-" + third + " .requester"); !strings.HasPrefix(got, "hz-planning · 杭州") {
		t.Fatalf("the analyst's waiting request shows requester %q", got)
	}
	hz.shot("grants-analyst")
}

// approveInBrowser approves id on the CDO's page with a reason and an
// expiry date ten days ahead: the API holds that note and midnight UTC of
// that date, and the page says so.
func approveInBrowser(t *testing.T, c *consoleCluster, b *browser, id string) {
	t.Helper()
	b.visit("/grants")
	if n := b.count("#pending article.grant"); n != 3 || b.count("#grant-"+id+" form.decide") != 1 {
		t.Fatalf("the owner's CDO sees %d requests, the first with %d forms", n, b.count("#grant-"+id+" form.decide"))
	}
	day := time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly)
	b.do(chromedp.SendKeys(chromedp.CSS("#note-"+id), "approved for the 2027 plan"),
		chromedp.SetValue(chromedp.CSS("#expires-"+id), day))
	b.submit("#grant-" + id + " button.approve")
	if p := b.path(); p != "/grants?done=approved&grant="+id {
		t.Fatalf("after approving, the browser is on %s", p)
	}
	if got := b.text("#notice"); !strings.Contains(got, id) || !strings.Contains(got, "已批准") {
		t.Fatalf("the notice says %q", got)
	}
	g := getGrant(t, c, id)
	want, _ := time.Parse(time.DateOnly, day)
	if g.GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED || !g.GetExpiresAt().AsTime().Equal(want) || g.GetNote() != "approved for the 2027 plan" {
		t.Fatalf("approved in the browser until %s, the API holds %v", day, g)
	}
	if got := b.text("#grant-" + id + " td.expires"); got != day+" 00:00:00" {
		t.Fatalf("the decided table shows expiry %q", got)
	}
}

// revokeInBrowser revokes id with a reason on the CDO's page.
func revokeInBrowser(t *testing.T, c *consoleCluster, b *browser, id string) {
	t.Helper()
	b.do(chromedp.SendKeys(chromedp.CSS("#revoke-note-"+id), "the plan was cancelled"))
	b.submit("#grant-" + id + " form.revoke button")
	if g := getGrant(t, c, id); g.GetState() != yrdv1.GrantState_GRANT_STATE_REVOKED || g.GetNote() != "the plan was cancelled" {
		t.Fatalf("revoked in the browser, the API holds %v", g)
	}
	if n := b.count("form.revoke"); n != 0 {
		t.Fatalf("a revoked grant still offers %d revoke forms", n)
	}
	if got := b.text("#notice"); !strings.Contains(got, id) {
		t.Fatalf("the notice after revoking says %q", got)
	}
}

// assertRefused checks the page is the API's refusal with the HTTP status.
func assertRefused(t *testing.T, b *browser, code int, msg string) {
	t.Helper()
	if got := b.text("#problem"); !strings.Contains(got, msg) {
		t.Fatalf("the refusal says %q, want %q", got, msg)
	}
	if got := b.pageStatus(); got != code {
		t.Fatalf("the refusal came with HTTP %d, want %d", got, code)
	}
}

// postForm submits from the current page a form the page does not offer,
// with the session's CSRF token from the sign-out form: what a person could
// send by hand, to show the API, not the missing button, refuses it.
func (b *browser) postForm(action string, fields map[string]string) {
	b.t.Helper()
	js := `(() => { const f = document.createElement('form'); f.method = 'post'; f.action = ` + jsString(action) + `;
	const add = (n, v) => { const i = document.createElement('input'); i.type = 'hidden'; i.name = n; i.value = v; f.appendChild(i); };
	add('csrf', document.querySelector('form[action="/signout"] input[name=csrf]').value);`
	for k, v := range fields {
		js += `add(` + jsString(k) + `, ` + jsString(v) + `);`
	}
	js += `const s = document.createElement('button'); s.type = 'submit'; s.id = 'forged'; s.textContent = 'forged'; f.appendChild(s);
	document.querySelector('main').appendChild(f); })()`
	b.do(chromedp.Evaluate[chromedp.Void](js))
	b.submit("#forged")
}

// publishShanghaiSamples publishes Shanghai's sample datasets, each by its
// owner's publisher, and returns the GENERAL one with permitted purposes
// and another Shanghai organisation.
func publishShanghaiSamples(t *testing.T, c *consoleCluster) (*yrdv1.Dataset, string) {
	t.Helper()
	var granted *yrdv1.Dataset
	var orgs []string
	for _, d := range sample.Datasets() {
		if d.GetOwnerCity() != "shanghai" {
			continue
		}
		conn, err := c.ConnAs(0, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(apiCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
		if granted == nil && len(d.GetPermittedPurposes()) > 0 && d.GetLevel() == yrdv1.ClassificationLevel_LEVEL_GENERAL {
			granted = d
		}
		orgs = append(orgs, d.GetOwnerOrg())
	}
	for _, o := range orgs {
		if o != granted.GetOwnerOrg() {
			return granted, o
		}
	}
	t.Fatal("the sample has one Shanghai organisation only")
	return nil, ""
}

// requestGrant asks, as a Hangzhou analyst of hz-planning, to use d for
// 90 days in aggregate, with note as the justification.
func requestGrant(t *testing.T, c *consoleCluster, d *yrdv1.Dataset, note string) string {
	t.Helper()
	conn, err := c.ConnAs(1, "hz-planning", yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := yrdv1grpc.NewGrantServiceClient(conn).RequestGrant(apiCtx(t), &yrdv1.RequestGrantRequest{DatasetId: d.GetId(),
		Purpose: d.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES,
		Duration: durationpb.New(90 * 24 * time.Hour), Note: note})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetGrant().GetId()
}

// getGrant is the grant as Shanghai's node holds it, read linearizably.
func getGrant(t *testing.T, c *consoleCluster, id string) *yrdv1.Grant {
	t.Helper()
	resp, err := yrdv1grpc.NewGrantServiceClient(c.Conn(0)).GetGrant(apiCtx(t), &yrdv1.GetGrantRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetGrant()
}
