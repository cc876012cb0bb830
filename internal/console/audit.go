package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// routeAudit adds the audit trail: the auditor's view of the node's own
// log (AuditService.ListAudit and VerifyAudit) and its export as JSON Lines
// (ExportAudit), the same file `yrdnode audit export` writes.
func (c *Console) routeAudit(mux *http.ServeMux) {
	mux.HandleFunc("GET /audit", c.withSession(c.auditPage))
	mux.HandleFunc("GET /audit/export", c.withSession(c.auditExport))
}

// auditForm is the filter form as typed, to fill it in again, and the
// paging position. The words (action, decision) are the CLI's flag values.
type auditForm struct {
	Requester, Dataset, Action, Decision, Rule, Since, Until, Limit string
	AfterSeq                                                        uint64
}

// datetimeLocal is the value format of <input type="datetime-local">; the
// page reads and shows times in UTC, as the CLI prints them.
const datetimeLocal = "2006-01-02T15:04"

// readAuditForm reads the query string. A value the form could not have
// sent (an unknown action, a malformed time) is a problem to show, not a
// filter to drop silently: the auditor would read a wrong trail.
func readAuditForm(q url.Values) auditForm {
	f := auditForm{Requester: strings.TrimSpace(q.Get("requester")), Dataset: strings.TrimSpace(q.Get("dataset")),
		Action: q.Get("action"), Decision: q.Get("decision"), Rule: strings.TrimSpace(q.Get("rule")),
		Since: q.Get("since"), Until: q.Get("until"), Limit: strings.TrimSpace(q.Get("limit"))}
	f.AfterSeq, _ = strconv.ParseUint(q.Get("after_seq"), 10, 64)
	return f
}

// request is the ListAudit request the form asks for; the node checks the
// values (limit range, rule id form) and says what is wrong.
func (f auditForm) request() (*yrdv1.ListAuditRequest, error) {
	req := &yrdv1.ListAuditRequest{Requester: f.Requester, DatasetId: f.Dataset, RuleId: f.Rule, AfterSeq: f.AfterSeq}
	if f.Action != "" {
		v, ok := yrdv1.AuditAction_value["AUDIT_ACTION_"+strings.ToUpper(f.Action)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("action: %q is not an audit action", f.Action)
		}
		req.Action = yrdv1.AuditAction(v)
	}
	if f.Decision != "" {
		v, ok := yrdv1.Effect_value["EFFECT_"+strings.ToUpper(f.Decision)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("decision: %q is not deny, allow_rows or allow_aggregates", f.Decision)
		}
		req.Decision = yrdv1.Effect(v)
	}
	var err error
	if req.Since, err = formTime("since", f.Since); err != nil {
		return nil, err
	}
	if req.Until, err = formTime("until", f.Until); err != nil {
		return nil, err
	}
	if f.Limit != "" {
		n, err := strconv.ParseInt(f.Limit, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("limit: %q is not a number", f.Limit)
		}
		req.Limit = int32(n)
	}
	return req, nil
}

// formTime reads a datetime-local value (with or without seconds) as UTC.
func formTime(name, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{datetimeLocal, datetimeLocal + ":05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return timestamppb.New(t), nil
		}
	}
	return nil, fmt.Errorf("%s: %q is not a date and time like 2026-03-01T08:00", name, s)
}

// filters are the form's filters without the paging, as a query string:
// the export takes them, as `yrdnode audit export` takes the same flags.
func (f auditForm) filters() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"requester", f.Requester}, {"dataset", f.Dataset}, {"action", f.Action},
		{"decision", f.Decision}, {"rule", f.Rule}, {"since", f.Since}, {"until", f.Until}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// pageURL is the trail from after on, with the same filters and limit.
func (f auditForm) pageURL(after uint64) string {
	v := f.filters()
	if f.Limit != "" {
		v.Set("limit", f.Limit)
	}
	if after > 0 {
		v.Set("after_seq", strconv.FormatUint(after, 10))
	}
	return "/audit?" + v.Encode()
}

// recordURL is the page that shows record seq alone.
func recordURL(seq uint64) string {
	return "/audit?" + url.Values{"after_seq": {strconv.FormatUint(seq-1, 10)}, "limit": {"1"}}.Encode()
}

// auditView is the audit page.
type auditView struct {
	Form      auditForm
	Actions   []auditOption
	Decisions []auditOption
	Rows      []auditRow
	Verify    *yrdv1.VerifyAuditResponse
	BadURL    string // the first bad record's page, when verification fails
	NextURL   string // the next page, "" on the last
	FirstURL  string // the first page, "" on it
	ExportURL string
	Invalid   bool // the form had a value it could not send
}

