package policy

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var now = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

const (
	rows = yrdv1.ResultForm_RESULT_FORM_ROWS
	aggs = yrdv1.ResultForm_RESULT_FORM_AGGREGATES

	deny      = yrdv1.Effect_EFFECT_DENY
	allowRows = yrdv1.Effect_EFFECT_ALLOW_ROWS
	allowAggs = yrdv1.Effect_EFFECT_ALLOW_AGGREGATES

	raw         = yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW
	masked      = yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED
	pseudo      = yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED
	generalised = yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED
	withheld    = yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD
)

func dataset(t testing.TB, id string) *yrdv1.Dataset {
	t.Helper()
	for _, d := range sample.Datasets() {
		if d.GetId() == id {
			return d
		}
	}
	t.Fatalf("no sample dataset %q", id)
	return nil
}

const (
	elderlyID  = "shanghai.civil-affairs.elderly-population"
	hospitalID = "nanjing.health.hospital-visits"
	tripsID    = "shanghai.connected-vehicles.lingang-trips"
	registryID = "shanghai.public-security.household-registry"
	creditID   = "hangzhou.fintech.enterprise-credit"
)

func analyst() *yrdv1.Principal {
	return &yrdv1.Principal{City: "hangzhou", Org: "hz-lab", Name: "li.wei", Role: yrdv1.Role_ROLE_ANALYST}
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// approved is an applicable grant for the analyst on dataset d.
func approved(id, datasetID, purpose string, form yrdv1.ResultForm) *yrdv1.Grant {
	return &yrdv1.Grant{
		Id: id, DatasetId: datasetID, RequesterCity: "hangzhou", RequesterOrg: "hz-lab",
		Purpose: purpose, ResultForm: form, State: yrdv1.GrantState_GRANT_STATE_APPROVED,
		DecidedAt: ts(now.AddDate(0, -1, 0)), ExpiresAt: ts(now.AddDate(0, 6, 0)),
	}
}

// request builds an analyst's mainland request on a sample dataset.
func request(t testing.TB, datasetID, purpose string, form yrdv1.ResultForm, edit func(*yrdv1.AccessRequest)) *Request {
	t.Helper()
	a := &yrdv1.AccessRequest{DatasetId: datasetID, Purpose: purpose, ResultForm: form}
	if edit != nil {
		edit(a)
	}
	return &Request{
		Requester: analyst(),
		Dataset:   dataset(t, datasetID),
		Access:    a,
		Now:       now,
		Params:    DefaultParams(),
	}
}

func count() *yrdv1.Aggregate { return &yrdv1.Aggregate{Function: "count"} }
func agg(f, col string) *yrdv1.Aggregate {
	return &yrdv1.Aggregate{Function: f, Column: col}
}

// cloneRequest deep-copies every message of r.
func cloneRequest(r *Request) *Request {
	c := *r
	c.Requester = proto.Clone(r.Requester).(*yrdv1.Principal)
	c.Dataset = proto.Clone(r.Dataset).(*yrdv1.Dataset)
	c.Access = proto.Clone(r.Access).(*yrdv1.AccessRequest)
	c.Params = proto.Clone(r.Params).(*yrdv1.PolicyParams)
	c.Grants = make([]*yrdv1.Grant, len(r.Grants))
	for i, g := range r.Grants {
		c.Grants[i] = proto.Clone(g).(*yrdv1.Grant)
	}
	return &c
}

func sameRequest(a, b *Request) bool {
	if a.RequesterOutsideMainland != b.RequesterOutsideMainland || !a.Now.Equal(b.Now) ||
		a.CrossBorderUsage != b.CrossBorderUsage || len(a.Grants) != len(b.Grants) ||
		!proto.Equal(a.Requester, b.Requester) || !proto.Equal(a.Dataset, b.Dataset) ||
		!proto.Equal(a.Access, b.Access) || !proto.Equal(a.Params, b.Params) {
		return false
	}
	for i := range a.Grants {
		if !proto.Equal(a.Grants[i], b.Grants[i]) {
			return false
		}
	}
	return true
}

// decide runs Decide twice and checks what must hold for every decision:
// determinism, untouched inputs, the recorded version and flags, and one
// reason sentence per fired rule.
func decide(t testing.TB, r *Request) *yrdv1.Decision {
	t.Helper()
	before := cloneRequest(r)
	d := Decide(r)
	if again := Decide(r); !proto.Equal(d, again) {
		t.Fatalf("Decide is not deterministic:\n%v\n%v", d, again)
	}
	if !sameRequest(before, r) {
		t.Fatalf("Decide modified its input")
	}
	if d.GetPolicyVersion() != r.Params.GetVersion() {
		t.Errorf("policy_version = %d, want %d", d.GetPolicyVersion(), r.Params.GetVersion())
	}
	if d.GetCrossBorder() != r.RequesterOutsideMainland {
		t.Errorf("cross_border = %v, want %v", d.GetCrossBorder(), r.RequesterOutsideMainland)
	}
	if len(d.GetRuleIds()) == 0 || d.GetReason() == "" {
		t.Errorf("decision without rule ids or reason: %v", d)
	}
	if n := strings.Count(d.GetReason(), "; ") + 1; n != len(d.GetRuleIds()) {
		t.Errorf("reason has %d sentences for %d rules: %q", n, len(d.GetRuleIds()), d.GetReason())
	}
	if d.GetEffect() == deny {
		for _, c := range d.GetColumns() {
			if c.GetTreatment() != withheld {
				t.Errorf("denied, but column %s is %v", c.GetColumn(), c.GetTreatment())
			}
		}
		if d.GetRowCap() != 0 || d.GetMinGroupSize() != 0 || d.GetGrantId() != "" {
			t.Errorf("denied, but row_cap %d, min_group_size %d, grant_id %q", d.GetRowCap(), d.GetMinGroupSize(), d.GetGrantId())
		}
	}
	return d
}

// treatments maps column name to treatment, in a form that prints well.
func treatments(d *yrdv1.Decision) map[string]yrdv1.ColumnTreatment {
	m := make(map[string]yrdv1.ColumnTreatment, len(d.GetColumns()))
	for _, c := range d.GetColumns() {
		m[c.GetColumn()] = c.GetTreatment()
	}
	return m
}

func columnNames(d *yrdv1.Decision) []string {
	var names []string
	for _, c := range d.GetColumns() {
		names = append(names, c.GetColumn())
	}
	return names
}
