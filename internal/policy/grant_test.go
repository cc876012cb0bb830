package policy

import (
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestApplicableGrantPreference(t *testing.T) {
	r := elderlyRows(t)
	plain := approved("g-a", elderlyID, "elderly-care-planning", rows)
	personalZ := approved("g-z", elderlyID, "elderly-care-planning", rows)
	personalZ.AllowPersonal = true
	personalM := proto.Clone(personalZ).(*yrdv1.Grant)
	personalM.Id = "g-m"
	r.Grants = []*yrdv1.Grant{plain, personalZ, personalM, nil}
	if g, why := ApplicableGrant(r); g.GetId() != "g-m" || why != "" {
		t.Errorf("GENERAL: ApplicableGrant = %q, %q; want the personal grant with the smallest id", g.GetId(), why)
	}
	// allow_personal means nothing for IMPORTANT data: smallest id wins.
	h := hospitalAggs(t)
	a := approved("g-b", hospitalID, "public-health-research", aggs)
	a.AllowPersonal = true
	h.Grants = append(h.Grants, a)
	if g, _ := ApplicableGrant(h); g.GetId() != "g-b" {
		t.Errorf("IMPORTANT: ApplicableGrant = %q, want g-b", g.GetId())
	}
}

// The choice of grant, and the reason when none applies, do not depend on
// the order of the candidates.
func TestGrantOrderIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, base := range []func(testing.TB) *Request{hospitalAggs, elderlyAggs} {
		r := base(t)
		r.Grants = manyGrants(r.Dataset.GetId(), r.Access.GetPurpose(), 20)
		r.Grants[7].AllowPersonal = true // g-7 expired
		want := decide(t, r)
		none := cloneRequest(r)
		none.Grants = append(none.Grants[:13:13], none.Grants[14:]...)
		wantNone := decide(t, none)
		for range 50 {
			rng.Shuffle(len(r.Grants), func(i, j int) { r.Grants[i], r.Grants[j] = r.Grants[j], r.Grants[i] })
			if got := decide(t, r); !proto.Equal(got, want) {
				t.Fatalf("grant order changed the decision:\n%v\n%v", got, want)
			}
			rng.Shuffle(len(none.Grants), func(i, j int) { none.Grants[i], none.Grants[j] = none.Grants[j], none.Grants[i] })
			if got := decide(t, none); !proto.Equal(got, wantNone) {
				t.Fatalf("grant order changed the denial:\n%v\n%v", got, wantNone)
			}
		}
		if want.GetGrantId() != "g-13" {
			t.Errorf("%s: grant_id %q, want g-13", r.Dataset.GetId(), want.GetGrantId())
		}
		if r.Dataset.GetId() == hospitalID && !strings.Contains(wantNone.GetReason(), "expired at") {
			t.Errorf("reason %q: want the closest grant, an expired one", wantNone.GetReason())
		}
	}
}

func TestApplicableGrantWhy(t *testing.T) {
	if g, why := ApplicableGrant(nil); g != nil || why == "" {
		t.Errorf("ApplicableGrant(nil) = %v, %q", g, why)
	}
	r := hospitalAggs(t)
	r.Grants[0].State = yrdv1.GrantState_GRANT_STATE_UNSPECIFIED
	if _, why := ApplicableGrant(r); why != `grant "g-health" is not approved` {
		t.Errorf("why = %q", why)
	}
	// A grant naming no holder is nobody's grant.
	r.Grants[0].State, r.Grants[0].RequesterOrg = yrdv1.GrantState_GRANT_STATE_APPROVED, ""
	r.Requester.Org = ""
	if g, why := ApplicableGrant(r); g != nil || !strings.HasPrefix(why, "no grant on dataset") {
		t.Errorf("ApplicableGrant = %v, %q", g, why)
	}
}

func TestDecideNilAndEmpty(t *testing.T) {
	d := Decide(nil)
	if d.GetEffect() != deny || len(d.GetRuleIds()) == 0 || d.GetRuleIds()[0] != "request.complete" {
		t.Errorf("Decide(nil) = %v", d)
	}
	d = Decide(&Request{})
	if d.GetEffect() != deny || d.GetRuleIds()[0] != "request.complete" || d.GetDerivedLevel() != yrdv1.ClassificationLevel_LEVEL_CORE {
		t.Errorf("Decide(empty) = %v", d)
	}
	r := elderlyRows(t)
	r.Access = nil
	if d := decide(t, r); d.GetRuleIds()[0] != "request.complete" || !strings.Contains(d.GetReason(), "no access request") {
		t.Errorf("Decide without access = %v", d)
	}
}

// Fail closed on tags a validated catalog would not hold.
func TestUnknownTags(t *testing.T) {
	r := elderlyRows(t)
	cols := r.Dataset.Schema.Columns
	cols[1].PersonalInfo = yrdv1.PersonalInfo_PERSONAL_INFO_UNSPECIFIED // district: counts as sensitive
	cols[4].IdentifierRole = 42                                         // living_alone: counts as direct
	d := decide(t, r)
	got := treatments(d)
	if got["district"] != withheld || got["living_alone"] != pseudo {
		t.Errorf("treatments %v", got)
	}
	r.Access.FilterColumns = []string{"living_alone"}
	if d := decide(t, r); d.GetEffect() != deny || d.GetRuleIds()[0] != "identifier.direct" {
		t.Errorf("filter on an unknown-role column: %v %v", d.GetEffect(), d.GetRuleIds())
	}
}
