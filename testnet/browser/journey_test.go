package browser_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/yrd-exchange/yrdnode/internal/cli"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestBrowserJourneyRequestApproveQueryAudit is a day at the exchange,
// in the browser only: Hangzhou's analyst asks for Shanghai's elderly
// data on its dataset page; Shanghai's CDO approves the request with a
// reason; the analyst runs a query the grant allows and downloads its
// receipts, which `yrdnode receipt verify` accepts; Shanghai's auditor
// finds the approval and the query on the trail.
func TestBrowserJourneyRequestApproveQueryAudit(t *testing.T) {
	qd := startDataDelta(t)
	d := qd.elderly["shanghai"]
	analyst := newBrowser(t, qd.Node(1).AdminAddr())
	analyst.signIn(qd.key(t, 1, analystOrg, yrdv1.Role_ROLE_ANALYST))
	grantID := requestOnDatasetPage(t, analyst, d.GetId())

	owner := newBrowser(t, qd.Node(0).AdminAddr())
	owner.signIn(qd.key(t, 0, d.GetOwnerOrg(), yrdv1.Role_ROLE_CDO))
	owner.visit("/grants")
	owner.do(chromedp.SendKeys(chromedp.CSS("#note-"+grantID), "for the 2027 care plan"))
	owner.submit("#grant-" + grantID + " button.approve")
	if got := owner.text("#notice"); !strings.Contains(got, grantID) {
		t.Fatalf("after approving, the notice says %q", got)
	}
	owner.shot("journey-approved")

	analyst.visit("/query")
	analyst.fill("#sql", careSQL)
	analyst.fill("#purpose", queryPurpose)
	analyst.submit("#run")
	if n := analyst.count(`#cities tr[data-city="shanghai"][data-status="ok"]`); n != 1 || analyst.count("#rows tbody tr") == 0 {
		t.Fatalf("the granted query: Shanghai ok %d times, %d rows", n, analyst.count("#rows tbody tr"))
	}
	verifyReceipts(t, analyst.downloaded("#download-receipts"))
	analyst.shot("journey-result")

	owner.signIn(qd.key(t, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	owner.visit("/audit?action=grant_approve")
	if got := owner.text("#audit-records tbody"); !strings.Contains(got, d.GetId()) || !strings.Contains(got, d.GetOwnerOrg()) {
		t.Fatalf("the auditor's trail of approvals lacks the CDO's:\n%s", got)
	}
	owner.visit("/audit?action=query&requester=" + analystOrg)
	if got := owner.text("#audit-records tbody"); !strings.Contains(got, d.GetId()) || !strings.Contains(got, analystOrg) {
		t.Fatalf("the auditor's trail lacks the analyst's query:\n%s", got)
	}
	owner.shot("journey-audit")
}

// requestOnDatasetPage asks for d's personal data in aggregates on its
// page and returns the new grant's id, from the page's notice.
func requestOnDatasetPage(t *testing.T, b *browser, id string) string {
	t.Helper()
	b.visit("/datasets/" + id)
	b.do(chromedp.SetValue(chromedp.CSS("#purpose"), queryPurpose),
		chromedp.Click(chromedp.CSS("#allow_personal")),
		chromedp.SendKeys(chromedp.CSS("#note"), "care planning across the delta"))
	b.submit("#request-form button[type=submit]")
	grantID := b.text("#notice .mono")
	if !strings.HasPrefix(grantID, "grant-") {
		t.Fatalf("after requesting, the notice names %q", grantID)
	}
	return grantID
}

// verifyReceipts runs `yrdnode receipt verify` in-process on data and
// returns what it printed.
func verifyReceipts(t *testing.T, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "receipts.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := cli.Main(ctx, cli.Env{Args: []string{"receipt", "verify", file}, Stdout: &out, Stderr: &errb, Version: "test",
		Getenv: func(string) string { return "" }})
	if code != 0 || !strings.Contains(out.String(), "OK: signed by") {
		t.Fatalf("yrdnode receipt verify of the console's receipts: exit %d\n%s%s", code, out.String(), errb.String())
	}
	return out.String()
}
