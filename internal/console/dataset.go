package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// datasetView is the dataset page: the catalog entry as GetDataset gave
// it, the grants ListGrants gave (or its refusal), and the request form.
type datasetView struct {
	D             *yrdv1.Dataset
	CityName      string
	Level         catalogBadge
	PI            catalogPI
	Columns       []datasetColumn
	Family        string // the privacy-budget family: the standard schema, else the dataset itself
	FamilyLink    string // the catalog listing the family, "" without a standard schema
	Grants        []datasetGrant
	GrantsRefused string
	Requested     string // the grant this person just requested, when it is among Grants
	Request       datasetRequestForm
}

// datasetColumn is one row of the schema table.
type datasetColumn struct {
	Name, Type, Description, PIKey, PIClass, IdentifierKey, Generalise, SumBound string
}

// datasetGrant is one grant on the dataset, as ListGrants gave it.
type datasetGrant struct {
	ID, City, CityName, Org, Purpose, FormKey, StateKey, StateClass, Expires, Requested string
	Days                                                                                int
	AllowPersonal                                                                       bool
}

// datasetRequestForm is the request-access form. Show is whether the
// signed-in role is one the node lets request (the node still decides);
// Blocked is why a dataset cannot be requested at all, as the catalog says.
type datasetRequestForm struct {
	Show     bool
	Blocked  string
	Purposes []string
	Forms    []catalogOption
	Days     int
}

// datasetDefaultDays is the duration the form proposes: the node's own
// default for a request without one.
const datasetDefaultDays = 90

// datasetMaxDays bounds the days a form may carry, far above any grant the
// node allows, only so that days × 24h fits a time.Duration.
const datasetMaxDays = 100_000

func (c *Console) datasetPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out := s.creds.outgoing(ctx)
	resp, err := c.api.catalog.GetDataset(out, &yrdv1.GetDatasetRequest{Id: r.PathValue("id")})
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	lang := language(r)
	v := buildDataset(resp.GetDataset(), lang)
	v.Request = datasetRequest(resp.GetDataset(), s.who.GetRole())
	grants, err := c.api.grants.ListGrants(out, &yrdv1.ListGrantsRequest{DatasetId: resp.GetDataset().GetId()})
	if err != nil {
		// The dataset is still worth showing: only this section is refused.
		st := status.Convert(err)
		v.GrantsRefused = st.Code().String() + ": " + st.Message()
	} else {
		v.Grants = datasetGrants(grants.GetGrants(), c.cfg.Now(), lang)
		v.Requested = requestedAmong(v.Grants, r.URL.Query().Get("requested"))
	}
	c.page(w, r, s, "dataset", "catalog", v)
}

// buildDataset lays out the catalog entry for the page.
func buildDataset(d *yrdv1.Dataset, lang string) datasetView {
	v := datasetView{D: d, CityName: cityName(d.GetOwnerCity(), lang), Level: catalogLevel(d.GetLevel()),
		PI: personalInfoOf(d), Family: d.GetStandardSchemaId()}
	if v.Family != "" {
		v.FamilyLink = "/catalog?" + url.Values{"family": {v.Family}}.Encode()
	} else {
		v.Family = d.GetId()
	}
	for _, col := range d.GetSchema().GetColumns() {
		row := datasetColumn{Name: col.GetName(), Type: col.GetType(), Description: col.GetDescription(),
			PIKey: personalInfoKey(col.GetPersonalInfo()), IdentifierKey: identifierKey(col.GetIdentifierRole()),
			Generalise: generalisation(col.GetGeneralise(), lang)}
		if k := col.GetPersonalInfo(); k != yrdv1.PersonalInfo_PERSONAL_INFO_NONE {
			row.PIClass = "pi"
		}
		if b := col.GetSumBound(); b != 0 {
			row.SumBound = strconv.FormatFloat(b, 'g', -1, 64)
		}
		v.Columns = append(v.Columns, row)
	}
	return v
}

func identifierKey(r yrdv1.IdentifierRole) string {
	switch r {
	case yrdv1.IdentifierRole_IDENTIFIER_NONE:
		return "dataset.id_none"
	case yrdv1.IdentifierRole_IDENTIFIER_DIRECT:
		return "dataset.id_direct"
	case yrdv1.IdentifierRole_IDENTIFIER_QUASI:
		return "dataset.id_quasi"
	}
	return "dataset.id_unspecified"
}

// generalisation says how a quasi-identifier shows in rows, "" if as is.
func generalisation(g *yrdv1.Generalisation, lang string) string {
	switch rule := g.GetRule().(type) {
	case *yrdv1.Generalisation_BandWidth:
		return fmt.Sprintf(translate(lang, "dataset.gen_band"), strconv.FormatFloat(rule.BandWidth, 'g', -1, 64))
	case *yrdv1.Generalisation_PrefixLength:
		return fmt.Sprintf(translate(lang, "dataset.gen_prefix"), rule.PrefixLength)
	case *yrdv1.Generalisation_Truncate:
		if rule.Truncate == yrdv1.DateTruncation_DATE_TRUNCATION_YEAR {
			return translate(lang, "dataset.gen_year")
		}
		return translate(lang, "dataset.gen_month")
	}
	return ""
}

