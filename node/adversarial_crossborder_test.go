package node_test

// Adversarial test of a cross-border partner (split from
// adversarial_test.go; see adversarial_helpers_test.go).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/yrd-exchange/yrdnode/internal/policy"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestAdversarialCrossBorderPartner: a Lingang trial partner outside the
// mainland (zhoushan, joined with OutsideMainland) gets only non-personal
// columns of GENERAL, cross-border eligible data of a trial sector, within
// the owner's yearly individuals threshold. Refused, with nothing
// returned: any named personal column (shown, filtered, grouped),
// IMPORTANT data even under an approved grant (crossborder.general-only),
// a non-eligible dataset outside the trial sectors, and the trial dataset
// once its sector is taken out of the trial (crossborder.trial-sector).
// Allowed: SELECT * of the trial dataset gives only its non-personal
// columns, exactly the filtered rows, with a receipt marked cross-border
// and audit records tagged cross-border. Threshold: with the limit lowered
// to L, a flow that would pass it is refused naming crossborder.threshold,
// the counts and L; the refused flow records nothing, so a repeat of an
// already counted flow and a flow that brings the total to exactly L still
// pass, after which every flow is refused.
//
// The sample's trips dataset has no DIRECT identifier, without which the
// owner cannot count the individuals a flow carries (it then refuses every
// cross-border flow, failing closed); here its vehicle_id is the direct
// identifier, so the ledger counts vehicles.
func TestAdversarialCrossBorderPartner(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{cities: []string{"shanghai", "hangzhou", "nanjing", "zhoushan"},
		outside: map[string]bool{"zhoushan": true},
		adjust: func(d *yrdv1.Dataset) {
			if d.GetId() != advTrips {
				return
			}
			for _, c := range d.GetSchema().GetColumns() {
				if c.GetName() == "vehicle_id" {
					c.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
				}
			}
		}})
	direct := newAdvDirect(t, dd)
	trips := direct.src(advTrips)
	partner := advAnalyst(t, dd, "zhoushan", "overseas-oem")

	for _, c := range []struct{ sql, col string }{
		{"SELECT vehicle_id FROM " + advTrips, "vehicle_id"},
		{"SELECT trip_id, start_grid FROM " + advTrips + " LIMIT 5", "start_grid"},
		{"SELECT trip_id FROM " + advTrips + " WHERE end_grid = 'LG-E12N09'", "end_grid"},
		{"SELECT start_grid, count(*) FROM " + advTrips + " GROUP BY start_grid", "start_grid"},
		{"SELECT count(DISTINCT vehicle_id) FROM " + advTrips, "vehicle_id"},
		{"SELECT distance_km FROM " + advTrips + " ORDER BY start_hour LIMIT 1", "start_hour"},
	} {
		advRefused(t, partner, advTripsPurpose, c.sql, codes.PermissionDenied, policy.RuleCrossBorderNoPersonal, c.col)
	}
	// IMPORTANT data, even with the owner's approval.
	advGrant(t, dd, partner, advHealth, advHealthPurpose)
	advRefused(t, partner, advHealthPurpose, "SELECT department, count(*) FROM "+advHealth+" GROUP BY department",
		codes.PermissionDenied, policy.RuleCrossBorderGeneralOnly)
	// GENERAL data that is neither eligible nor of a trial sector.
	advRefused(t, partner, elderlyPurpose, "SELECT district, count(*) FROM "+advSHElderly+" GROUP BY district",
		codes.PermissionDenied, policy.RuleCrossBorderEligible, policy.RuleCrossBorderTrialSector)

	// The trial dataset once its sector leaves the trial.
	advSetPolicy(t, dd, func(p *yrdv1.PolicyParams) {
		p.TrialSectors = slices.DeleteFunc(p.TrialSectors, func(s string) bool { return s == "connected-vehicles" })
	})
	advRefused(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" LIMIT 1",
		codes.PermissionDenied, policy.RuleCrossBorderTrialSector)

	// Three flows by distance: f1 and f3 small, f2 half the trips; the
	// limit is f1's and f3's vehicles together.
	f1, f2, f3, v1, v2, limit := crossBorderFlows(t, direct, trips)
	advSetPolicy(t, dd, func(p *yrdv1.PolicyParams) {
		p.TrialSectors = append(p.TrialSectors, "connected-vehicles")
		p.CrossBorderIndividualsLimit = limit
	})

	// Allowed: every non-personal column of the filtered trips, nothing else.
	wantCrossBorderRows(t, direct, trips, partner, f1)

	// f2 would pass the limit: refused, and it records nothing.
	advRefused(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+f2, codes.PermissionDenied,
		policy.RuleCrossBorderThreshold, fmt.Sprintf("has sent %d individuals", len(v1)),
		fmt.Sprintf("would add %d", union(v1, v2)-uint64(len(v1))), fmt.Sprintf("limit of %d", limit))
	// f1 again (its vehicles are counted already), then f3 up to exactly the limit.
	advOK(t, partner, advTripsPurpose, "SELECT trip_id, distance_km FROM "+advTrips+" WHERE "+f1)
	r3, _ := advOK(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+f3)
	if len(r3.rows) == 0 {
		t.Fatal("f3 released no rows")
	}
	// At the limit nothing more leaves, counted before or not.
	advRefused(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+f1, codes.PermissionDenied, policy.RuleCrossBorderThreshold)

	// The owner's record: every query of the partner tagged cross-border,
	// the threshold refusal among them.
	wantCrossBorderAudit(t, dd)
}

