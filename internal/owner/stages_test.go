package owner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The stages one by one, each given the state the stages before it left.

const groupSQL = "SELECT district, count(*) AS n FROM " + elderly + " GROUP BY district"

// through runs the stages of req up to and including last.
func (f *fixture) through(t *testing.T, req Request, last string) (*query, error) {
	t.Helper()
	ctx := waitFor(t)
	q, err := f.e.validate(req)
	if err != nil || last == "validate" {
		return q, err
	}
	for _, s := range []struct {
		name string
		run  func(context.Context, *query) error
	}{{"decide", f.e.decide}, {"plan", f.e.plan}, {"record", f.e.record}, {"meter", f.e.meter}} {
		if err := s.run(ctx, q); err != nil || s.name == last {
			return q, err
		}
	}
	return q, nil
}

func TestValidateRefusesBeforeAnyRecord(t *testing.T) {
	f := newFixture(t)
	f.catalog.datasets["hangzhou.x"] = &yrdv1.Dataset{Id: "hangzhou.x", OwnerCity: "hangzhou"}
	p := analyst("hangzhou", "hz-lab")
	for _, c := range []struct {
		sql  string
		kind error
	}{
		{"SELECT count(*) FROM nowhere.none.none", errkind.NotFound},
		{"SELECT count(*) FROM hangzhou.x", errkind.Invalid},
		{"SELECT no_such_column FROM " + elderly, errkind.Invalid},
	} {
		if _, err := f.through(t, request(t, p, elderlyPurpose, c.sql), "validate"); !errors.Is(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.sql, err, c.kind)
		}
	}
	if recs := f.audit.all(); len(recs) != 0 {
		t.Fatalf("validation wrote %v", recs)
	}
}

func TestDecideFillsTheRecordButWritesOnlyADenial(t *testing.T) {
	f := newFixture(t)
	q, err := f.through(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, groupSQL), "decide")
	if err != nil {
		t.Fatal(err)
	}
	if q.dec.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES || q.rec.GetDecision() != q.dec.GetEffect() || q.rec.GetQueryFingerprint() != q.fp {
		t.Fatalf("decision %v, record %v", q.dec, q.rec)
	}
	if recs := f.audit.all(); len(recs) != 0 {
		t.Fatalf("an allowed decision was written before planning: %v", recs)
	}
	_, err = f.through(t, request(t, analyst("hangzhou", "hz-lab"), "marketing", groupSQL), "decide")
	if !errors.Is(err, errkind.PermissionDenied) || len(f.audit.all()) != 1 {
		t.Fatalf("err %v, audit %v", err, f.audit.all())
	}
}

type noEngines struct{}

func (noEngines) Engine(string) connector.Engine { return nil }

func TestPlanCompilesOrRefusesOnRecord(t *testing.T) {
	f := newFixture(t)
	q, err := f.through(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, groupSQL), "plan")
	if err != nil {
		t.Fatal(err)
	}
	if q.agg == nil || q.opts.Sketch == nil || len(q.opts.PseudonymKey) == 0 || q.plan.GetPlan() != q.stmt.SQL || q.plan.GetNoise() == nil {
		t.Fatalf("plan %v", q.plan)
	}
	if recs := f.audit.all(); len(recs) != 0 {
		t.Fatalf("planning wrote %v", recs)
	}
	f.e.ports.Engines = noEngines{}
	_, err = f.through(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, groupSQL), "plan")
	if !errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "no local data is configured") {
		t.Fatalf("err %v", err)
	}
	if recs := f.audit.all(); len(recs) != 1 || recs[0].GetDecision() != yrdv1.Effect_EFFECT_DENY {
		t.Fatalf("audit %v", recs)
	}
}

// The decision record is written before any data is read: when it cannot
// be, the query fails closed with nothing read, spent or sent.
func TestRecordFailsClosed(t *testing.T) {
	f := newFixture(t)
	f.audit.fail = true
	r, err := f.run(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, groupSQL))
	if !errors.Is(err, errkind.Unavailable) || r.header != nil || len(f.budget.spends) != 0 {
		t.Fatalf("err %v, header %v, spends %v", err, r.header, f.budget.spends)
	}
}

func TestMeterSpendsAfterTheRecord(t *testing.T) {
	f := newFixture(t)
	q, err := f.through(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, groupSQL), "meter")
	if err != nil {
		t.Fatal(err)
	}
	if q.seq != 1 || q.noise.GetEpsilon() != q.dec.GetNoiseEpsilon() || q.noise.GetBudgetRemaining() != f.budget.left {
		t.Fatalf("seq %d, noise %v, budget left %v", q.seq, q.noise, f.budget.left)
	}
	if s := f.budget.spends; len(s) != 1 || s[0].DatasetID != elderly || s[0].RequesterOrg != "hz-lab" || s[0].Year != q.year {
		t.Fatalf("spends %v", s)
	}
}

func TestCheckK(t *testing.T) {
	for _, c := range []struct {
		v    any
		k    uint32
		want uint64
		ok   bool
	}{{int64(10), 10, 10, true}, {int32(11), 10, 11, true}, {int64(9), 10, 0, false}, {"10", 10, 0, false}, {nil, 2, 0, false}} {
		n, err := checkK(c.v, c.k)
		if (err == nil) != c.ok || n != c.want || (err != nil && !errors.Is(err, errkind.Internal)) {
			t.Errorf("checkK(%v, %d) = %d, %v", c.v, c.k, n, err)
		}
	}
}

// finish signs a receipt of what was sent, names a rule that held groups
// back, and queues the release record after the decision's.
func TestFinishSignsAndRecordsTheRelease(t *testing.T) {
	f := newFixture(t)
	q, err := f.through(t, request(t, analyst("hangzhou", "hz-lab"), elderlyPurpose, groupSQL), "meter")
	if err != nil {
		t.Fatal(err)
	}
	rows := []*yrdv1.Row{{Values: []*yrdv1.Value{{Kind: &yrdv1.Value_StringValue{StringValue: "d"}}, {Kind: &yrdv1.Value_IntValue{IntValue: 12}}}}}
	d := receipt.NewDigest()
	d.Add(rows[0])
	sup := &yrdv1.Suppression{RuleId: policy.RuleDifference, Groups: 2, Reason: "close to an earlier answer"}
	r := &response{}
	if err := f.e.finish(waitFor(t), q, released{rows: sentRows{n: 1, digest: d.Sum()}, individuals: 12, suppressed: sup}, r.send); err != nil {
		t.Fatal(err)
	}
	rc := r.receipt()
	if err := receipt.Verify(rc); err != nil {
		t.Fatal(err)
	}
	if err := receipt.CheckRows(rc, rows); err != nil {
		t.Fatal(err)
	}
	if rc.GetAuditSeq() != q.seq || rc.GetIndividuals() != 12 || !slices.Contains(rc.GetRuleIds(), policy.RuleDifference) || slices.Contains(q.dec.GetRuleIds(), policy.RuleDifference) {
		t.Fatalf("receipt %v", rc)
	}
	recs := f.audit.all()
	if last := recs[len(recs)-1]; !strings.Contains(last.GetDetail(), "held back 2 groups") || last.GetRows() != 1 {
		t.Fatalf("release record %v", last)
	}
	if got := r.trailer.GetCities()[0].GetSuppressed(); len(got) != 1 || got[0].GetGroups() != 2 {
		t.Fatalf("trailer suppressed %v", got)
	}
}