// datasetRequest is the request form for role on d. The role list is the
// node's (node/authz.go admits analysts and CDOs to RequestGrant); the
// form only spares others a form the node would refuse.
func datasetRequest(d *yrdv1.Dataset, role yrdv1.Role) datasetRequestForm {
	f := datasetRequestForm{Show: role == yrdv1.Role_ROLE_ANALYST || role == yrdv1.Role_ROLE_CDO,
		Purposes: d.GetPermittedPurposes(), Days: datasetDefaultDays}
	switch {
	case d.GetRetired():
		f.Blocked = "dataset.blocked_retired"
	case d.GetLevel() == yrdv1.ClassificationLevel_LEVEL_CORE:
		f.Blocked = "dataset.blocked_core"
	}
	for _, form := range []yrdv1.ResultForm{yrdv1.ResultForm_RESULT_FORM_AGGREGATES, yrdv1.ResultForm_RESULT_FORM_ROWS} {
		f.Forms = append(f.Forms, catalogOption{Value: resultFormWord(form), Key: resultFormKey(form)})
	}
	return f
}

// resultFormWord is the form value of a result form: its enum name
// without the prefix, lower case ("aggregates", "rows").
func resultFormWord(f yrdv1.ResultForm) string {
	return strings.ToLower(strings.TrimPrefix(f.String(), "RESULT_FORM_"))
}

func resultFormKey(f yrdv1.ResultForm) string {
	switch f {
	case yrdv1.ResultForm_RESULT_FORM_ROWS:
		return "dataset.form_rows"
	case yrdv1.ResultForm_RESULT_FORM_AGGREGATES:
		return "dataset.form_aggregates"
	}
	return "dataset.form_unspecified"
}

// datasetGrants lays out the grants, the newest request first. An approved
// grant past its expiry shows as expired: the same grant, read at now.
func datasetGrants(grants []*yrdv1.Grant, now time.Time, lang string) []datasetGrant {
	sort.SliceStable(grants, func(i, j int) bool {
		return grants[i].GetRequestedAt().AsTime().After(grants[j].GetRequestedAt().AsTime())
	})
	var out []datasetGrant
	for _, g := range grants {
		row := datasetGrant{ID: g.GetId(), City: g.GetRequesterCity(), CityName: cityName(g.GetRequesterCity(), lang), Org: g.GetRequesterOrg(), Purpose: g.GetPurpose(),
			FormKey: resultFormKey(g.GetResultForm()), Days: int(g.GetDuration().AsDuration() / (24 * time.Hour)),
			AllowPersonal: g.GetAllowPersonal(), Expires: templateTime(g.GetExpiresAt().AsTime(), g.GetExpiresAt() != nil),
			Requested: templateTime(g.GetRequestedAt().AsTime(), g.GetRequestedAt() != nil)}
		row.StateKey, row.StateClass = grantStateWords(g.GetState())
		if grantExpired(g, now) {
			row.StateKey, row.StateClass = "grants.state_expired", "warn"
		}
		out = append(out, row)
	}
	return out
}

func templateTime(t time.Time, set bool) string {
	if !set || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime)
}

// grantStateWords are a grant state's words (the grants page's) and CSS
// class.
func grantStateWords(s yrdv1.GrantState) (string, string) {
	switch s {
	case yrdv1.GrantState_GRANT_STATE_REQUESTED:
		return "grants.state_requested", "warn"
	case yrdv1.GrantState_GRANT_STATE_APPROVED:
		return "grants.state_approved", "ok"
	case yrdv1.GrantState_GRANT_STATE_REJECTED:
		return "grants.state_rejected", "bad"
	case yrdv1.GrantState_GRANT_STATE_REVOKED:
		return "grants.state_revoked", "bad"
	}
	return "grants.state_unspecified", ""
}

// requestedAmong is id if the grants hold it: the notice after a request
// names a grant the node listed, not whatever the link says.
func requestedAmong(grants []datasetGrant, id string) string {
	for _, g := range grants {
		if id != "" && g.ID == id {
			return id
		}
	}
	return ""
}

// requestAccess asks the node for a grant on the dataset, as the form
// says; the node decides whether this principal may, and the owner's CDO
// decides the grant later.
func (c *Console) requestAccess(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	req, bad := grantRequestFromForm(id, r)
	if bad != "" {
		c.refuse(w, r, s, http.StatusBadRequest, c.tr(r, bad))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.api.grants.RequestGrant(s.creds.outgoing(ctx), req)
	if err != nil {
		c.apiError(w, r, s, err)
		return
	}
	c.log.Info("console: grant requested", "org", s.who.GetOrg(), "name", s.who.GetName(), "grant", resp.GetGrant().GetId(), "dataset", id)
	back := "/datasets/" + url.PathEscape(id) + "?" + url.Values{"requested": {resp.GetGrant().GetId()}}.Encode()
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// grantRequestFromForm reads the form into a RequestGrantRequest. Only
// what has no place in the request (a result form that is none, days
// that are no number) is refused here; the node judges the rest.
func grantRequestFromForm(id string, r *http.Request) (*yrdv1.RequestGrantRequest, string) {
	req := &yrdv1.RequestGrantRequest{DatasetId: id, Purpose: r.PostFormValue("purpose"),
		AllowPersonal: r.PostFormValue("allow_personal") == "1", Note: strings.TrimSpace(r.PostFormValue("note"))}
	form, ok := yrdv1.ResultForm_value["RESULT_FORM_"+strings.ToUpper(r.PostFormValue("result_form"))]
	if !ok || form == 0 {
		return nil, "dataset.bad_form"
	}
	req.ResultForm = yrdv1.ResultForm(form)
	if s := strings.TrimSpace(r.PostFormValue("days")); s != "" {
		// Bounded so the duration cannot wrap around into a valid one.
		days, err := strconv.Atoi(s)
		if err != nil || days < -datasetMaxDays || days > datasetMaxDays {
			return nil, "dataset.bad_days"
		}
		req.Duration = durationpb.New(time.Duration(days) * 24 * time.Hour)
	}
	return req, ""
}