// advSetPolicy changes the cluster's policy parameters.
func advSetPolicy(t *testing.T, dd *dataDelta, change func(*yrdv1.PolicyParams)) {
	t.Helper()
	ps := yrdv1grpc.NewPolicyServiceClient(dd.Conn(0))
	cur, err := ps.GetPolicy(testCtx(t), &yrdv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := cur.GetParams()
	change(p)
	if _, err := ps.UpdatePolicy(testCtx(t), &yrdv1.UpdatePolicyRequest{Params: p, ExpectedVersion: p.GetVersion()}); err != nil {
		t.Fatal(err)
	}
}

// crossBorderFlows is TestAdversarialCrossBorderPartner's three flows of
// trips by distance (f1 and f3 small, f2 half the trips), the vehicles of
// f1 and f2, and a limit of f1's and f3's vehicles together, which f1 and
// f2 together pass.
func crossBorderFlows(t *testing.T, direct *advDirect, trips string) (f1, f2, f3 string, v1, v2 map[string]bool, limit uint64) {
	t.Helper()
	quantile := func(p float64) string {
		return strconv.FormatFloat(direct.query(t, "SELECT quantile_disc(distance_km, ?) FROM "+trips, p)[0][0].(float64), 'f', -1, 64)
	}
	q1, q2, q50 := quantile(0.01), quantile(0.02), quantile(0.5)
	f1 = "distance_km < " + q1
	f3 = "distance_km >= " + q1 + " AND distance_km < " + q2
	f2 = "distance_km >= " + q50
	vehicles := func(where string) map[string]bool {
		out := map[string]bool{}
		for _, r := range direct.query(t, "SELECT DISTINCT vehicle_id FROM "+trips+" WHERE "+where) {
			out[r[0].(string)] = true
		}
		return out
	}
	v1, v2, v3 := vehicles(f1), vehicles(f2), vehicles(f3)
	limit = union(v1, v3)
	if len(v1) == 0 || limit == uint64(len(v1)) || union(v1, v2) <= limit {
		t.Fatalf("setup: %d, %d and %d vehicles do not make a threshold case", len(v1), len(v2), len(v3))
	}
	return f1, f2, f3, v1, v2, limit
}

// union is the number of distinct members of sets.
func union(sets ...map[string]bool) uint64 {
	all := map[string]bool{}
	for _, s := range sets {
		for v := range s {
			all[v] = true
		}
	}
	return uint64(len(all))
}

// wantCrossBorderRows: the partner's SELECT * of the trips where f gets
// every non-personal column of exactly those trips, nothing else, with a
// receipt and decision marked cross-border.
func wantCrossBorderRows(t *testing.T, direct *advDirect, trips string, partner *grpc.ClientConn, f string) {
	t.Helper()
	wantRows := map[string]bool{}
	for _, r := range direct.query(t, "SELECT trip_id, distance_km, duration_s, autonomous_share FROM "+trips+" WHERE "+f) {
		wantRows[fmt.Sprint(r...)] = true
	}
	r, rc := advOK(t, partner, advTripsPurpose, "SELECT * FROM "+advTrips+" WHERE "+f)
	if names := columnNames(r.header.GetColumns()); !slices.Equal(names, []string{"trip_id", "distance_km", "duration_s", "autonomous_share"}) {
		t.Fatalf("cross-border SELECT * shows %v", names)
	}
	if len(r.rows) != len(wantRows) {
		t.Fatalf("%d rows, want %d", len(r.rows), len(wantRows))
	}
	for _, row := range r.rows {
		var vals []any
		for _, v := range row.GetValues() {
			vals = append(vals, cell(v))
		}
		if !wantRows[fmt.Sprint(vals...)] {
			t.Fatalf("row %v is not one of the filtered trips", vals)
		}
	}
	if !rc.GetCrossBorder() || rc.GetRequester().GetCity() != "zhoushan" || rc.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_ROWS ||
		!slices.Contains(rc.GetRuleIds(), policy.RuleCrossBorderNoPersonal) {
		t.Fatalf("receipt %v, want cross-border rows with personal columns withheld", rc)
	}
	if !r.header.GetPlans()[0].GetDecision().GetCrossBorder() {
		t.Fatalf("decision not marked cross-border: %v", r.header.GetPlans()[0].GetDecision())
	}
}

// wantCrossBorderAudit: the owner's record of TestAdversarialCrossBorderPartner
// tags every query of the partner cross-border: three releases and two
// threshold refusals.
func wantCrossBorderAudit(t *testing.T, dd *dataDelta) {
	t.Helper()
	var released, thresholdDenials int
	for _, rec := range advAudit(t, dd, "shanghai", advTrips) {
		if rec.GetRequester().GetCity() != "zhoushan" {
			continue
		}
		if !rec.GetCrossBorder() {
			t.Fatalf("audit record not tagged cross-border: %v", rec)
		}
		if rec.GetDecision() == yrdv1.Effect_EFFECT_DENY && slices.Contains(rec.GetRuleIds(), policy.RuleCrossBorderThreshold) {
			thresholdDenials++
		}
		if rec.GetDecision() == yrdv1.Effect_EFFECT_ALLOW_ROWS && strings.HasPrefix(rec.GetDetail(), "released") {
			released++
		}
	}
	if released != 3 || thresholdDenials != 2 {
		t.Fatalf("owner's record: %d releases and %d threshold refusals, want 3 and 2", released, thresholdDenials)
	}
}
