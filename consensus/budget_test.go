package consensus

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/yrd-exchange/yrdnode/internal/policy"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func spendCmd(city, org string, year int32, eps float64, datasetID string) *yrdv1.Command {
	return &yrdv1.Command{Op: &yrdv1.Command_SpendPrivacyBudget{SpendPrivacyBudget: &yrdv1.SpendPrivacyBudgetCommand{
		RequesterCity: city, RequesterOrg: org, Year: year, Epsilon: eps, DatasetId: datasetID}}}
}

// budgetApplier is an applier with the IMPORTANT sample dataset published
// by its owner, nanjing.
func budgetApplier(t *testing.T) (*applier, *yrdv1.Dataset) {
	a := newApplier(t)
	d := hospital()
	want(t, a.apply(d.GetOwnerCity(), publishCmd(d)), ok, "")
	return a, d
}

func (a *applier) spent(city, org string, year int) float64 {
	a.t.Helper()
	f, err := a.c.PrivacySpent(city, org, year, "")
	if err != nil {
		a.t.Fatal(err)
	}
	return f
}

func wantSpend(t *testing.T, res *yrdv1.CommandResult, spent, remaining float64) {
	t.Helper()
	want(t, res, ok, "")
	if res.GetBudgetSpent() != spent || res.GetBudgetRemaining() != remaining {
		t.Fatalf("spent %v, remaining %v; want %v, %v", res.GetBudgetSpent(), res.GetBudgetRemaining(), spent, remaining)
	}
}

func setBudget(t *testing.T, a *applier, expected uint64, budget float64) *yrdv1.CommandResult {
	t.Helper()
	p := policy.DefaultParams()
	p.PrivacyBudget = budget
	op := &yrdv1.Principal{City: "shanghai", Org: "sh-ops", Name: "root", Role: yrdv1.Role_ROLE_OPERATOR}
	return a.apply("shanghai", &yrdv1.Command{Op: &yrdv1.Command_UpdatePolicy{UpdatePolicy: &yrdv1.UpdatePolicyCommand{
		Params: p, ExpectedVersion: expected, By: op}}})
}

func TestPrivacyBudgetSpendsAccumulateUpToTheDefaultBudget(t *testing.T) {
	a, d := budgetApplier(t)
	owner := d.GetOwnerCity()
	// No policy stored: the defaults (version 1) give 10 per organisation and year.
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 3, d.GetId())), 3, 7)
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 4.5, d.GetId())), 7.5, 2.5)
	// Reaching the budget exactly is allowed.
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 2.5, d.GetId())), 10, 0)

	res := a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 0.125, d.GetId()))
	want(t, res, yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "hz-lab")
	for _, s := range []string{"2026", "spent 10 ", "0.125 more", "budget of 10"} {
		if !strings.Contains(res.GetErrorMessage(), s) {
			t.Errorf("message %q does not mention %q", res.GetErrorMessage(), s)
		}
	}
	if res.GetBudgetSpent() != 0 || res.GetBudgetRemaining() != 0 {
		t.Errorf("a refused spend reports %v spent, %v remaining", res.GetBudgetSpent(), res.GetBudgetRemaining())
	}
	if got := a.spent("hangzhou", "hz-lab", 2026); got != 10 {
		t.Fatalf("a refused spend changed the total to %v", got)
	}
}

func TestPrivacyBudgetRefusalChangesNothing(t *testing.T) {
	a, d := budgetApplier(t)
	owner := d.GetOwnerCity()
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 6, d.GetId())), 6, 4)
	// One large spend that would pass the budget is refused whole, and a
	// smaller one that fits still goes through afterwards.
	want(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 4.5, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "hz-lab")
	if got := a.spent("hangzhou", "hz-lab", 2026); got != 6 {
		t.Fatalf("total after a refusal: %v, want 6", got)
	}
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 4, d.GetId())), 10, 0)
}

func TestPrivacyBudgetIsPerOrganisationCityAndYear(t *testing.T) {
	a, d := budgetApplier(t)
	owner := d.GetOwnerCity()
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 10, d.GetId())), 10, 0)
	want(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "hz-lab")
	// Another year, another organisation, and the same org name in another
	// city each have a budget of their own.
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2027, 1, d.GetId())), 1, 9)
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2025, 2, d.GetId())), 2, 8)
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-other", 2026, 1, d.GetId())), 1, 9)
	wantSpend(t, a.apply(owner, spendCmd("suzhou-js", "hz-lab", 2026, 1, d.GetId())), 1, 9)
	for _, c := range []struct {
		city, org string
		year      int
		want      float64
	}{
		{"hangzhou", "hz-lab", 2026, 10}, {"hangzhou", "hz-lab", 2027, 1}, {"hangzhou", "hz-lab", 2025, 2},
		{"hangzhou", "hz-other", 2026, 1}, {"suzhou-js", "hz-lab", 2026, 1}, {"hangzhou", "hz-other", 2027, 0},
	} {
		if got := a.spent(c.city, c.org, c.year); got != c.want {
			t.Errorf("%s/%s %d: %v, want %v", c.city, c.org, c.year, got, c.want)
		}
	}
}

