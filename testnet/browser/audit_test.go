package browser_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestBrowserAuditTrail makes a trail through the API at Shanghai
// (publications, decisions allowed and denied, a refused call, a wrong key)
// and reads it in the console as Shanghai's auditor: the table holds what
// ListAudit answers for the same filter, the deny filter shows denials
// only, verification is ok with the node's record count, and the export
// link downloads the filtered records as the CLI's JSON Lines. An analyst
// is refused the page and the export with the API's PermissionDenied.
func TestBrowserAuditTrail(t *testing.T) {
	c := startConsoleCluster(t, nil)
	makeAuditTrail(t, c)
	auditor := yrdv1grpc.NewAuditServiceClient(connAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))

	b := newBrowser(t, c.Node(0).AdminAddr())
	b.signIn("yrdk_0000000000000000_bm90YWtleQ") // a refused sign-in is on the trail too
	b.signIn(c.key(t, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	b.visit("/audit")
	all := listAudit(t, auditor, &yrdv1.ListAuditRequest{})
	b.wantAuditRows(all)
	v, err := auditor.VerifyAudit(apiCtx(t), &yrdv1.VerifyAuditRequest{})
	if err != nil || !v.GetOk() {
		t.Fatalf("VerifyAudit of an untouched log: %v %v", v, err)
	}
	if got := b.text("#audit-verified-records"); got != strconv.FormatUint(v.GetRecords(), 10) {
		t.Fatalf("verification shows %s records, the node verified %d", got, v.GetRecords())
	}
	b.shot("audit")
	wantAuditPaging(t, b, auditor)
	if code := b.status("/audit?since=yesterday"); code != 400 || !strings.Contains(b.text("#problem"), "since") {
		t.Fatalf("a malformed time: HTTP %d, the page says %q", code, b.text("#problem"))
	}

	b.visit("/audit")
	b.do(chromedp.SetValue(chromedp.CSS("#f-decision"), "deny"))
	b.submit("#audit-apply")
	denied := listAudit(t, auditor, &yrdv1.ListAuditRequest{Decision: yrdv1.Effect_EFFECT_DENY})
	if len(denied) < 3 || len(denied) == len(all) {
		t.Fatalf("%d of %d records are denials; the trail was meant to have some of each", len(denied), len(all))
	}
	b.wantAuditRows(denied)
	if n := b.count(`#audit-records tbody tr:not([data-decision="deny"])`); n != 0 {
		t.Fatalf("the deny filter shows %d records that are not denials", n)
	}
	b.shot("audit-filtered")

	wantExport(t, b.download("#audit-export"), denied)
	b.wantAnalystRefused(c.key(t, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST))
}

// makeAuditTrail writes records to Shanghai's log through its API:
// Shanghai's datasets published, an analyst's decisions (one allowed, one
// on core data denied), a publisher's decision (denied: not an analyst)
// and an analyst's call of an auditor's method (refused).
func makeAuditTrail(t *testing.T, c *consoleCluster) {
	t.Helper()
	var mine []*yrdv1.Dataset
	for _, d := range sample.Datasets() {
		if d.GetOwnerCity() != "shanghai" {
			continue
		}
		pub := yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER))
		if _, err := pub.PublishDataset(apiCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
		mine = append(mine, d)
	}
	analyst := connAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)
	publisher := connAs(t, c, 0, mine[0].GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)
	for _, call := range []struct {
		conn *grpc.ClientConn
		d    *yrdv1.Dataset
		form yrdv1.ResultForm
	}{
		{analyst, mine[0], yrdv1.ResultForm_RESULT_FORM_AGGREGATES},
		{analyst, mine[len(mine)-1], yrdv1.ResultForm_RESULT_FORM_ROWS},
		{publisher, mine[0], yrdv1.ResultForm_RESULT_FORM_AGGREGATES},
	} {
		req := &yrdv1.AccessRequest{DatasetId: call.d.GetId(), Purpose: call.d.GetPermittedPurposes()[0], ResultForm: call.form}
		if call.form == yrdv1.ResultForm_RESULT_FORM_AGGREGATES {
			req.GroupBy, req.Columns, req.Aggregates = []string{"district"}, []string{"district"}, []*yrdv1.Aggregate{{Function: "count"}}
		}
		if _, err := yrdv1grpc.NewPolicyServiceClient(call.conn).Decide(apiCtx(t), &yrdv1.DecideRequest{Access: req}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := yrdv1grpc.NewAuditServiceClient(analyst).ListAudit(apiCtx(t), &yrdv1.ListAuditRequest{}); err == nil {
		t.Fatal("an analyst read the audit trail through the API")
	}
}

// wantAuditPaging reads the trail five records a page: each page is the
// API's page for the same position, the next link follows next_after_seq,
// and a time range in the future matches nothing.
func wantAuditPaging(t *testing.T, b *browser, auditor yrdv1grpc.AuditServiceClient) {
	t.Helper()
	b.visit("/audit?limit=5")
	for after := uint64(0); ; {
		resp, err := auditor.ListAudit(apiCtx(t), &yrdv1.ListAuditRequest{AfterSeq: after, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		b.wantAuditRows(resp.GetRecords())
		if resp.GetNextAfterSeq() == 0 {
			if b.count("#audit-next") != 0 {
				t.Fatal("the last page links to a next one")
			}
			break
		}
		after = resp.GetNextAfterSeq()
		b.submit("#audit-next")
	}
	if b.count("#audit-first") != 1 {
		t.Fatal("a later page has no link back to the first")
	}
	future := time.Now().UTC().Add(24 * time.Hour).Format("2006-01-02T15:04")
	b.visit("/audit?since=" + future)
	if b.count("#audit-records") != 0 || b.count("#audit-none") != 1 {
		t.Fatalf("records from %s on: the page shows some", future)
	}
}

// wantAuditRows checks that the table shows exactly recs, in order.
func (b *browser) wantAuditRows(recs []*yrdv1.AuditRecord) {
	b.t.Helper()
	ids := get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#audit-records tbody tr')].map(r => r.id)`))
	var want []string
	for _, r := range recs {
		want = append(want, "rec-"+strconv.FormatUint(r.GetSeq(), 10))
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		b.t.Fatalf("the table shows %v, ListAudit answers %v", ids, want)
	}
	if got := b.text("#audit-shown"); got != strconv.Itoa(len(recs)) {
		b.t.Fatalf("the page counts %s records, ListAudit answers %d", got, len(recs))
	}
}

// wantAnalystRefused signs in as an analyst: the page and the export are
// refused with the API's PermissionDenied, as HTTP 403.
func (b *browser) wantAnalystRefused(key string) {
	b.t.Helper()
	b.submit("#signout")
	b.signIn(key)
	for _, path := range []string{"/audit", "/audit/export"} {
		if code := b.status(path); code != 403 {
			b.t.Fatalf("an analyst on %s: HTTP %d, want 403", path, code)
		}
		if msg := b.text("#problem"); !strings.Contains(msg, "PermissionDenied") || !strings.Contains(msg, "AuditService") {
			b.t.Fatalf("an analyst on %s: the page says %q", path, msg)
		}
	}
	b.shot("audit-refused")
}

// wantExport checks the downloaded file: named as the CLI's export would be
// for Shanghai, one protojson record per line, the same records as recs.
func wantExport(t *testing.T, file string, recs []*yrdv1.AuditRecord) {
	t.Helper()
	if !regexp.MustCompile(`^audit-shanghai-\d{4}-\d\d-\d\d\.jsonl$`).MatchString(filepath.Base(file)) {
		t.Fatalf("the export was saved as %s", filepath.Base(file))
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []*yrdv1.AuditRecord
	for sc := bufio.NewScanner(f); sc.Scan(); {
		rec := new(yrdv1.AuditRecord)
		if err := protojson.Unmarshal(sc.Bytes(), rec); err != nil {
			t.Fatalf("export line %d: %v", len(got)+1, err)
		}
		if !strings.Contains(sc.Text(), `"rule_ids"`) && len(rec.GetRuleIds()) > 0 {
			t.Fatalf("export line %d does not use the proto field names: %s", len(got)+1, sc.Text())
		}
		got = append(got, rec)
	}
	if len(got) != len(recs) {
		t.Fatalf("the export has %d records, ListAudit %d", len(got), len(recs))
	}
	for i := range recs {
		if !proto.Equal(got[i], recs[i]) {
			t.Fatalf("export line %d differs from ListAudit:\n%v\n%v", i+1, got[i], recs[i])
		}
	}
}

// download clicks sel and waits for the browser to report the download
// complete (no sleeping); the file keeps the name the server gave it.
func (b *browser) download(sel string) string {
	b.t.Helper()
	dir := b.t.TempDir()
	setDir := chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		events := true
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &events})
		return err
	})
	b.do(setDir)
	done := get(b, chromedp.WaitEvent(cdpbrowser.DownloadProgress, func(ev cdpbrowser.EventDownloadProgress) bool {
		return ev.State == cdpbrowser.DownloadProgressStateCompleted || ev.State == cdpbrowser.DownloadProgressStateCanceled
	}, chromedp.Click(chromedp.CSS(sel))))
	if done.State != cdpbrowser.DownloadProgressStateCompleted {
		b.t.Fatalf("the download of %s was cancelled", sel)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		b.t.Fatalf("the download left %v in its directory", files)
	}
	return files[0]
}

