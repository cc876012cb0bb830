package node

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/owner"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// minUsageYear is the first year the catalog records budget spending in
// (consensus refuses a spend dated earlier).
const minUsageYear = 2000

// GetUsage reports a year's privacy budget spending, replicated and so the
// same on every node, and this node's own cross-border export counts, each
// with the limit of the current policy. The console shows these; it may
// show nothing the API does not.
func (s *policyService) GetUsage(ctx context.Context, req *yrdv1.GetUsageRequest) (*yrdv1.GetUsageResponse, error) {
	n := s.n
	year, err := usageYear(req.GetYear(), time.Now())
	if err != nil {
		return nil, err
	}
	scope, err := n.usageScope(ctx, req.GetOrg())
	if err != nil {
		return nil, err
	}
	// A spend committed before the call shows, whichever node answers.
	if err := n.readBarrier(ctx, yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); err != nil {
		return nil, err
	}
	params, err := n.currentPolicy()
	if err != nil {
		return nil, err
	}
	resp := &yrdv1.GetUsageResponse{City: n.cfg.City, Year: int32(year), PolicyVersion: params.GetVersion()}
	if resp.Budgets, err = n.budgetUsage(year, scope, params); err != nil {
		return nil, err
	}
	if resp.Exports, err = n.exportUsage(year, scope, params); err != nil {
		return nil, err
	}
	return resp, nil
}

// usageYear resolves the requested year, 0 being the current one in the
// zone budgets count years in. Nothing is recorded before minUsageYear or
// after this year, so a year outside them (and next year, which a clock
// near New Year may ask for) is a mistake, not an empty answer.
func usageYear(y int32, now time.Time) (int, error) {
	cur := owner.Year(now)
	if y == 0 {
		return cur, nil
	}
	if y < minUsageYear || int(y) > cur+1 {
		return 0, errorf(ErrInvalid, "year: %d is not a calendar year from %d to %d", y, minUsageYear, cur+1)
	}
	return int(y), nil
}

// usageScope is what a GetUsage caller may see: any city when city is "",
// any organisation when org is "".
type usageScope struct{ city, org string }

func (sc usageScope) admits(city, org string) bool {
	return (sc.city == "" || sc.city == city) && (sc.org == "" || sc.org == org)
}

// usageScope narrows GetUsage to the caller: an operator or auditor sees
// every organisation (or the one asked for), a CDO or analyst only its own.
// Asking for another organisation is refused on record rather than
// answered empty, so a mistyped org is not read as "nothing spent".
func (n *Node) usageScope(ctx context.Context, org string) (usageScope, error) {
	p := principal(ctx)
	switch p.GetRole() {
	case yrdv1.Role_ROLE_OPERATOR, yrdv1.Role_ROLE_AUDITOR:
		return usageScope{org: org}, nil
	case yrdv1.Role_ROLE_CDO, yrdv1.Role_ROLE_ANALYST:
		if org == "" || org == p.GetOrg() {
			return usageScope{city: p.GetCity(), org: p.GetOrg()}, nil
		}
		n.auditRefused(ctx, RuleUsageOtherOrg, &yrdv1.AuditRecord{Requester: p, Action: yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
			Detail: "usage of organisation " + org + ": not the caller's organisation"})
		return usageScope{}, errorf(ErrPermissionDenied, "org: role %s sees only the usage of its own organisation %s, not of %s (rule %s)",
			auth.RoleName(p.GetRole()), p.GetOrg(), org, RuleUsageOtherOrg)
	}
	// The role table admits no one else; this keeps a later change to it
	// from widening who sees usage.
	return usageScope{}, errorf(ErrPermissionDenied, "role %s may not see usage (rule %s)", auth.RoleName(p.GetRole()), RuleRoleMethod)
}

// budgetUsage is the year's budget spending the scope admits, each record
// with the current policy's budget, which is what the next spend is held to.
func (n *Node) budgetUsage(year int, sc usageScope, params *yrdv1.PolicyParams) ([]*yrdv1.BudgetUsage, error) {
	recs, err := n.catalog.PrivacySpentIn(year)
	if err != nil {
		return nil, err
	}
	budget := params.GetPrivacyBudget()
	var out []*yrdv1.BudgetUsage
	for _, r := range recs {
		if !sc.admits(r.City, r.Org) {
			continue
		}
		out = append(out, &yrdv1.BudgetUsage{City: r.City, Org: r.Org, Year: int32(r.Year), Family: r.Family,
			Spent: r.Spent, Budget: budget, Remaining: max(budget-r.Spent, 0)})
	}
	slices.SortFunc(out, func(a, b *yrdv1.BudgetUsage) int {
		return cmp.Or(cmp.Compare(a.GetCity(), b.GetCity()), cmp.Compare(a.GetOrg(), b.GetOrg()), cmp.Compare(a.GetFamily(), b.GetFamily()))
	})
	return out, nil
}

// exportUsage is the year's counts in this node's export ledger that the
// scope admits. The exporters are organisations of this node's city: the
// owner's node counts what its data sends out.
func (n *Node) exportUsage(year int, sc usageScope, params *yrdv1.PolicyParams) ([]*yrdv1.ExportUsage, error) {
	counts, err := n.data.exports.CountsIn(year)
	if err != nil {
		return nil, err
	}
	var out []*yrdv1.ExportUsage
	for _, c := range counts {
		kind, threshold, ok := exportKind(c.Kind, params)
		if !ok || !sc.admits(n.cfg.City, c.Org) {
			continue
		}
		out = append(out, &yrdv1.ExportUsage{Org: c.Org, Year: int32(year), Kind: kind, Count: c.Count, Threshold: threshold})
	}
	slices.SortFunc(out, func(a, b *yrdv1.ExportUsage) int {
		return cmp.Or(cmp.Compare(a.GetOrg(), b.GetOrg()), cmp.Compare(a.GetKind(), b.GetKind()))
	})
	return out, nil
}

// exportKind is the API's name for a ledger kind and the current policy's
// threshold for it; ok is false for a kind this build does not know.
func exportKind(k ledger.Kind, params *yrdv1.PolicyParams) (yrdv1.ExportKind, uint64, bool) {
	switch k {
	case ledger.Personal:
		return yrdv1.ExportKind_EXPORT_KIND_PERSONAL, params.GetCrossBorderIndividualsLimit(), true
	case ledger.Sensitive:
		return yrdv1.ExportKind_EXPORT_KIND_SENSITIVE, params.GetCrossBorderSensitiveIndividualsLimit(), true
	}
	return 0, 0, false
}