// TestPrivacyBudgetIsPerFamily: a spend that names a dataset family is
// kept per organisation, family and year, apart from the older
// organisation-wide totals and from other families.
func TestPrivacyBudgetIsPerFamily(t *testing.T) {
	a, d := budgetApplier(t)
	owner := d.GetOwnerCity()
	fam := func(eps float64, family string) *yrdv1.Command {
		c := spendCmd("hangzhou", "hz-lab", 2026, eps, d.GetId())
		c.GetSpendPrivacyBudget().Family = family
		return c
	}
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 10, d.GetId())), 10, 0)
	wantSpend(t, a.apply(owner, fam(4, "yrd.health.v1")), 4, 6)
	wantSpend(t, a.apply(owner, fam(6, "yrd.health.v1")), 10, 0)
	res := a.apply(owner, fam(0.5, "yrd.health.v1"))
	want(t, res, yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, `for "yrd.health.v1"`)
	wantSpend(t, a.apply(owner, fam(1, "yrd.other.v1")), 1, 9)
	for family, wantTotal := range map[string]float64{"": 10, "yrd.health.v1": 10, "yrd.other.v1": 1} {
		if got, err := a.c.PrivacySpent("hangzhou", "hz-lab", 2026, family); err != nil || got != wantTotal {
			t.Errorf("family %q: %v, %v; want %v", family, got, err, wantTotal)
		}
	}
	want(t, a.apply(owner, fam(1, strings.Repeat("f", maxBudgetPrincipal+1))), yrdv1.ErrorCode_ERROR_CODE_INVALID, "family:")
}

func TestPrivacyBudgetIsChargedOnlyByTheDatasetOwner(t *testing.T) {
	a, d := budgetApplier(t) // owned by nanjing
	want(t, a.apply("shanghai", spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "owned by nanjing")
	// The requester's own node is not the owner either.
	want(t, a.apply("hangzhou", spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "hangzhou's node")
	// Unlike older commands, a spend without an origin is not trusted.
	want(t, a.apply("", spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_PERMISSION_DENIED, "without an origin")
	if got := a.spent("hangzhou", "hz-lab", 2026); got != 0 {
		t.Fatalf("refused spends charged %v", got)
	}
	wantSpend(t, a.apply("nanjing", spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), 1, 9)
}

func TestPrivacyBudgetUnknownDataset(t *testing.T) {
	a, d := budgetApplier(t)
	want(t, a.apply(d.GetOwnerCity(), spendCmd("hangzhou", "hz-lab", 2026, 1, "nanjing.health.nope")), yrdv1.ErrorCode_ERROR_CODE_NOT_FOUND, `"nanjing.health.nope"`)
	if got := a.spent("hangzhou", "hz-lab", 2026); got != 0 {
		t.Fatalf("charged %v for an unknown dataset", got)
	}
}

func TestPrivacyBudgetInvalidSpends(t *testing.T) {
	a, d := budgetApplier(t)
	id := d.GetId()
	for _, c := range []struct {
		name  string
		cmd   *yrdv1.Command
		field string
	}{
		{"zero epsilon", spendCmd("hangzhou", "hz-lab", 2026, 0, id), "epsilon"},
		{"negative epsilon", spendCmd("hangzhou", "hz-lab", 2026, -1, id), "epsilon"},
		{"NaN epsilon", spendCmd("hangzhou", "hz-lab", 2026, math.NaN(), id), "epsilon"},
		{"infinite epsilon", spendCmd("hangzhou", "hz-lab", 2026, math.Inf(1), id), "epsilon"},
		{"minus infinite epsilon", spendCmd("hangzhou", "hz-lab", 2026, math.Inf(-1), id), "epsilon"},
		{"no city", spendCmd("", "hz-lab", 2026, 1, id), "requester_city"},
		{"no org", spendCmd("hangzhou", "", 2026, 1, id), "requester_org"},
		{"huge org", spendCmd("hangzhou", strings.Repeat("o", 40000), 2026, 1, id), "requester_org"},
		{"no year", spendCmd("hangzhou", "hz-lab", 0, 1, id), "year"},
		{"year 1999", spendCmd("hangzhou", "hz-lab", 1999, 1, id), "year"},
		{"year 2201", spendCmd("hangzhou", "hz-lab", 2201, 1, id), "year"},
		{"no dataset", spendCmd("hangzhou", "hz-lab", 2026, 1, ""), "dataset_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want(t, a.apply(d.GetOwnerCity(), c.cmd), yrdv1.ErrorCode_ERROR_CODE_INVALID, c.field+":")
		})
	}
	if got := a.spent("hangzhou", "hz-lab", 2026); got != 0 {
		t.Fatalf("invalid spends charged %v", got)
	}
	// The year bounds themselves are valid.
	wantSpend(t, a.apply(d.GetOwnerCity(), spendCmd("hangzhou", "hz-lab", 2000, 1, id)), 1, 9)
	wantSpend(t, a.apply(d.GetOwnerCity(), spendCmd("hangzhou", "hz-lab", 2200, 1, id)), 1, 9)
}

// Totals add up in plain float64 and the comparison has no tolerance: the
// result is the same on every replica, and never in the requester's favour.
func TestPrivacyBudgetComparisonHasNoTolerance(t *testing.T) {
	a, d := budgetApplier(t)
	budget, first := 0.3, 0.1 // variables: constant arithmetic would be exact
	want(t, setBudget(t, a, 1, budget), ok, "")
	wantSpend(t, a.apply(d.GetOwnerCity(), spendCmd("hangzhou", "hz-lab", 2026, first, d.GetId())), first, budget-first)
	// 0.1 + 0.2 is 0.30000000000000004 in float64, just over 0.3.
	want(t, a.apply(d.GetOwnerCity(), spendCmd("hangzhou", "hz-lab", 2026, 0.2, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "0.30000000000000004")
}

func TestPolicyUpdateChangesTheBudgetForTheNextSpend(t *testing.T) {
	a, d := budgetApplier(t)
	owner := d.GetOwnerCity()
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 4, d.GetId())), 4, 6)

	// Lowered to 5: the next spend that would pass 5 is refused.
	res := setBudget(t, a, 1, 5)
	want(t, res, ok, "")
	if res.GetPolicy().GetPrivacyBudget() != 5 || res.GetPolicy().GetVersion() != 2 {
		t.Fatalf("policy after the update: %v", res.GetPolicy())
	}
	res = a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 2, d.GetId()))
	want(t, res, yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "budget of 5 (policy version 2)")
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), 5, 0)

	// Lowered below what was already spent: nothing more, and nothing is
	// taken back either.
	want(t, setBudget(t, a, 2, 3), ok, "")
	want(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 0.001, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "budget of 3")
	if got := a.spent("hangzhou", "hz-lab", 2026); got != 5 {
		t.Fatalf("total %v, want 5", got)
	}

	// 0 allows no noisy query at all.
	want(t, setBudget(t, a, 3, 0), ok, "")
	want(t, a.apply(owner, spendCmd("hangzhou", "hz-other", 2026, 1e-9, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "budget of 0")

	// Raised again: the same organisation may go on.
	want(t, setBudget(t, a, 4, 20), ok, "")
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 15, d.GetId())), 20, 0)
}

