package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The grants page: the requests waiting for a decision and the decided
// grants, as GrantService.ListGrants returns them to the signed-in person,
// with the decision forms a CDO of the owning organisation needs. Which
// forms appear is only a convenience: the API decides who may decide.
func (c *Console) routeGrants(mux *http.ServeMux) {
	mux.HandleFunc("GET /grants", c.withSession(c.grantsPage))
	mux.HandleFunc("POST /grants/{id}/approve", c.withSession(c.decideGrant(yrdv1.GrantState_GRANT_STATE_APPROVED)))
	mux.HandleFunc("POST /grants/{id}/reject", c.withSession(c.decideGrant(yrdv1.GrantState_GRANT_STATE_REJECTED)))
	mux.HandleFunc("POST /grants/{id}/revoke", c.withSession(c.decideGrant(yrdv1.GrantState_GRANT_STATE_REVOKED)))
}

// grantsView is the page: the filter as applied, the two lists, and the
// notice of the decision just made.
type grantsView struct {
	Filter           grantFilter
	States           []string
	Pending, Decided []grantRow
	Done, DoneGrant  string
}

// grantFilter is the page's query, which is ListGrantsRequest's.
type grantFilter struct {
	Dataset, Org, State string
	Owner               string // "mine": only grants on the caller's organisation's data; "any"
}

// grantRow is one grant with what the page shows beside it: its dataset's
// title and owner, its state as a word ("expired" for an approved grant
// past its expiry), and whether the signed-in CDO's organisation owns
// the data (Mine), which decides which forms are drawn.
type grantRow struct {
	G                    *yrdv1.Grant
	Title                string
	OwnerOrg, OwnerCity  string
	RequesterCity        string
	State, Form          string
	Duration             string
	Mine, Active         bool
	MinExpiry, MaxExpiry string // the dates an approval may choose
}

// grantStates are the filter's states, as the CLI spells them.
var grantStates = []string{"requested", "approved", "rejected", "revoked"}

// grantDone are the notices a decision's redirect may ask for.
var grantDone = map[string]string{
	"approved": "grants.done_approved",
	"rejected": "grants.done_rejected",
	"revoked":  "grants.done_revoked",
}

func (c *Console) grantsPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	f, req, err := grantQuery(r.URL.Query(), s.who)
	if err != nil {
		c.refuse(w, r, s, http.StatusBadRequest, c.tr(r, err.Error()))
		return
	}
	resp, err := c.api.grants.ListGrants(s.creds.outgoing(ctx), req)
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	v := grantsView{Filter: f, States: grantStates}
	if key, ok := grantDone[r.URL.Query().Get("done")]; ok {
		v.Done, v.DoneGrant = key, r.URL.Query().Get("grant")
	}
	datasets := c.grantDatasets(s.creds.outgoing(ctx), resp.GetGrants())
	lang, now := language(r), c.cfg.Now()
	for _, g := range resp.GetGrants() {
		row := buildGrantRow(g, datasets[g.GetDatasetId()], s.who, lang, now)
		if g.GetState() == yrdv1.GrantState_GRANT_STATE_REQUESTED {
			v.Pending = append(v.Pending, row)
		} else {
			v.Decided = append(v.Decided, row)
		}
	}
	sortGrants(v.Pending, v.Decided)
	c.page(w, r, s, "grants", "grants", v)
}

