package owner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/querylang"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// validate checks that the query is on a dataset of this node's city and
// reads it in a way the dataset allows. Nothing is on record yet: a query
// refused here never reached a decision.
func (e *Executor) validate(r Request) (*query, error) {
	id := r.Query.GetDatasetId()
	ds, ok := e.ports.Catalog.Dataset(id)
	if !ok {
		return nil, errkind.Errorf(errkind.NotFound, "dataset %q not found", id)
	}
	if ds.GetOwnerCity() != e.cfg.City {
		return nil, errkind.Errorf(errkind.Invalid, "dataset %q is owned by %s; this node serves %s", id, ds.GetOwnerCity(), e.cfg.City)
	}
	access := accessFor(r.Query, r.Purpose)
	if err := policy.ValidateAccess(ds, access); err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "query on %s: %v", id, err)
	}
	return &query{req: r, ds: ds, access: access, fp: receipt.Fingerprint(r.Query)}, nil
}

// decide asks the policy, with the grants, the parameters in force and,
// for a requester outside the mainland, this year's exports. It fills in
// the decision's audit record; a denial is recorded at once and returned
// as PermissionDenied.
func (e *Executor) decide(ctx context.Context, q *query) error {
	var err error
	if q.params, err = e.ports.Policy.Params(); err != nil {
		return err
	}
	p := q.req.Principal
	grants, err := e.ports.Catalog.Grants(q.ds.GetId(), p.GetOrg())
	if err != nil {
		return err
	}
	now := time.Now()
	q.year = Year(now)
	usage, err := e.crossBorderUsage(q)
	if err != nil {
		return err
	}
	dec := policy.Decide(&policy.Request{Requester: p, RequesterOutsideMainland: q.req.Outside, Dataset: q.ds,
		Access: q.access, Grants: grants, Now: now, Params: q.params, CrossBorderUsage: usage})
	q.dec = dec
	q.rec = &yrdv1.AuditRecord{Requester: p, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, DatasetId: q.ds.GetId(),
		GrantId: dec.GetGrantId(), Decision: dec.GetEffect(), RuleIds: dec.GetRuleIds(), PolicyVersion: dec.GetPolicyVersion(),
		QueryFingerprint: q.fp, CrossBorder: dec.GetCrossBorder(), Detail: dec.GetReason()}
	if q.req.Explain {
		q.rec.Detail = "explain: " + q.rec.Detail
	}
	if dec.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_ROWS && dec.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES {
		return e.deny(ctx, q, fmt.Sprintf("%s (rules %s; policy version %d)", dec.GetReason(), strings.Join(dec.GetRuleIds(), ", "),
			dec.GetPolicyVersion()), errkind.PermissionDenied)
	}
	return nil
}

// crossBorderUsage is how many individuals the dataset's organisation has
// sent out of the mainland this year, which the policy weighs for a
// requester outside it; zero for any other requester.
func (e *Executor) crossBorderUsage(q *query) (policy.Usage, error) {
	var usage policy.Usage
	if !q.req.Outside {
		return usage, nil
	}
	var err error
	org := q.ds.GetOwnerOrg()
	if usage.Individuals, err = e.ports.Exports.Count(org, q.year, ledger.Personal); err != nil {
		return usage, err
	}
	if usage.SensitiveIndividuals, err = e.ports.Exports.Count(org, q.year, ledger.Sensitive); err != nil {
		return usage, err
	}
	return usage, nil
}

// accessFor describes what q reads, in the form the policy decides on.
func accessFor(q *yrdv1.Query, purpose string) *yrdv1.AccessRequest {
	a := &yrdv1.AccessRequest{DatasetId: q.GetDatasetId(), Purpose: purpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS,
		GroupBy: q.GetGroupBy()}
	seen := map[string]bool{}
	for _, it := range q.GetSelect() {
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			if !seen[x.Column] {
				seen[x.Column] = true
				a.Columns = append(a.Columns, x.Column)
			}
		case *yrdv1.SelectItem_Aggregate:
			a.ResultForm = yrdv1.ResultForm_RESULT_FORM_AGGREGATES
			a.Aggregates = append(a.Aggregates, &yrdv1.Aggregate{Function: aggregateName(x.Aggregate.GetFunction()), Column: x.Aggregate.GetColumn()})
		}
	}
	if len(q.GetGroupBy()) > 0 {
		a.ResultForm = yrdv1.ResultForm_RESULT_FORM_AGGREGATES
	}
	filters := map[string]bool{}
	querylang.ConditionColumns(q.GetWhere(), func(c string) {
		if !filters[c] {
			filters[c] = true
			a.FilterColumns = append(a.FilterColumns, c)
		}
	})
	for _, o := range q.GetOrderBy() {
		switch k := o.GetKey().(type) {
		case *yrdv1.OrderItem_Column:
			a.OrderBy = append(a.OrderBy, k.Column)
		case *yrdv1.OrderItem_SelectIndex:
			// Ordering by an aggregate reads the aggregate, already listed;
			// ordering by a selected column orders by that column.
			if i := int(k.SelectIndex); i >= 0 && i < len(q.GetSelect()) {
				if c := q.GetSelect()[i].GetColumn(); c != "" {
					a.OrderBy = append(a.OrderBy, c)
				}
			}
		}
	}
	return a
}

// aggregateName is the canonical name of f, which an access request
// carries and the audit log fingerprints (querylang's Key).
func aggregateName(f yrdv1.AggregateFunction) string {
	if a, ok := querylang.AggregateOf(f); ok {
		return a.Key
	}
	return strings.ToLower(f.String())
}