func TestPolicyUpdateRefusesABadBudget(t *testing.T) {
	a, d := budgetApplier(t)
	for i, b := range []float64{-1, math.NaN(), math.Inf(1)} {
		res := setBudget(t, a, 1, b)
		want(t, res, yrdv1.ErrorCode_ERROR_CODE_INVALID, "params.privacy_budget:")
		if i == 0 && !strings.Contains(res.GetErrorMessage(), "-1") {
			t.Errorf("message %q does not name the value", res.GetErrorMessage())
		}
	}
	// Nothing was stored: the defaults still apply.
	if _, err := a.c.Policy(); err == nil {
		t.Fatal("a refused policy update was stored")
	}
	wantSpend(t, a.apply(d.GetOwnerCity(), spendCmd("hangzhou", "hz-lab", 2026, 10, d.GetId())), 10, 0)
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func TestPrivacyBudgetSurvivesSnapshotAndRestore(t *testing.T) {
	a, d := budgetApplier(t)
	owner := d.GetOwnerCity()
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 7, d.GetId())), 7, 3)
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2027, 0.5, d.GetId())), 0.5, 9.5)
	wantSpend(t, a.apply(owner, spendCmd("wuxi", "wx-stats", 2026, 0.1, d.GetId())), 0.1, 9.9)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	snap, err := newFSM(a.c, nil, log).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	// Spent after the snapshot: not in it.
	wantSpend(t, a.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), 8, 2)

	b := newApplier(t)
	if err := newFSM(b.c, nil, log).Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if b.c.AppliedIndex() != a.index-1 {
		t.Fatalf("restored index %d, want %d", b.c.AppliedIndex(), a.index-1)
	}
	for _, c := range []struct {
		city, org string
		year      int
		want      float64
	}{{"hangzhou", "hz-lab", 2026, 7}, {"hangzhou", "hz-lab", 2027, 0.5}, {"wuxi", "wx-stats", 2026, 0.1}} {
		if got := b.spent(c.city, c.org, c.year); got != c.want {
			t.Errorf("restored %s/%s %d: %v, want %v", c.city, c.org, c.year, got, c.want)
		}
	}
	// The restored replica goes on from the restored totals: replaying the
	// spend made after the snapshot gives the same result as on the source.
	b.index = b.c.AppliedIndex()
	wantSpend(t, b.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 1, d.GetId())), 8, 2)
	want(t, b.apply(owner, spendCmd("hangzhou", "hz-lab", 2026, 2.5, d.GetId())), yrdv1.ErrorCode_ERROR_CODE_EXHAUSTED, "spent 8 ")
}