// grantQuery reads the page's filter. An analyst sees the requests of
// their own organisation, and a CDO the requests on their organisation's
// data, unless they ask for another filter.
func grantQuery(q url.Values, who *yrdv1.Principal) (grantFilter, *yrdv1.ListGrantsRequest, error) {
	f := grantFilter{Dataset: strings.TrimSpace(q.Get("dataset")), Org: strings.TrimSpace(q.Get("org")), State: q.Get("state"), Owner: q.Get("owner")}
	if !q.Has("org") && who.GetRole() == yrdv1.Role_ROLE_ANALYST {
		f.Org = who.GetOrg()
	}
	if f.Owner == "" {
		f.Owner = "any"
		if who.GetRole() == yrdv1.Role_ROLE_CDO {
			f.Owner = "mine"
		}
	}
	req := &yrdv1.ListGrantsRequest{DatasetId: f.Dataset, RequesterOrg: f.Org}
	switch f.Owner {
	case "mine":
		req.OwnerCity, req.OwnerOrg = who.GetCity(), who.GetOrg()
	case "any":
	default:
		return f, nil, errors.New("grants.err_owner") // the key of its words
	}
	if f.State != "" {
		v, ok := yrdv1.GrantState_value["GRANT_STATE_"+strings.ToUpper(f.State)]
		if !ok || v == 0 {
			return f, nil, errors.New("grants.err_state")
		}
		req.State = yrdv1.GrantState(v)
	}
	return f, req, nil
}

// grantDatasets looks up the datasets the grants are on, for their titles
// and owners; one the caller may not see or that is gone stays untitled.
// The list read before was linearizable, so stale reads suffice here.
func (c *Console) grantDatasets(ctx context.Context, grants []*yrdv1.Grant) map[string]*yrdv1.Dataset {
	out := map[string]*yrdv1.Dataset{}
	for _, g := range grants {
		id := g.GetDatasetId()
		if _, seen := out[id]; seen {
			continue
		}
		resp, err := c.api.catalog.GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: id, Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_STALE})
		out[id] = resp.GetDataset() // nil on an error
		if err != nil {
			c.log.Debug("console: grant's dataset", "dataset", id, "err", err)
		}
	}
	return out
}

func buildGrantRow(g *yrdv1.Grant, ds *yrdv1.Dataset, who *yrdv1.Principal, lang string, now time.Time) grantRow {
	row := grantRow{G: g, Title: ds.GetTitle(), OwnerOrg: ds.GetOwnerOrg(), OwnerCity: cityName(ds.GetOwnerCity(), lang),
		RequesterCity: cityName(g.GetRequesterCity(), lang), Duration: durationText(g.GetDuration().AsDuration(), lang),
		State: strings.ToLower(strings.TrimPrefix(g.GetState().String(), "GRANT_STATE_")),
		Form:  "grants.form_" + strings.ToLower(strings.TrimPrefix(g.GetResultForm().String(), "RESULT_FORM_"))}
	row.Mine = ds != nil && who.GetRole() == yrdv1.Role_ROLE_CDO && ds.GetOwnerOrg() == who.GetOrg() && ds.GetOwnerCity() == who.GetCity()
	if g.GetState() == yrdv1.GrantState_GRANT_STATE_APPROVED {
		row.Active = !grantExpired(g, now)
		if !row.Active {
			row.State = "expired"
		}
	}
	// An approval's date means midnight UTC: from tomorrow's to the last
	// one within the requested duration.
	row.MinExpiry = now.UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	row.MaxExpiry = now.UTC().Add(g.GetDuration().AsDuration()).Format(time.DateOnly)
	return row
}

// grantExpired reports whether g is an approved grant whose expiry has
// passed at now: the API keeps its state "approved", the pages say
// "expired". One without an expiry does not expire.
func grantExpired(g *yrdv1.Grant, now time.Time) bool {
	return g.GetState() == yrdv1.GrantState_GRANT_STATE_APPROVED && g.GetExpiresAt() != nil && !g.GetExpiresAt().AsTime().After(now)
}

// durationText is a grant's duration in whole days, or hours when shorter
// or not whole.
func durationText(d time.Duration, lang string) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf(translate(lang, "grants.n_days"), int(d/(24*time.Hour)))
	}
	return fmt.Sprintf(translate(lang, "grants.n_hours"), d.Hours())
}

// sortGrants puts the oldest request first (the queue a CDO works
// through) and the latest decision first.
func sortGrants(pending, decided []grantRow) {
	sort.SliceStable(pending, func(i, j int) bool {
		return pending[i].G.GetRequestedAt().AsTime().Before(pending[j].G.GetRequestedAt().AsTime())
	})
	last := func(g *yrdv1.Grant) time.Time {
		if g.GetRevokedAt() != nil {
			return g.GetRevokedAt().AsTime()
		}
		return g.GetDecidedAt().AsTime()
	}
	sort.SliceStable(decided, func(i, j int) bool { return last(decided[i].G).After(last(decided[j].G)) })
}

