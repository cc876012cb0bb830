package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestCatalogFilterIsTheRequest: the query string becomes the
// ListDatasetsRequest field for field, and a next-page link keeps it.
func TestCatalogFilterIsTheRequest(t *testing.T) {
	q, _ := url.ParseQuery("city=shanghai&org=+sh-civil-affairs&sector=civil-affairs&level=IMPORTANT&tag=养老&text=elderly+care&family=yrd.x.v1&retired=1&size=20&page=tok")
	f, bad := parseCatalogFilter(q)
	if bad != "" {
		t.Fatal(bad)
	}
	want := &yrdv1.ListDatasetsRequest{OwnerCity: "shanghai", OwnerOrg: "sh-civil-affairs", Sector: "civil-affairs",
		Level: yrdv1.ClassificationLevel_LEVEL_IMPORTANT, Tag: "养老", Text: "elderly care", StandardSchemaId: "yrd.x.v1",
		IncludeRetired: true, PageSize: 20, PageToken: "tok"}
	if got := f.request(); !proto.Equal(got, want) {
		t.Fatalf("request %v, want %v", got, want)
	}
	next, _ := url.Parse(f.query("tok2"))
	g, _ := parseCatalogFilter(next.Query())
	want.PageToken = "tok2"
	if !proto.Equal(g.request(), want) {
		t.Fatalf("the next page's link %s asks %v", next, g.request())
	}
	for query, key := range map[string]string{"level=secret": "catalog.bad_level", "size=many": "catalog.bad_size"} {
		q, _ := url.ParseQuery(query)
		if _, bad := parseCatalogFilter(q); bad != key {
			t.Errorf("%s: %q, want %q", query, bad, key)
		}
	}
}

// TestGrantRequestFromTheForm: the form becomes the RequestGrantRequest;
// only what the request cannot carry is refused before the node.
func TestGrantRequestFromTheForm(t *testing.T) {
	post := func(form string) *http.Request {
		r := httptest.NewRequest("POST", "/datasets/d/request", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	req, bad := grantRequestFromForm("d", post("purpose=p-1&result_form=rows&days=30&allow_personal=1&note=+why+"))
	if bad != "" || req.GetDatasetId() != "d" || req.GetPurpose() != "p-1" || req.GetResultForm() != yrdv1.ResultForm_RESULT_FORM_ROWS ||
		req.GetDuration().AsDuration() != 30*24*time.Hour || !req.GetAllowPersonal() || req.GetNote() != "why" {
		t.Fatalf("%v %q", req, bad)
	}
	if req, _ := grantRequestFromForm("d", post("purpose=p&result_form=aggregates&days=")); req.GetDuration() != nil {
		t.Errorf("no days should leave the node's default, got %v", req.GetDuration())
	}
	for form, key := range map[string]string{"result_form=unspecified": "dataset.bad_form", "result_form=": "dataset.bad_form",
		"result_form=rows&days=a": "dataset.bad_days", "result_form=rows&days=200000000": "dataset.bad_days"} {
		if _, bad := grantRequestFromForm("d", post(form)); bad != key {
			t.Errorf("%s: %q, want %q", form, bad, key)
		}
	}
}

// refusingGrants is a GrantService that refuses ListGrants.
type refusingGrants struct{ yrdv1grpc.GrantServiceClient }

func (refusingGrants) ListGrants(context.Context, *yrdv1.ListGrantsRequest, ...grpc.CallOption) (*yrdv1.ListGrantsResponse, error) {
	return nil, status.Error(codes.PermissionDenied, "not for you")
}

type oneDataset struct {
	yrdv1grpc.CatalogServiceClient
	d *yrdv1.Dataset
}

func (o oneDataset) GetDataset(context.Context, *yrdv1.GetDatasetRequest, ...grpc.CallOption) (*yrdv1.GetDatasetResponse, error) {
	return &yrdv1.GetDatasetResponse{Dataset: o.d}, nil
}

// TestDatasetPageWithoutGrants: when the node refuses ListGrants, the page
// still shows the dataset and the refusal in the grants section only.
func TestDatasetPageWithoutGrants(t *testing.T) {
	conn, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := New(DefaultConfig(conn, "hangzhou", slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	d := &yrdv1.Dataset{Id: "hangzhou.x.y", Title: "某数据集 Some dataset", OwnerCity: "hangzhou", Level: yrdv1.ClassificationLevel_LEVEL_CORE,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{{Name: "a", Type: "VARCHAR", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE}}}}
	c.api.catalog, c.api.grants = oneDataset{d: d}, refusingGrants{}
	s := c.sessions.create(callCreds{apiKey: "k"}, &yrdv1.Principal{City: "hangzhou", Org: "o", Role: yrdv1.Role_ROLE_ANALYST}, "api-key")
	r := httptest.NewRequest("GET", "/datasets/hangzhou.x.y", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.id})
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	body := w.Body.String()
	for _, want := range []string{`id="grants-refused">PermissionDenied: not for you`, "某数据集 Some dataset", `class="badge core"`,
		`id="request-blocked"`, "敏感个人信息"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page (HTTP %d) lacks %s", w.Code, want)
		}
	}
	if w.Code != http.StatusOK || strings.Contains(body, `id="problem"`) || strings.Contains(body, `id="request-form"`) {
		t.Errorf("HTTP %d; the page:\n%s", w.Code, body)
	}
}

// TestAnApprovedGrantPastItsExpiryShowsExpired.
func TestAnApprovedGrantPastItsExpiryShowsExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	grants := []*yrdv1.Grant{
		{Id: "old", State: yrdv1.GrantState_GRANT_STATE_APPROVED, ExpiresAt: timestamppb.New(now.Add(-time.Hour)), RequestedAt: timestamppb.New(now.Add(-48 * time.Hour))},
		{Id: "new", State: yrdv1.GrantState_GRANT_STATE_REQUESTED, RequestedAt: timestamppb.New(now.Add(-time.Hour))},
	}
	rows := datasetGrants(grants, now, "en")
	if rows[0].ID != "new" || rows[0].StateKey != "grants.state_requested" || rows[0].Expires != "" {
		t.Errorf("first row %+v, want the newest request, pending, no expiry", rows[0])
	}
	if rows[1].StateKey != "grants.state_expired" {
		t.Errorf("the approved grant past its expiry shows %s", rows[1].StateKey)
	}
}
