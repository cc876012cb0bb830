package owner

import (
	"context"
	"errors"
	"fmt"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// record puts the permitted decision on the audit record, durably, before
// any data is read: if it cannot be written the query is refused.
func (e *Executor) record(ctx context.Context, q *query) error {
	rec, err := e.ports.Audit.Append(ctx, q.rec)
	if err != nil {
		return err
	}
	q.seq = rec.GetSeq()
	return nil
}

// meter spends what the result will cost before the engine computes it:
// a cross-border result's individuals go into the export ledger (refused,
// and recorded as refused, past the yearly thresholds), and a noisy
// result's epsilon is charged to the requester's budget through raft
// (refused, and recorded, when the budget is exhausted).
func (e *Executor) meter(ctx context.Context, q *query) error {
	if q.dec.GetCrossBorder() {
		if err := e.recordExport(ctx, q); err != nil {
			return err
		}
	}
	eps := q.dec.GetNoiseEpsilon()
	if eps <= 0 {
		return nil
	}
	remaining, err := e.spendBudget(ctx, q)
	if err != nil {
		if errors.Is(err, errkind.Exhausted) {
			q.rec.RuleIds = append(q.rec.RuleIds, RuleBudgetExhausted)
		}
		return e.deny(ctx, q, err.Error(), errKind(err))
	}
	q.noise = &yrdv1.NoiseApplied{Mechanism: noise.Mechanism, Epsilon: eps, BudgetRemaining: remaining, BudgetFamily: q.dec.GetBudgetFamily()}
	return nil
}

// spendBudget charges the decision's epsilon to the requesting
// organisation's budget for the dataset's family.
func (e *Executor) spendBudget(ctx context.Context, q *query) (float64, error) {
	p := q.req.Principal
	return e.ports.Budget.Spend(ctx, Spend{RequesterCity: p.GetCity(), RequesterOrg: p.GetOrg(), Year: q.year,
		Epsilon: q.dec.GetNoiseEpsilon(), DatasetID: q.ds.GetId(), Family: q.dec.GetBudgetFamily()})
}

// recordExport counts the individuals a cross-border result would carry
// into the exporting organisation's yearly ledger, refusing the flow (and
// recording nothing) if that would pass the threshold.
func (e *Executor) recordExport(ctx context.Context, q *query) error {
	ds := q.ds
	if !connector.HasPersonalInfo(ds) {
		// No individual's data is in the flow (e.g. enterprises only):
		// nothing to count against the thresholds.
		return nil
	}
	persons, err := exportedPersons(ctx, q)
	if err != nil {
		return err
	}
	kinds := []ledger.Kind{ledger.Personal}
	limits := []uint64{q.params.GetCrossBorderIndividualsLimit()}
	names := []string{"non-sensitive"}
	if hasSensitive(ds) {
		kinds, limits, names = append(kinds, ledger.Sensitive), append(limits, q.params.GetCrossBorderSensitiveIndividualsLimit()), append(names, "sensitive")
	}
	refuse := func(i int, total, added uint64) error {
		why := fmt.Sprintf("cross-border flow refused (rule %s): %s has sent %d individuals out of the mainland in %d and this result would add %d, past the %s limit of %d",
			policy.RuleCrossBorderThreshold, ds.GetOwnerOrg(), total, q.year, added, names[i], limits[i])
		q.rec.RuleIds = append(q.rec.RuleIds, policy.RuleCrossBorderThreshold)
		return e.deny(ctx, q, why, errkind.PermissionDenied)
	}
	// Every limit is checked before any count is recorded, so a refusal
	// records nothing.
	for i, k := range kinds {
		total, added, err := e.ports.Exports.Preview(ds.GetOwnerOrg(), q.year, k, persons)
		if err != nil {
			return err
		}
		if total+added > limits[i] {
			return refuse(i, total, added)
		}
	}
	for i, k := range kinds {
		if total, added, err := e.ports.Exports.Record(ds.GetOwnerOrg(), q.year, k, persons, limits[i]); errors.Is(err, ledger.ErrLimit) {
			return refuse(i, total, added) // a concurrent flow got there first
		} else if err != nil {
			return err
		}
	}
	return nil
}

// exportedPersons runs the query's person-key form: the individuals whose
// data the result would carry.
func exportedPersons(ctx context.Context, q *query) ([]string, error) {
	stmt, err := q.eng.Plan(q.ds.GetId(), q.req.Query, q.pdec, connector.Options{PersonKeys: true})
	if err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "cross-border flow of %s: individuals cannot be counted: %v", q.ds.GetId(), err)
	}
	rows, err := q.eng.Exec(ctx, stmt)
	if err != nil {
		return nil, queryError(ctx, err)
	}
	var persons []string
	for rows.Next() {
		if s, ok := rows.Values()[0].(string); ok {
			persons = append(persons, s)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, queryError(ctx, err)
	}
	return persons, nil
}

func hasSensitive(ds *yrdv1.Dataset) bool {
	for _, c := range ds.GetSchema().GetColumns() {
		if c.GetPersonalInfo() == yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE {
			return true
		}
	}
	return false
}
