package cli

import (
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestAuditListFiltersByRuleAndOutcome: a call with a garbage key is on
// the node's record; `audit list --rule auth.bad-key --outcome deny` finds
// it, named by where it came from, and nothing else; an outcome that does
// not match finds nothing; bad filter values are refused naming the flag
// or field.
func TestAuditListFiltersByRuleAndOutcome(t *testing.T) {
	c := startCluster(t)
	garbage := envAs(t, c, 0, "", yrdv1.Role_ROLE_OPERATOR)
	garbage["YRDNODE_KEY"] = "yrdk_garbage_AAAA"
	if r := run(t, garbage, "dataset", "list"); r.code == 0 || !strings.Contains(r.stderr, "unknown or revoked") {
		t.Fatalf("garbage key: %+v", r)
	}
	auditor := envAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR)

	r := run(t, auditor, "audit", "list", "--rule", "auth.bad-key", "--outcome", "deny")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("list --rule --outcome: want a header and one record: %+v", r)
	}
	for _, want := range []string{"authenticate", "from 127.0.0.1", "deny", "auth.bad-key", "ListDatasets"} {
		if !strings.Contains(lines[1], want) {
			t.Fatalf("record %q does not show %q", lines[1], want)
		}
	}
	r = run(t, auditor, "audit", "list", "--rule", "auth.bad-key", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"127.0.0.1"`) || !strings.Contains(r.stdout, `"auth.bad-key"`) {
		t.Fatalf("list -o json: %+v", r)
	}
	// --decision is the same filter.
	if r := run(t, auditor, "audit", "list", "--rule", "auth.bad-key", "--decision", "allow_rows"); r.code != 0 || strings.Contains(r.stdout, "auth.bad-key") {
		t.Fatalf("a refusal listed as allowed: %+v", r)
	}
	if r := run(t, auditor, "audit", "list", "--rule", "auth.bad"); r.code != 0 || strings.Contains(r.stdout, "auth.bad-key") {
		t.Fatalf("a rule prefix matched: %+v", r)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--outcome", "maybe"}, 2, "--outcome"},
		{[]string{"--decision", "unspecified"}, 2, "--decision"},
		{[]string{"--outcome", "deny", "--decision", "allow_rows"}, 2, "disagree"},
		{[]string{"--rule", "Auth Bad Key!"}, 1, "rule_id"},
	} {
		r := run(t, auditor, append([]string{"audit", "list"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("audit list %v: exit %d, want %d naming %q\n%s", tc.args, r.code, tc.code, tc.want, r.stderr)
		}
	}
}
