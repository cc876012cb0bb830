package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestPolicyUsage: after a family query spends budget at each of the three
// owners, `policy usage -o json` parses as the API's response with the
// analyst's spending against the policy's budget, `policy usage` prints
// it in the budgets table (and "none" for exports: no flow left the
// mainland), and another organisation or a bad year is refused.
func TestPolicyUsage(t *testing.T) {
	c := startDataCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Noise back on with the default budget, so the numbers read as they would.
	if err := c.UpdatePolicy(ctx, 0, func(p *yrdv1.PolicyParams) {
		p.MaxQueryEpsilon, p.DefaultQueryEpsilon, p.PrivacyBudget = 1, 0.5, 10
	}); err != nil {
		t.Fatal(err)
	}
	env := envAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)
	if r := run(t, env, "query", "--purpose", "elderly-care-planning", familyAgg); r.code != 0 {
		t.Fatalf("query: %+v", r)
	}

	r := run(t, env, "policy", "usage", "-o", "json")
	var resp yrdv1.GetUsageResponse
	if r.code != 0 || protojson.Unmarshal([]byte(r.stdout), &resp) != nil {
		t.Fatalf("policy usage -o json: %+v", r)
	}
	b := resp.GetBudgets()
	if resp.GetCity() != "shanghai" || len(b) != 1 || b[0].GetOrg() != "shanghai-analytics" || b[0].GetFamily() != "yrd.elderly-population.v1" ||
		b[0].GetSpent() != 1.5 || b[0].GetBudget() != 10 || b[0].GetRemaining() != 8.5 || len(resp.GetExports()) != 0 {
		t.Fatalf("policy usage -o json: %s", r.stdout)
	}

	r = run(t, env, "policy", "usage", "--year", "0")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := [][]string{{"privacy", "budget"}, {"ORG", "FAMILY", "SPENT", "BUDGET", "REMAINING"},
		{"shanghai/shanghai-analytics", "yrd.elderly-population.v1", "1.5", "10", "8.5"}, nil, {"cross-border", "exports"}, {"none"}}
	if r.code != 0 || len(lines) != len(want) {
		t.Fatalf("policy usage: %+v", r)
	}
	for i, w := range want {
		if f := strings.Fields(lines[i]); len(f) < len(w) || strings.Join(f[:len(w)], " ") != strings.Join(w, " ") {
			t.Fatalf("policy usage line %d is %q, want it to start %q:\n%s", i+1, lines[i], w, r.stdout)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--org", "hangzhou-analytics"}, "permission denied: org: role analyst sees only the usage of its own organisation shanghai-analytics"},
		{[]string{"--year", "1999"}, "invalid argument: year: 1999"},
		{[]string{"--year", "-1"}, "--year: -1 is not a calendar year"},
	} {
		if r := run(t, env, append([]string{"policy", "usage"}, c.args...)...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Fatalf("policy usage %v: %+v, want %q", c.args, r, c.want)
		}
	}
}

// TestPrintUsageTables: both tables, with the kinds in words and the
// organisation-wide total of older spends shown as family "-".
func TestPrintUsageTables(t *testing.T) {
	var out bytes.Buffer
	printUsage(&out, &yrdv1.GetUsageResponse{City: "shanghai", Year: 2026, PolicyVersion: 3,
		Budgets: []*yrdv1.BudgetUsage{{City: "hangzhou", Org: "hz-lab", Year: 2026, Spent: 0.1 + 0.2, Budget: 10, Remaining: 10 - (0.1 + 0.2)}},
		Exports: []*yrdv1.ExportUsage{
			{Org: "lingang-ica", Year: 2026, Kind: yrdv1.ExportKind_EXPORT_KIND_PERSONAL, Count: 1200, Threshold: 100000},
			{Org: "lingang-ica", Year: 2026, Kind: yrdv1.ExportKind_EXPORT_KIND_SENSITIVE, Count: 7, Threshold: 10000},
		}})
	want := `privacy budget spent in 2026 (policy v3):
ORG              FAMILY  SPENT  BUDGET  REMAINING
hangzhou/hz-lab  -       0.3    10      9.7

cross-border exports in 2026, as shanghai's node counts them:
ORG          KIND       COUNT  THRESHOLD
lingang-ica  personal   1200   100000
lingang-ica  sensitive  7      10000
`
	if out.String() != want {
		t.Fatalf("printUsage:\n%s\nwant:\n%s", out.String(), want)
	}
}
