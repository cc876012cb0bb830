package node_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// TestUsageShowsBudgetsAndExports: after noisy queries by two analytics
// organisations and a cross-border flow of Shanghai's trips to a trial
// partner, PolicyService.GetUsage shows each organisation's spending on
// the elderly family with the policy's budget (on any node: the catalog
// replicates it) and, on Shanghai's node only, the trips owner's count of
// exported vehicles with the policy's threshold. Operators and auditors
// see every organisation, or the one they ask for; an analyst or CDO only
// its own, and asking for another is refused on record; a publisher is
// refused; a year out of range is InvalidArgument naming "year".
func TestUsageShowsBudgetsAndExports(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{cities: []string{"shanghai", "hangzhou", "nanjing", "zhoushan"},
		outside: map[string]bool{"zhoushan": true}, adjust: vehiclesAreIndividuals})
	hz, nj := dd.analyst(t, "hangzhou"), dd.analyst(t, "nanjing")
	const noisy = "SELECT district, count(*) FROM " + advSHElderly + " GROUP BY district"
	_, rc := advOK(t, hz, elderlyPurpose, noisy)
	advOK(t, nj, elderlyPurpose, noisy)
	advOK(t, nj, elderlyPurpose, noisy)
	eps := rc.GetNoise().GetEpsilon()
	if eps <= 0 {
		t.Fatalf("the elderly query spent no budget: receipt noise %v", rc.GetNoise())
	}
	vehicles := exportSomeTrips(t, dd)

	params, err := yrdv1grpc.NewPolicyServiceClient(dd.Conn(0)).GetPolicy(testCtx(t), &yrdv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	budget := params.GetParams().GetPrivacyBudget()
	year := time.Now().In(time.FixedZone("CST", 8*3600)).Year()
	hzSpent := fmt.Sprintf("hangzhou/hangzhou-analytics %d yrd.elderly-population.v1: %v of %v, %v left", year, eps, budget, budget-eps)
	njSpent := fmt.Sprintf("nanjing/nanjing-analytics %d yrd.elderly-population.v1: %v of %v, %v left", year, 2*eps, budget, budget-2*eps)
	exported := fmt.Sprintf("lingang-ica %d EXPORT_KIND_PERSONAL: %d of %d", year, vehicles, params.GetParams().GetCrossBorderIndividualsLimit())

	sh, njIdx := dd.Index("shanghai"), dd.Index("nanjing")
	auditor := connAs(t, dd.Cluster, sh, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR)
	for _, c := range []struct {
		name    string
		conn    *grpc.ClientConn
		req     *yrdv1.GetUsageRequest
		city    string
		budgets []string
		exports []string
	}{
		{"operator at shanghai", dd.Conn(sh), &yrdv1.GetUsageRequest{}, "shanghai", []string{hzSpent, njSpent}, []string{exported}},
		{"auditor, this year by number", auditor, &yrdv1.GetUsageRequest{Year: int32(year)}, "shanghai", []string{hzSpent, njSpent}, []string{exported}},
		{"operator at nanjing: exports are per node", dd.Conn(njIdx), &yrdv1.GetUsageRequest{}, "nanjing", []string{hzSpent, njSpent}, nil},
		{"operator, one org", dd.Conn(sh), &yrdv1.GetUsageRequest{Org: "nanjing-analytics"}, "shanghai", []string{njSpent}, nil},
		{"operator, next year", dd.Conn(sh), &yrdv1.GetUsageRequest{Year: int32(year + 1)}, "shanghai", nil, nil},
		{"analyst: its own org only", hz, &yrdv1.GetUsageRequest{}, "hangzhou", []string{hzSpent}, nil},
		{"analyst naming its own org", hz, &yrdv1.GetUsageRequest{Org: "hangzhou-analytics"}, "hangzhou", []string{hzSpent}, nil},
		{"cdo of the exporter", connAs(t, dd.Cluster, sh, "lingang-ica", yrdv1.Role_ROLE_CDO), &yrdv1.GetUsageRequest{}, "shanghai", nil, []string{exported}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantUsage(t, c.conn, c.req, c.city, c.budgets, c.exports)
		})
	}

	wantUsageRefusals(t, dd, hz, year)
}

