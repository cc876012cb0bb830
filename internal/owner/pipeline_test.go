package owner

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The whole pipeline, from request to trailer, without a cluster.

// noiseOff makes calibrated noise round to nothing, as testnet.NoiseOff.
func noiseOff(p *yrdv1.PolicyParams) {
	p.MaxQueryEpsilon, p.DefaultQueryEpsilon, p.PrivacyBudget = 1e12, 1e12, 1e300
}

// A permitted aggregate: the decision is on record before the result, the
// budget pays for its noise, and the trailer's signed receipt matches the
// rows and names the decision record; the release record follows.
func TestPermittedAggregate(t *testing.T) {
	f := newFixture(t)
	r, err := f.run(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose,
		"SELECT district, count(*) AS n FROM "+elderly+" GROUP BY district ORDER BY n DESC"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.rows) == 0 || r.header == nil || len(r.header.GetColumns()) != 2 {
		t.Fatalf("header %v, %d rows", r.header, len(r.rows))
	}
	plan := r.header.GetPlans()[0]
	eps := plan.GetDecision().GetNoiseEpsilon()
	if plan.GetPlan() == "" || eps <= 0 || plan.GetNoise().GetEpsilon() != eps || plan.GetNode() != nodeID(t) {
		t.Fatalf("plan %v", plan)
	}
	rc := r.receipt()
	if err := receipt.Verify(rc); err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	if err := receipt.CheckRows(rc, r.rows); err != nil {
		t.Fatalf("receipt does not match the rows: %v", err)
	}
	if rc.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES || rc.GetNoise().GetEpsilon() != eps {
		t.Fatalf("receipt %v", rc)
	}
	recs := f.audit.all()
	if len(recs) != 2 || recs[0].GetDecision() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES || rc.GetAuditSeq() != recs[0].GetSeq() {
		t.Fatalf("audit %v; want the decision, then the release", recs)
	}
	if !strings.HasPrefix(recs[1].GetDetail(), "released ") || recs[1].GetRows() != uint64(len(r.rows)) {
		t.Fatalf("release record %v", recs[1])
	}
	if len(f.budget.spends) != 1 || f.budget.spends[0].Family != plan.GetNoise().GetBudgetFamily() {
		t.Fatalf("spends %v", f.budget.spends)
	}
}

// A denied query: PermissionDenied, nothing sent, the refusal on record
// with the policy's rule.
func TestDeniedQuery(t *testing.T) {
	f := newFixture(t)
	r, err := f.run(t, request(t, analyst("nanjing", "nj-lab"), elderlyPurpose,
		"SELECT district FROM "+elderly+" WHERE care_level >= 5"))
	if !errors.Is(err, errkind.PermissionDenied) {
		t.Fatalf("err %v, want PermissionDenied", err)
	}
	if r.header != nil || r.trailer != nil {
		t.Fatal("a denied query sent something")
	}
	recs := f.audit.all()
	if len(recs) != 1 || recs[0].GetDecision() != yrdv1.Effect_EFFECT_DENY || !slices.Contains(recs[0].GetRuleIds(), policy.RuleGeneralHiddenPredicate) {
		t.Fatalf("audit %v", recs)
	}
	if !strings.Contains(err.Error(), policy.RuleGeneralHiddenPredicate) || recs[0].GetDetail() != err.Error() {
		t.Fatalf("error %q, record %q", err, recs[0].GetDetail())
	}
}

// k-suppression: of a fine-grained GROUP BY, only groups of at least k
// individuals leave, whatever the engine computed.
func TestKSuppression(t *testing.T) {
	f := newFixture(t)
	noiseOff(f.policy.params)
	f.budget.left = f.policy.params.GetPrivacyBudget()
	r, err := f.run(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose,
		"SELECT district, gender, count(*) AS n FROM "+elderly+" GROUP BY district, gender"))
	if err != nil {
		t.Fatal(err)
	}
	k := int64(r.receipt().GetMinGroupSize())
	var total int64
	for _, row := range r.rows {
		n := row.GetValues()[2].GetIntValue()
		if n < k {
			t.Fatalf("group %v of %d individuals released, k = %d", row, n, k)
		}
		total += n
	}
	if k < 2 || total >= dataRows {
		t.Fatalf("k %d; %d of %d individuals released: no group was held back", k, total, dataRows)
	}
}

// Budget exhausted: the decision is recorded, then the refusal with rule
// budget.exhausted; ResourceExhausted, and nothing sent.
func TestBudgetExhausted(t *testing.T) {
	f := newFixture(t)
	f.budget.left = 0
	r, err := f.run(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, "SELECT count(*) FROM "+elderly))
	if !errors.Is(err, errkind.Exhausted) {
		t.Fatalf("err %v, want Exhausted", err)
	}
	if r.header != nil {
		t.Fatal("sent a header")
	}
	recs := f.audit.all()
	if len(recs) != 2 || recs[0].GetDecision() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES || recs[1].GetDecision() != yrdv1.Effect_EFFECT_DENY ||
		!slices.Contains(recs[1].GetRuleIds(), RuleBudgetExhausted) {
		t.Fatalf("audit %v", recs)
	}
}