// decideGrant approves, rejects or revokes the grant in the path with the
// form's reason (and, for an approval, its expiry date), then goes back to
// the list with a notice. The API judges it; a refusal is shown as it said.
func (c *Console) decideGrant(to yrdv1.GrantState) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		req := &yrdv1.DecideGrantRequest{Id: id, Note: strings.TrimSpace(r.PostFormValue("note"))}
		if day := strings.TrimSpace(r.PostFormValue("expires")); day != "" && to == yrdv1.GrantState_GRANT_STATE_APPROVED {
			t, err := time.Parse(time.DateOnly, day)
			if err != nil {
				c.refuse(w, r, s, http.StatusBadRequest, c.tr(r, "grants.err_expires"))
				return
			}
			req.ExpiresAt = timestamppb.New(t)
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := c.callDecision(s.creds.outgoing(ctx), to, req); err != nil {
			c.apiError(w, r, s, err)
			return
		}
		done := strings.ToLower(strings.TrimPrefix(to.String(), "GRANT_STATE_"))
		http.Redirect(w, r, "/grants?done="+done+"&grant="+url.QueryEscape(id), http.StatusSeeOther)
	}
}

func (c *Console) callDecision(ctx context.Context, to yrdv1.GrantState, req *yrdv1.DecideGrantRequest) error {
	var err error
	switch to {
	case yrdv1.GrantState_GRANT_STATE_APPROVED:
		_, err = c.api.grants.ApproveGrant(ctx, req)
	case yrdv1.GrantState_GRANT_STATE_REJECTED:
		_, err = c.api.grants.RejectGrant(ctx, req)
	default:
		_, err = c.api.grants.RevokeGrant(ctx, req)
	}
	return err
}