// wantUsageRefusals: the Hangzhou analyst asking for Nanjing's usage is
// refused, on Hangzhou's record; a publisher is refused; so is a year out
// of range.
func wantUsageRefusals(t *testing.T, dd *dataDelta, hz *grpc.ClientConn, year int) {
	t.Helper()
	usageRefused(t, hz, &yrdv1.GetUsageRequest{Org: "nanjing-analytics"}, codes.PermissionDenied, node.RuleUsageOtherOrg, "nanjing-analytics")
	hzAuditor := connAs(t, dd.Cluster, dd.Index("hangzhou"), "hangzhou-audit", yrdv1.Role_ROLE_AUDITOR)
	recs, err := yrdv1grpc.NewAuditServiceClient(hzAuditor).ListAudit(testCtx(t), &yrdv1.ListAuditRequest{RuleId: node.RuleUsageOtherOrg})
	if err != nil || len(recs.GetRecords()) != 1 || recs.GetRecords()[0].GetRequester().GetOrg() != "hangzhou-analytics" {
		t.Fatalf("the refusal on Hangzhou's record: %v, %v", recs.GetRecords(), err)
	}
	sh := dd.Index("shanghai")
	publisher := connAs(t, dd.Cluster, sh, "shanghai-transport", yrdv1.Role_ROLE_PUBLISHER)
	usageRefused(t, publisher, &yrdv1.GetUsageRequest{}, codes.PermissionDenied, "GetUsage", "role publisher may not call it")
	for _, y := range []int32{1999, int32(year + 2), -1} {
		usageRefused(t, dd.Conn(sh), &yrdv1.GetUsageRequest{Year: y}, codes.InvalidArgument, "year: "+strconv.Itoa(int(y)))
	}
}

// vehiclesAreIndividuals makes the trips' vehicle_id their direct
// identifier, so that the owner can count the individuals a cross-border
// flow carries (see TestAdversarialCrossBorderPartner).
func vehiclesAreIndividuals(d *yrdv1.Dataset) {
	if d.GetId() != advTrips {
		return
	}
	for _, c := range d.GetSchema().GetColumns() {
		if c.GetName() == "vehicle_id" {
			c.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
		}
	}
}

// exportSomeTrips has the trial partner take the shortest trips out of the
// mainland and returns how many distinct vehicles they carry.
func exportSomeTrips(t *testing.T, dd *dataDelta) uint64 {
	t.Helper()
	direct := newAdvDirect(t, dd)
	trips := direct.src(advTrips)
	q := direct.query(t, "SELECT quantile_disc(distance_km, 0.02) FROM "+trips)[0][0].(float64)
	where := "distance_km < " + strconv.FormatFloat(q, 'f', -1, 64)
	n := direct.query(t, "SELECT count(DISTINCT vehicle_id) FROM "+trips+" WHERE "+where)[0][0].(int64)
	partner := advAnalyst(t, dd, "zhoushan", "overseas-oem")
	if r, _ := advOK(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+where); len(r.rows) == 0 || n == 0 {
		t.Fatalf("the flow carried %d rows of %d vehicles", len(r.rows), n)
	}
	return uint64(n)
}

// wantUsage asks conn for usage and requires the answering city and
// exactly the budget and export lines given, in order.
func wantUsage(t *testing.T, conn *grpc.ClientConn, req *yrdv1.GetUsageRequest, city string, budgets, exports []string) {
	t.Helper()
	resp, err := yrdv1grpc.NewPolicyServiceClient(conn).GetUsage(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var gotB, gotE []string
	for _, b := range resp.GetBudgets() {
		gotB = append(gotB, fmt.Sprintf("%s/%s %d %s: %v of %v, %v left", b.GetCity(), b.GetOrg(), b.GetYear(), b.GetFamily(),
			b.GetSpent(), b.GetBudget(), b.GetRemaining()))
	}
	for _, e := range resp.GetExports() {
		gotE = append(gotE, fmt.Sprintf("%s %d %s: %d of %d", e.GetOrg(), e.GetYear(), e.GetKind(), e.GetCount(), e.GetThreshold()))
	}
	if resp.GetCity() != city || fmt.Sprint(gotB) != fmt.Sprint(budgets) || fmt.Sprint(gotE) != fmt.Sprint(exports) {
		t.Fatalf("usage at %s:\n budgets %q\n exports %q\nwant at %s:\n budgets %q\n exports %q", resp.GetCity(), gotB, gotE, city, budgets, exports)
	}
	if want := req.GetYear(); resp.GetYear() != want && want != 0 {
		t.Fatalf("usage for year %d, asked for %d", resp.GetYear(), want)
	}
}

// usageRefused requires GetUsage to fail with code and a message naming
// every want.
func usageRefused(t *testing.T, conn *grpc.ClientConn, req *yrdv1.GetUsageRequest, code codes.Code, want ...string) {
	t.Helper()
	_, err := yrdv1grpc.NewPolicyServiceClient(conn).GetUsage(testCtx(t), req)
	if status.Code(err) != code {
		t.Fatalf("GetUsage(%v): %v, want %v", req, err, code)
	}
	for _, w := range want {
		if !strings.Contains(status.Convert(err).Message(), w) {
			t.Fatalf("GetUsage(%v): %q does not name %q", req, status.Convert(err).Message(), w)
		}
	}
}