// Explain: the decision and the plan with its noise, a record that says
// explain, and neither data nor budget spent.
func TestExplain(t *testing.T) {
	f := newFixture(t)
	f.catalog.spent[policy.Family(f.catalog.datasets[elderly])] = 1
	req := request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, "SELECT district, count(*) FROM "+elderly+" GROUP BY district")
	req.Explain = true
	r, err := f.run(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.rows) != 0 || len(r.header.GetColumns()) != 0 || r.trailer.GetCities()[0].GetReason() != "explain: no data read" {
		t.Fatalf("explain sent %v, %d rows, %v", r.header, len(r.rows), r.trailer)
	}
	np := r.header.GetPlans()[0].GetNoise()
	if np.GetBudget() != policy.DefaultParams().GetPrivacyBudget() || np.GetBudgetRemaining() != np.GetBudget()-1 || len(np.GetMeasurements()) != 1 {
		t.Fatalf("noise plan %v", np)
	}
	recs := f.audit.all()
	if len(recs) != 1 || !strings.HasPrefix(recs[0].GetDetail(), "explain: ") || len(f.budget.spends) != 0 {
		t.Fatalf("audit %v, spends %v", recs, f.budget.spends)
	}
}

// A row query: person_id leaves as a pseudonym, keyed per requesting
// organisation (no grant), so one organisation's pseudonyms repeat and
// another's differ; as column batches the rows and digest are the same.
func TestRowQueryWithPseudonyms(t *testing.T) {
	f := newFixture(t)
	const sql = "SELECT person_id, district, age FROM " + elderly + " ORDER BY district LIMIT 20"
	a, err := f.run(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, sql))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.rows) != 20 || a.header.GetColumns()[0].GetTreatment() != yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED {
		t.Fatalf("%d rows, columns %v", len(a.rows), a.header.GetColumns())
	}
	files, _ := csvs()
	raw, err := os.ReadFile(files[elderly])
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range a.rows {
		if id := row.GetValues()[0].GetStringValue(); id == "" || strings.Contains(string(raw), id) {
			t.Fatalf("person_id %q is not a pseudonym", id)
		}
	}
	req := request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, sql)
	req.Columnar, req.BatchRows = true, 7
	b, err := f.run(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if b.columns != 3 || !slices.Equal(b.receipt().GetResultDigest(), a.receipt().GetResultDigest()) {
		t.Fatalf("columnar: %d column batches, digest equal %v", b.columns, slices.Equal(b.receipt().GetResultDigest(), a.receipt().GetResultDigest()))
	}
	other, err := f.run(t, request(t, analyst("hangzhou", "hz-other"), elderlyPurpose, sql))
	if err != nil {
		t.Fatal(err)
	}
	if other.rows[0].GetValues()[0].GetStringValue() == a.rows[0].GetValues()[0].GetStringValue() {
		t.Fatal("two organisations got the same pseudonym")
	}
}

// A requester outside the mainland: its rows are a cross-border flow,
// whose individuals (vehicles) the export ledger counts; a flow past the
// yearly limit is refused, on record, and counts nothing.
func TestCrossBorderExportRecorded(t *testing.T) {
	f := newFixture(t)
	partner := analyst("zhoushan", "overseas-oem")
	req := request(t, partner, tripsPurpose, "SELECT trip_id FROM "+trips+" WHERE distance_km < 5")
	req.Outside = true
	r, err := f.run(t, req)
	if err != nil {
		t.Fatal(err)
	}
	rc := r.receipt()
	if !rc.GetCrossBorder() || rc.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_ROWS {
		t.Fatalf("receipt %v", rc)
	}
	year := time.Now().In(chinaTime).Year()
	org := f.catalog.datasets[trips].GetOwnerOrg()
	sent, err := f.exports.Count(org, year, ledger.Personal)
	if err != nil || sent == 0 {
		t.Fatalf("ledger counts %d individuals (%v), want those of %d trips", sent, err, len(r.rows))
	}

	f.policy.params.CrossBorderIndividualsLimit = sent
	all := request(t, partner, tripsPurpose, "SELECT trip_id FROM "+trips)
	all.Outside = true
	if _, err := f.run(t, all); !errors.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), policy.RuleCrossBorderThreshold) {
		t.Fatalf("err %v, want the threshold refusal", err)
	}
	if n, _ := f.exports.Count(org, year, ledger.Personal); n != sent {
		t.Fatalf("a refused flow was counted: %d, was %d", n, sent)
	}
	last := f.audit.all()[len(f.audit.all())-1]
	if last.GetDecision() != yrdv1.Effect_EFFECT_DENY || !last.GetCrossBorder() || !slices.Contains(last.GetRuleIds(), policy.RuleCrossBorderThreshold) {
		t.Fatalf("last record %v", last)
	}
}

// A result past the size cap stops, and a refusal under limit.result-size
// says so after the decision's ALLOW.
func TestResultSizeCap(t *testing.T) {
	f := newFixture(t)
	f.e.cfg.MaxResultBytes = 200
	_, err := f.run(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, "SELECT person_id, district FROM "+elderly))
	if !errors.Is(err, ErrResultSize) || !errors.Is(err, errkind.Exhausted) {
		t.Fatalf("err %v, want the size cap", err)
	}
	recs := f.audit.all()
	if len(recs) != 2 || recs[1].GetDecision() != yrdv1.Effect_EFFECT_DENY || !slices.Contains(recs[1].GetRuleIds(), RuleResultSize) {
		t.Fatalf("audit %v", recs)
	}
}
