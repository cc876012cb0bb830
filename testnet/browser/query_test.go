package browser_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

const (
	// countSQL is exact (the datasets set exact_aggregates), so the
	// console's run and the API's can be compared value for value.
	countSQL = "SELECT district, count(*) AS residents\nFROM family:yrd.elderly-population.v1\nGROUP BY district\nORDER BY district"
	// careSQL reads a sensitive column, which needs a grant allowing
	// personal data: Shanghai's CDO granted one; Hangzhou and Nanjing not.
	careSQL = "SELECT district, count(*) AS residents, avg(care_level) AS mean_care\nFROM family:yrd.elderly-population.v1\nGROUP BY district"
	// rowsSQL returns every row of Shanghai's dataset, more than the page
	// draws.
	rowsSQL = "SELECT person_id, district, age FROM shanghai.civil-affairs.elderly-population"
	// badSQL misspells GROUP on its third line.
	badSQL = "SELECT district, count(*)\nFROM family:yrd.elderly-population.v1\nGRUP BY district"
	// roleRule is the policy's rule that only analysts query (in back
	// quotes: TestEveryWordInBothLanguages takes a quoted role key for a word).
	roleRule = `role.analyst`
)

// TestBrowserQueryExplainRunDownloadAndAudit: a Hangzhou analyst on
// Hangzhou's console sees a syntax error marked at the node's line and
// column; explains a query (each city's decision, rule, noise, k,
// budget); runs one (rows, each city's status, receipts verified);
// downloads the rows and the receipts without a second run (the CSV is
// the rows shown, the CLI's `receipt verify` passes the receipts). The
// console adds nothing: the same queries through the API as the same key
// give the same rows and decisions, and every owner's audit trail has one
// record for each run. An auditor who runs a query gets the policy's
// denial from every city, on the trail too, and no rows.
func TestBrowserQueryExplainRunDownloadAndAudit(t *testing.T) {
	qd := startQueryDelta(t)
	b := newBrowser(t, qd.Node(1).AdminAddr())
	b.signIn(qd.key(t, 1, analystOrg, yrdv1.Role_ROLE_ANALYST))
	analyst, err := qd.ConnAs(1, analystOrg, yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		t.Fatal(err)
	}

	b.visit("/query")
	if n := b.count(`#purposes option[value="` + queryPurpose + `"]`); n != 1 {
		t.Fatalf("the purposes offered lack %s", queryPurpose)
	}
	b.shot("query")
	checkSyntaxError(t, b)
	checkExplain(t, b, qd, analyst)
	shown, apiTrailer := checkRun(t, b, analyst)
	receipts := checkDownloads(t, b, shown)
	checkAudit(t, qd, receipts, apiTrailer)
	checkPartial(t, b)
	checkCapped(t, b)
	checkAuditorDenied(t, b, qd)
}

// checkSyntaxError: the node's InvalidArgument, its line and column
// marked in the SQL, which stays in the form.
func checkSyntaxError(t *testing.T, b *browser) {
	t.Helper()
	b.fill("#sql", badSQL)
	b.fill("#purpose", queryPurpose)
	b.submit("#run")
	if msg, code := b.text("#problem"), b.pageStatus(); code != 400 || !strings.Contains(msg, "InvalidArgument") || !strings.Contains(msg, "line 3, column 1") {
		t.Fatalf("a syntax error: HTTP %d, the page says %q", code, msg)
	}
	if line, col, mark := b.text("#error-line"), b.text("#error-column"), b.text("#sql-marked .err-line mark.err-mark"); line != "3" || col != "1" || mark != "G" {
		t.Fatalf("marked line %s, column %s, character %q; want 3, 1, G", line, col, mark)
	}
	if got := get(b, chromedp.Value(chromedp.CSS("#sql"))); got != badSQL {
		t.Fatalf("the form holds %q, not the SQL sent", got)
	}
	if n := b.count("#result, #explain-result"); n != 0 {
		t.Fatal("a refused query shows a result")
	}
	b.shot("query-error")
}