// grantsMessages are the grants page's words.
var grantsMessages = map[string]map[string]string{
	"en": {
		"grants.title":             "Grants",
		"grants.intro_cdo":         "Requests to use your organisation's data wait here for your decision: approve, with a reason and if you wish an earlier expiry, or reject, with a reason. An approved grant of your organisation's data can be revoked at any time.",
		"grants.intro_analyst":     "Your organisation's requests to use data, and what the data's owners decided.",
		"grants.intro_other":       "The data-use agreements of the delta, as the node lists them for you.",
		"grants.dataset_id":        "Dataset ID",
		"grants.requester_org":     "Requesting organisation",
		"grants.owner_filter":      "Data owner",
		"grants.owner_mine":        "My organisation's data",
		"grants.owner_any":         "All data",
		"grants.state":             "State",
		"grants.state_all":         "All",
		"grants.state_requested":   "requested",
		"grants.state_approved":    "approved",
		"grants.state_rejected":    "rejected",
		"grants.state_revoked":     "revoked",
		"grants.state_expired":     "expired",
		"grants.state_unspecified": "unknown",
		"grants.filter":            "Show",
		"grants.pending":           "Waiting for a decision",
		"grants.none_pending":      "No request is waiting.",
		"grants.requester":         "Requester",
		"grants.purpose":           "Purpose",
		"grants.form":              "Result form",
		"grants.form_rows":         "rows (masked)",
		"grants.form_aggregates":   "aggregates",
		"grants.form_unspecified":  "unspecified",
		"grants.personal":          "personal columns unmasked",
		"grants.duration":          "Duration asked for",
		"grants.requested_at":      "Requested (UTC)",
		"grants.owner":             "Data owner",
		"grants.id":                "Grant ID",
		"grants.justification":     "Justification",
		"grants.reason":            "Reason",
		"grants.expires_on":        "Expires on (optional)",
		"grants.expires_hint":      "At 00:00 UTC of that day, and no later than the duration asked for. Empty: the full duration from approval.",
		"grants.approve":           "Approve",
		"grants.reject":            "Reject",
		"grants.not_yours":         "Another organisation's data: a CDO of its owner decides.",
		"grants.waiting":           "Waiting for a CDO of the data's owner.",
		"grants.decided":           "Decided",
		"grants.none_decided":      "No grant has been decided.",
		"grants.dataset":           "Dataset",
		"grants.decided_by":        "Decided by",
		"grants.expires":           "Expires (UTC)",
		"grants.note":              "Note",
		"grants.revoked_by":        "revoked by",
		"grants.revoke":            "Revoke",
		"grants.done_approved":     "Approved grant",
		"grants.done_rejected":     "Rejected grant",
		"grants.done_revoked":      "Revoked grant; the next query under it is refused on every node:",
		"grants.err_state":         "state: choose requested, approved, rejected or revoked",
		"grants.err_owner":         "data owner: choose my organisation's data or all data",
		"grants.err_expires":       "expires: not a date (YYYY-MM-DD)",
		"grants.n_days":            "%d days",
		"grants.n_hours":           "%g hours",
	},
	"zh": {
		"grants.title":             "授权",
		"grants.intro_cdo":         "使用本单位数据的申请在此等待您的决定：批准（附理由，可设定更早的到期日）或驳回（附理由）。本单位数据上已批准的授权可随时撤销。",
		"grants.intro_analyst":     "本单位提出的数据使用申请，以及数据所有方的决定。",
		"grants.intro_other":       "本节点向您列出的长三角数据使用授权。",
		"grants.dataset_id":        "数据集 ID",
		"grants.requester_org":     "申请单位",
		"grants.owner_filter":      "数据所有方",
		"grants.owner_mine":        "本单位的数据",
		"grants.owner_any":         "全部数据",
		"grants.state":             "状态",
		"grants.state_all":         "全部",
		"grants.state_requested":   "待审批",
		"grants.state_approved":    "已批准",
		"grants.state_rejected":    "已驳回",
		"grants.state_revoked":     "已撤销",
		"grants.state_expired":     "已过期",
		"grants.state_unspecified": "未知",
		"grants.filter":            "查看",
		"grants.pending":           "待审批",
		"grants.none_pending":      "暂无待审批的申请。",
		"grants.requester":         "申请方",
		"grants.purpose":           "用途",
		"grants.form":              "结果形式",
		"grants.form_rows":         "明细（脱敏）",
		"grants.form_aggregates":   "汇总统计",
		"grants.form_unspecified":  "未指定",
		"grants.personal":          "个人信息列不脱敏",
		"grants.duration":          "申请期限",
		"grants.requested_at":      "申请时间（UTC）",
		"grants.owner":             "数据所有方",
		"grants.id":                "授权 ID",
		"grants.justification":     "申请理由",
		"grants.reason":            "理由",
		"grants.expires_on":        "到期日（可选）",
		"grants.expires_hint":      "于该日 UTC 零时到期，不得晚于申请期限。留空则自批准起按申请期限。",
		"grants.approve":           "批准",
		"grants.reject":            "驳回",
		"grants.not_yours":         "其他单位的数据：由其所有方的首席数据官决定。",
		"grants.waiting":           "等待数据所有方的首席数据官决定。",
		"grants.decided":           "已决定",
		"grants.none_decided":      "暂无已决定的授权。",
		"grants.dataset":           "数据集",
		"grants.decided_by":        "决定人",
		"grants.expires":           "到期（UTC）",
		"grants.note":              "说明",
		"grants.revoked_by":        "撤销人",
		"grants.revoke":            "撤销",
		"grants.done_approved":     "已批准授权",
		"grants.done_rejected":     "已驳回授权",
		"grants.done_revoked":      "已撤销授权，各节点此后将拒绝依此授权的查询：",
		"grants.err_state":         "状态：请选择待审批、已批准、已驳回或已撤销",
		"grants.err_owner":         "数据所有方：请选择本单位的数据或全部数据",
		"grants.err_expires":       "到期日：不是有效日期（YYYY-MM-DD）",
		"grants.n_days":            "%d 天",
		"grants.n_hours":           "%g 小时",
	},
}