// auditOption is one choice of a select: the CLI's word and its label key.
type auditOption struct {
	Value, Label string
	Selected     bool
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	form := readAuditForm(r.URL.Query())
	v := auditView{Form: form, Actions: actionOptions(form.Action), Decisions: decisionOptions(form.Decision),
		ExportURL: "/audit/export?" + form.filters().Encode()}
	req, err := form.request()
	if err != nil {
		v.Invalid = true
		d := c.sessionData(s, "audit", v)
		d.Problem = c.tr(r, "audit.bad_form") + ": " + err.Error()
		c.render(w, r, http.StatusBadRequest, "audit", d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	list, err := c.api.audit.ListAudit(s.creds.outgoing(ctx), req)
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	// Verification reads the whole log: done on the trail's first page,
	// not again for every later page of it.
	if form.AfterSeq == 0 {
		if v.Verify, err = c.api.audit.VerifyAudit(s.creds.outgoing(ctx), &yrdv1.VerifyAuditRequest{}); err != nil {
			c.apiError(w, r, s, err)
			return
		}
	}
	if !v.Verify.GetOk() && v.Verify.GetFirstBad() > 0 {
		v.BadURL = recordURL(v.Verify.GetFirstBad())
	}
	if next := list.GetNextAfterSeq(); next != 0 {
		v.NextURL = form.pageURL(next)
	}
	if form.AfterSeq > 0 {
		v.FirstURL = form.pageURL(0)
	}
	for _, rec := range list.GetRecords() {
		v.Rows = append(v.Rows, newAuditRow(rec, language(r)))
	}
	c.page(w, r, s, "audit", "audit", v)
}

// actionOptions are the audit actions, in the enum's order, by the CLI's
// words; the labels are message keys.
func actionOptions(selected string) []auditOption {
	var out []auditOption
	for i := int32(1); ; i++ {
		name, ok := yrdv1.AuditAction_name[i]
		if !ok {
			return out
		}
		word := enumWord(name, "AUDIT_ACTION_")
		out = append(out, auditOption{Value: word, Label: "audit.action." + word, Selected: word == selected})
	}
}

func decisionOptions(selected string) []auditOption {
	var out []auditOption
	for _, e := range []yrdv1.Effect{yrdv1.Effect_EFFECT_DENY, yrdv1.Effect_EFFECT_ALLOW_ROWS, yrdv1.Effect_EFFECT_ALLOW_AGGREGATES} {
		word := enumWord(e.String(), "EFFECT_")
		out = append(out, auditOption{Value: word, Label: "audit.decision." + word, Selected: word == selected})
	}
	return out
}

// enumWord is an enum value as the CLI spells it: "AUDIT_ACTION_GRANT_APPROVE"
// is "grant_approve".
func enumWord(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// detailFold is how long a detail may be before the table folds it into
// a details element, so one long reason does not stretch every row.
const detailFold = 120

// auditRow is one record as the table shows it.
type auditRow struct {
	Rec                   *yrdv1.AuditRecord
	City, Org, Name, Role string // the requester; empty for a refusal of no proven principal
	Source                string
	Action                string     // message key
	Decision              string     // the CLI's word, "" for a record without a decision
	DecisionLabel         string     // its message key
	Dataset               []string   // the dataset id cut at its dots, where a narrow cell may break it
	Rules                 [][]string // each rule id, cut likewise
	Short                 string     // the detail's start, when it is folded
}

func newAuditRow(rec *yrdv1.AuditRecord, lang string) auditRow {
	row := auditRow{Rec: rec, Source: rec.GetSource(), Action: "audit.action." + enumWord(rec.GetAction().String(), "AUDIT_ACTION_")}
	if id := rec.GetDatasetId(); id != "" {
		row.Dataset = strings.Split(id, ".")
	}
	for _, r := range rec.GetRuleIds() {
		row.Rules = append(row.Rules, strings.Split(r, "."))
	}
	if p := rec.GetRequester(); p != nil {
		row.City, row.Org, row.Name, row.Role = cityName(p.GetCity(), lang), p.GetOrg(), p.GetName(), auth.RoleName(p.GetRole())
	}
	if rec.GetDecision() != yrdv1.Effect_EFFECT_UNSPECIFIED {
		row.Decision = enumWord(rec.GetDecision().String(), "EFFECT_")
		row.DecisionLabel = "audit.decision." + row.Decision
	}
	if d := rec.GetDetail(); utf8.RuneCountInString(d) > detailFold {
		row.Short = string([]rune(d)[:detailFold*2/3]) + "…"
	}
	return row
}

// auditExport streams the records the filters select as JSON Lines, one
// record per line in protojson with the proto field names: exactly what
// `yrdnode audit export` writes (internal/cli/audit.go), so the console
// adds no format of its own. The paging of the page does not apply: the
// file is the whole filtered trail, as the CLI's is.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, s *session) {
	form := readAuditForm(r.URL.Query())
	form.AfterSeq, form.Limit = 0, ""
	req, err := form.request()
	if err != nil {
		c.refuse(w, r, s, http.StatusBadRequest, c.tr(r, "audit.bad_form")+": "+err.Error())
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := c.api.audit.ExportAudit(s.creds.outgoing(ctx), req)
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	// The node's refusal arrives with the first message: read it before
	// the headers are sent, so a refusal is a page, not a file.
	first, err := stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		c.apiError(w, r, s, err)
		return
	}
	name := fmt.Sprintf("audit-%s-%s.jsonl", c.cfg.City, time.Now().UTC().Format(time.DateOnly))
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if err := writeAuditLines(w, first, stream); err != nil {
		// Headers are gone: break the download rather than hand a
		// regulator a silently shortened trail.
		c.log.Error("console: audit export broke off", "org", s.who.GetOrg(), "name", s.who.GetName(), "err", err)
		panic(http.ErrAbortHandler)
	}
	c.log.Info("console: audit exported", "org", s.who.GetOrg(), "name", s.who.GetName(), "file", name)
}

// writeAuditLines writes first (nil at the end of an empty trail) and the
// rest of the stream, one line each, as the CLI does.
func writeAuditLines(w io.Writer, first *yrdv1.AuditRecord, stream interface {
	Recv() (*yrdv1.AuditRecord, error)
}) error {
	line := protojson.MarshalOptions{UseProtoNames: true}
	for rec := first; rec != nil; {
		data, err := line.Marshal(rec)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", data); err != nil {
			return err
		}
		next, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rec = next
	}
	return nil
}