// checkExplain: each city's decision as the API's explain gives it, with
// Shanghai's grant, noise, k and budget.
func checkExplain(t *testing.T, b *browser, qd *queryDelta, analyst *grpc.ClientConn) {
	t.Helper()
	b.fill("#sql", careSQL)
	b.submit("#explain")
	header, _, trailer := apiQuery(t, analyst, careSQL, true)
	if len(trailer.GetCities()) != 3 {
		t.Fatalf("the API's explain names %d cities", len(trailer.GetCities()))
	}
	for _, p := range header.GetPlans() {
		d, sel := p.GetDecision(), `.city-plan[data-city="`+p.GetCity()+`"]`
		effect := strings.ToLower(strings.TrimPrefix(d.GetEffect().String(), "EFFECT_"))
		if n := b.count(sel + `[data-effect="` + effect + `"]`); n != 1 {
			t.Errorf("%s: the page does not show the decision %s", p.GetCity(), effect)
		}
		if got := b.text(sel + " .rules"); got != strings.Join(d.GetRuleIds(), ", ") {
			t.Errorf("%s: rules %q, the API says %v", p.GetCity(), got, d.GetRuleIds())
		}
	}
	// A city that denies sends no plan, only its status and reason.
	for _, c := range trailer.GetCities() {
		if c.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			continue
		}
		status := strings.ToLower(strings.TrimPrefix(c.GetStatus().String(), "CITY_STATUS_"))
		sel := `.city-plan[data-city="` + c.GetCity() + `"][data-status="` + status + `"]`
		if b.count(sel) != 1 || b.text(sel+" .reason") != c.GetReason() {
			t.Errorf("%s: the API says %s (%s); the page does not", c.GetCity(), status, c.GetReason())
		}
	}
	sh := `.city-plan[data-city="shanghai"]`
	if b.count(sh+`[data-effect="allow_aggregates"]`) != 1 || b.text(sh+" .grant") != qd.grantID || b.text(sh+" .k") != "10" ||
		!strings.Contains(b.text(sh+" .noise"), "discrete-laplace") || !strings.Contains(b.text(sh+" .budget"), "10") {
		t.Errorf("Shanghai's decision lacks its grant, k, noise or budget")
	}
	for _, city := range []string{"hangzhou", "nanjing"} {
		sel := `.city-plan[data-city="` + city + `"][data-status="denied"] .reason`
		if b.count(sel) != 1 || !strings.Contains(b.text(sel), "aggregate.sensitive-grant") {
			t.Errorf("%s: the page does not show its denial by aggregate.sensitive-grant", city)
		}
	}
	b.shot("query-explain")
}

// checkRun runs countSQL: every city ok, the rows the API gives the same
// key, every receipt verified. It returns the rows shown and the API
// run's trailer.
func checkRun(t *testing.T, b *browser, analyst *grpc.ClientConn) ([][]string, *yrdv1.ResultTrailer) {
	t.Helper()
	b.fill("#sql", countSQL)
	b.submit("#run")
	if p := b.path(); p != "/query" {
		t.Fatalf("after running, the browser is on %s", p)
	}
	shown := b.cells("#rows tbody tr")
	header, rows, trailer := apiQuery(t, analyst, countSQL, false)
	if len(shown) == 0 || !slices.EqualFunc(shown, rows, slices.Equal) {
		t.Fatalf("the page shows %d rows, the API gives %d; they differ:\n%v\n%v", len(shown), len(rows), shown, rows)
	}
	names := b.cells("#rows thead tr")
	if len(names) != 1 || !slices.Equal(names[0], columnNames(header)) {
		t.Fatalf("columns %v, the API's %v", names, columnNames(header))
	}
	if b.text("#total-rows") != strconv.Itoa(len(rows)) {
		t.Fatalf("the page counts %s rows, the API sent %d", b.text("#total-rows"), len(rows))
	}
	for _, c := range trailer.GetCities() {
		status := strings.ToLower(strings.TrimPrefix(c.GetStatus().String(), "CITY_STATUS_"))
		if n := b.count(`#cities tr[data-city="` + c.GetCity() + `"][data-status="` + status + `"]`); n != 1 || status != "ok" {
			t.Errorf("%s: the API says %s; the page does not show it (or it is not ok)", c.GetCity(), status)
		}
		if n := b.count(`#receipts tr[data-city="` + c.GetCity() + `"][data-verified="yes"]`); n != 1 {
			t.Errorf("%s: the page does not show its receipt verified", c.GetCity())
		}
	}
	if n := b.count("#partial, #nothing-back, #digest-problem, #rows-capped"); n != 0 {
		t.Errorf("a whole result is flagged (%d warnings)", n)
	}
	b.shot("query-result")
	return shown, trailer
}