// status opens path and returns the HTTP status of the page.
func (b *browser) status(path string) int {
	b.t.Helper()
	resp := get(b, chromedp.NavigateResponse(b.base+path))
	b.do(chromedp.WaitVisible(chromedp.CSS("main")))
	return int(resp.Status)
}

// listAudit is every record req selects, through the API.
func listAudit(t *testing.T, auditor yrdv1grpc.AuditServiceClient, req *yrdv1.ListAuditRequest) []*yrdv1.AuditRecord {
	t.Helper()
	resp, err := auditor.ListAudit(apiCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetNextAfterSeq() != 0 {
		t.Fatalf("more than one page of records for %v", req)
	}
	return resp.GetRecords()
}

func connAs(t *testing.T, c *consoleCluster, i int, org string, role yrdv1.Role) *grpc.ClientConn {
	t.Helper()
	conn, err := c.ConnAs(i, org, role)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestBrowserAuditVerificationNamesTheFirstBadRecord changes one letter of
// a record in Shanghai's audit.db while the node is down, as someone with
// the disk but not the node's key could: after the restart the page says
// the trail fails verification, names the record the node names, and its
// link opens that record.
func TestBrowserAuditVerificationNamesTheFirstBadRecord(t *testing.T) {
	c := startConsoleCluster(t, nil)
	makeAuditTrail(t, c)
	auditor := yrdv1grpc.NewAuditServiceClient(connAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	key := c.key(t, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR)
	published := listAudit(t, auditor, &yrdv1.ListAuditRequest{Action: yrdv1.AuditAction_AUDIT_ACTION_PUBLISH})
	seq := published[0].GetSeq() // later records follow it, so the node still opens its log

	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	tamperAuditRecord(t, filepath.Join(c.Config(0).DataDir, "audit.db"), seq, "published", "Published")
	if err := c.Restart(apiCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	v, err := auditor.VerifyAudit(apiCtx(t), &yrdv1.VerifyAuditRequest{})
	if err != nil || v.GetOk() || v.GetFirstBad() != seq {
		t.Fatalf("VerifyAudit after record %d was changed: %v %v", seq, v, err)
	}

	b := newBrowser(t, c.Node(0).AdminAddr()) // the admin listener has a new port
	b.signIn(key)
	b.visit("/audit")
	if got := b.text("#audit-first-bad"); got != "#"+strconv.FormatUint(seq, 10) {
		t.Fatalf("the page names %s as the first bad record, the node %d", got, seq)
	}
	if got := b.text("#audit-problem"); got != v.GetProblem() {
		t.Fatalf("the page gives the problem as %q, the node %q", got, v.GetProblem())
	}
	b.shot("audit-verify-failed")
	b.submit("#audit-first-bad")
	if ids := b.count("#audit-records tbody tr"); ids != 1 || b.count("#rec-"+strconv.FormatUint(seq, 10)) != 1 {
		t.Fatalf("the first bad record's link shows %d records, not record %d alone", ids, seq)
	}
	if got := b.text("#rec-" + strconv.FormatUint(seq, 10) + " .audit-detail"); !strings.HasPrefix(got, "Published") {
		t.Fatalf("record %d reads %q, not the changed text", seq, got)
	}
}

// tamperAuditRecord replaces from with to (the same length, so the record
// still decodes) in the stored bytes of record seq of a stopped node's
// audit log.
func tamperAuditRecord(t *testing.T, path string, seq uint64, from, to string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		k := binary.BigEndian.AppendUint64(nil, seq)
		v := bytes.Clone(b.Get(k))
		i := bytes.Index(v, []byte(from))
		if i < 0 {
			return fmt.Errorf("record %d has no %q", seq, from)
		}
		copy(v[i:], to)
		return b.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
