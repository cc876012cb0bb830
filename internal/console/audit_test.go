package console

import (
	"net/url"
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestEveryAuditActionAndDecisionHasALabel: the labels are looked up by
// enum value, which the key scan of TestEveryWordInBothLanguages cannot
// see; a value added to the proto needs its words here.
func TestEveryAuditActionAndDecisionHasALabel(t *testing.T) {
	var keys []string
	for _, name := range yrdv1.AuditAction_name {
		keys = append(keys, "audit.action."+enumWord(name, "AUDIT_ACTION_"))
	}
	for _, o := range decisionOptions("") {
		keys = append(keys, o.Label)
	}
	for _, key := range keys {
		for _, lang := range languages {
			if _, ok := messages[lang][key]; !ok {
				t.Errorf("%s has no %q", lang, key)
			}
		}
	}
}

func TestAuditFormReadsTheCLIWordsAndUTCTimes(t *testing.T) {
	q, _ := url.ParseQuery("requester=sh-health&action=grant_approve&decision=deny&rule=auth.bad-key" +
		"&since=2026-03-01T08:00&until=2026-03-02T09:30:15&after_seq=40&limit=25")
	f := readAuditForm(q)
	req, err := f.request()
	if err != nil {
		t.Fatal(err)
	}
	if req.GetAction() != yrdv1.AuditAction_AUDIT_ACTION_GRANT_APPROVE || req.GetDecision() != yrdv1.Effect_EFFECT_DENY ||
		req.GetRequester() != "sh-health" || req.GetRuleId() != "auth.bad-key" || req.GetAfterSeq() != 40 || req.GetLimit() != 25 {
		t.Fatalf("request %v", req)
	}
	if got := req.GetSince().AsTime(); !got.Equal(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("since %v", got)
	}
	if got := req.GetUntil().AsTime(); !got.Equal(time.Date(2026, 3, 2, 9, 30, 15, 0, time.UTC)) {
		t.Fatalf("until %v", got)
	}
	// The export takes the filters, never the page.
	if v := f.filters(); v.Has("after_seq") || v.Has("limit") || v.Get("action") != "grant_approve" {
		t.Fatalf("filters %v", v)
	}
	if got := recordURL(7); got != "/audit?after_seq=6&limit=1" {
		t.Fatalf("record 7's page is %s", got)
	}
	for _, bad := range []string{"action=publsh", "decision=allow", "since=yesterday", "limit=many"} {
		q, _ := url.ParseQuery(bad)
		if _, err := readAuditForm(q).request(); err == nil {
			t.Errorf("%s was read as a filter", bad)
		}
	}
}