// checkDownloads: the CSV is the rows shown; the receipts file passes
// `yrdnode receipt verify`, run in-process. It returns the receipts.
func checkDownloads(t *testing.T, b *browser, shown [][]string) *yrdv1.ResultTrailer {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(b.downloaded("#download-csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != len(shown)+1 || !slices.EqualFunc(records[1:], shown, slices.Equal) {
		t.Fatalf("the CSV has %d records; its rows differ from the page's", len(records))
	}
	data := b.downloaded("#download-receipts")
	if out := verifyReceipts(t, data); strings.Count(out, "OK: signed by") != 3 {
		t.Fatalf("yrdnode receipt verify of the console's receipts:\n%s", out)
	}
	var trailer yrdv1.ResultTrailer
	if err := protojson.Unmarshal(data, &trailer); err != nil {
		t.Fatal(err)
	}
	return &trailer
}

// checkAudit: on every owner, the console's run and the API's run each
// left the same audit records (the decision, then the release the
// receipt names), under their own request ids, with the same decision.
func checkAudit(t *testing.T, qd *queryDelta, console, api *yrdv1.ResultTrailer) {
	t.Helper()
	apiOf := map[string]*yrdv1.ResultReceipt{}
	for _, c := range api.GetCities() {
		apiOf[c.GetCity()] = c.GetReceipt()
	}
	for _, c := range console.GetCities() {
		mine, theirs := c.GetReceipt(), apiOf[c.GetCity()]
		if mine.GetQueryFingerprint() != theirs.GetQueryFingerprint() || mine.GetAuditSeq() == theirs.GetAuditSeq() {
			t.Fatalf("%s: the console's and the API's receipts: %v / %v", c.GetCity(), mine, theirs)
		}
		byRequest := map[string][]*yrdv1.AuditRecord{}
		seqRequest := map[uint64]string{}
		for _, r := range queryRecords(t, qd, c.GetCity(), mine.GetQueryFingerprint()) {
			byRequest[r.GetRequestId()] = append(byRequest[r.GetRequestId()], r)
			seqRequest[r.GetSeq()] = r.GetRequestId()
		}
		ours, theirRun := byRequest[seqRequest[mine.GetAuditSeq()]], byRequest[seqRequest[theirs.GetAuditSeq()]]
		if len(byRequest) != 2 || len(ours) == 0 || len(ours) != len(theirRun) || seqRequest[mine.GetAuditSeq()] == seqRequest[theirs.GetAuditSeq()] {
			t.Fatalf("%s's audit trail has the query under %d request ids (want 2: the console's run and the API's): %v", c.GetCity(), len(byRequest), byRequest)
		}
		for i := range ours {
			if ours[i].GetDecision() != theirRun[i].GetDecision() || !slices.Equal(ours[i].GetRuleIds(), theirRun[i].GetRuleIds()) {
				t.Errorf("%s: the console's run was recorded as %v %v, the API's as %v %v", c.GetCity(),
					ours[i].GetDecision(), ours[i].GetRuleIds(), theirRun[i].GetDecision(), theirRun[i].GetRuleIds())
			}
		}
	}
}

// queryRecords are city's audit records of the analyst's queries with
// fingerprint, as the city's auditor lists them.
func queryRecords(t *testing.T, qd *queryDelta, city, fingerprint string) []*yrdv1.AuditRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := qd.elderly[city]
	auditor, err := qd.ConnAs(qd.Index(city), d.GetOwnerOrg(), yrdv1.Role_ROLE_AUDITOR)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := yrdv1grpc.NewAuditServiceClient(auditor).ListAudit(ctx, &yrdv1.ListAuditRequest{Requester: analystOrg,
		DatasetId: d.GetId(), Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY})
	if err != nil {
		t.Fatal(err)
	}
	var out []*yrdv1.AuditRecord
	for _, r := range resp.GetRecords() {
		if r.GetQueryFingerprint() == fingerprint {
			out = append(out, r)
		}
	}
	return out
}

// checkPartial runs careSQL: Shanghai's part (noisy, under the grant)
// comes back, Hangzhou and Nanjing deny it: a partial result, each
// city's status and reason shown.
func checkPartial(t *testing.T, b *browser) {
	t.Helper()
	b.fill("#sql", careSQL)
	b.submit("#run")
	if b.count("#partial") != 1 || b.count("#rows tbody tr") == 0 {
		t.Fatal("a result with one city's part: not shown as partial, or no rows")
	}
	if b.count(`#cities tr[data-city="shanghai"][data-status="ok"] .noise`) != 1 {
		t.Error("Shanghai's part does not show its noise")
	}
	for _, city := range []string{"hangzhou", "nanjing"} {
		sel := `#cities tr[data-city="` + city + `"][data-status="denied"]`
		if b.count(sel) != 1 || !strings.Contains(b.text(sel+" .reason"), "aggregate.sensitive-grant") {
			t.Errorf("%s: not shown denied by aggregate.sensitive-grant", city)
		}
	}
	if b.count(`#receipts tr[data-verified="yes"]`) != 1 || b.count(`#receipts tr[data-verified="none"]`) != 2 {
		t.Error("the receipts: want Shanghai's verified and none from the cities that denied")
	}
	b.shot("query-partial")
}

// checkCapped runs rowsSQL, a result of more rows than the page draws:
// the page says so, and the CSV still has them all, the drawn ones first.
func checkCapped(t *testing.T, b *browser) {
	t.Helper()
	b.fill("#sql", rowsSQL)
	b.submit("#run")
	want := strconv.Itoa(elderlyRows)
	if b.text("#total-rows") != want || b.count("#rows tbody tr") != 1000 || !strings.Contains(b.text("#rows-capped"), "1000 / "+want) {
		t.Fatalf("%s rows: the page counts %s, draws %d", want, b.text("#total-rows"), b.count("#rows tbody tr"))
	}
	if b.count("#digest-problem") != 0 || b.count(`#receipts tr[data-verified="yes"]`) != 1 {
		t.Fatal("the rows do not match Shanghai's receipt, or it does not verify")
	}
	shown := b.cells("#rows tbody tr")
	records, err := csv.NewReader(bytes.NewReader(b.downloaded("#download-csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != elderlyRows+1 || !slices.EqualFunc(records[1:1001], shown, slices.Equal) {
		t.Fatalf("the CSV has %d records, or its first rows are not those drawn", len(records))
	}
}

// checkAuditorDenied: an auditor's run is denied by every city's policy
// (role.analyst), shows no rows, and is on the trail; the API says the
// same to the same key.
func checkAuditorDenied(t *testing.T, b *browser, qd *queryDelta) {
	t.Helper()
	b.submit("#signout")
	b.signIn(qd.key(t, 1, "hz-audit", yrdv1.Role_ROLE_AUDITOR))
	b.visit("/query")
	b.fill("#sql", countSQL)
	b.fill("#purpose", queryPurpose)
	b.submit("#run")
	if b.count("#nothing-back") != 1 || b.count("#rows") != 0 || b.count("#download-csv, #download-receipts") != 0 {
		t.Fatal("an auditor's query: the page does not say that no city's part came back, or shows rows")
	}
	for _, city := range queryCities {
		sel := `#cities tr[data-city="` + city + `"][data-status="denied"]`
		if b.count(sel) != 1 || !strings.Contains(b.text(sel+" .reason"), roleRule) {
			t.Errorf("%s: the page does not show the policy's denial (role.analyst)", city)
		}
	}
	b.shot("query-denied")
	// On one dataset the owner's denial is the API's answer itself.
	b.fill("#sql", rowsSQL)
	b.submit("#run")
	if msg, code := b.text("#problem"), b.pageStatus(); code != 403 || !strings.Contains(msg, "PermissionDenied") || !strings.Contains(msg, roleRule) ||
		b.count("#result, #sql-error") != 0 {
		t.Fatalf("an auditor's query of one dataset: HTTP %d, the page says %q", code, msg)
	}
	auditorConn, err := qd.ConnAs(1, "hz-audit", yrdv1.Role_ROLE_AUDITOR)
	if err != nil {
		t.Fatal(err)
	}
	_, rows, trailer := apiQuery(t, auditorConn, countSQL, false)
	if len(rows) != 0 || len(trailer.GetCities()) != len(queryCities) {
		t.Fatalf("the API gives the auditor %d rows and %d cities' statuses", len(rows), len(trailer.GetCities()))
	}
	for _, c := range trailer.GetCities() {
		if c.GetStatus() != yrdv1.CityStatus_CITY_STATUS_DENIED {
			t.Errorf("the API gives the auditor %s from %s", c.GetStatus(), c.GetCity())
		}
	}
	checkDenialAudited(t, qd)
}

// checkDenialAudited: Shanghai's trail has the auditor's three denials
// (the family query from the console and from the API, the one-dataset
// query from the console), by role.analyst.
func checkDenialAudited(t *testing.T, qd *queryDelta) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := qd.elderly["shanghai"]
	auditor, err := qd.ConnAs(0, d.GetOwnerOrg(), yrdv1.Role_ROLE_AUDITOR)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := yrdv1grpc.NewAuditServiceClient(auditor).ListAudit(ctx, &yrdv1.ListAuditRequest{Requester: "hz-audit",
		Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, Decision: yrdv1.Effect_EFFECT_DENY, RuleId: roleRule})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetRecords()); n != 3 {
		t.Fatalf("Shanghai's trail has %d denials of the auditor's queries, want 3", n)
	}
}

// apiQuery runs sql through the API as conn's key, as the CLI does, and
// returns the header, the rows as text and the trailer.
func apiQuery(t *testing.T, conn *grpc.ClientConn, sql string, explain bool) (*yrdv1.ResultHeader, [][]string, *yrdv1.ResultTrailer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := yrdv1grpc.NewQueryServiceClient(conn).Query(ctx, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sql},
		Purpose: queryPurpose, Explain: explain})
	if err != nil {
		t.Fatal(err)
	}
	var header *yrdv1.ResultHeader
	var rows [][]string
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatal("the result ended without its trailer")
		}
		if err != nil {
			t.Fatal(err)
		}
		switch x := msg.GetPart().(type) {
		case *yrdv1.QueryResponse_Header:
			header = x.Header
		case *yrdv1.QueryResponse_Batch:
			for _, r := range x.Batch.GetRows() {
				rows = append(rows, rowText(r))
			}
		case *yrdv1.QueryResponse_Trailer:
			return header, rows, x.Trailer
		}
	}
}

func rowText(r *yrdv1.Row) []string {
	out := make([]string, len(r.GetValues()))
	for i, v := range r.GetValues() {
		out[i], _ = resultcodec.Text(v)
	}
	return out
}

func columnNames(h *yrdv1.ResultHeader) []string {
	var out []string
	for _, c := range h.GetColumns() {
		out = append(out, c.GetName())
	}
	return out
}
