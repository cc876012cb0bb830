package consensus

import (
	"math"
	"strconv"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The FSM decides budget spends against the policy in force, and before the
// first UpdatePolicy that is the initial policy below. A log written by one
// build is replayed by newer builds (a restart, a new member catching up):
// if the initial values or the budget check changed, a replica on the new
// build would decide the same commands differently from one on the old
// build, and their catalogs would diverge. So both are frozen here, in the
// package that replays them, rather than read from internal/policy, which
// may change for reasons of its own. TestInitialPolicyIsFrozen fails if
// they change.

// DefaultPolicyVersion is the version of the initial policy, in force
// until the first UpdatePolicy.
const DefaultPolicyVersion = 1

// InitialPolicy returns the delta's policy parameters before the first
// UpdatePolicy (version 1). Never change these values: see above.
func InitialPolicy() *yrdv1.PolicyParams {
	return &yrdv1.PolicyParams{
		Version:                              DefaultPolicyVersion,
		DefaultMinGroupSize:                  10,
		RowCap:                               100000,
		CrossBorderIndividualsLimit:          100000,
		CrossBorderSensitiveIndividualsLimit: 10000,
		TrialSectors:                         []string{"connected-vehicles", "fintech", "industrial-internet"},
		// Total epsilon per requesting organisation and calendar year.
		PrivacyBudget: 10,
	}
}

// privacyBudgetProblem is what is wrong with a proposed privacy budget, or
// "" if nothing is: it must be a finite number ≥ 0. It is the FSM's frozen
// copy of policy.ValidatePrivacyBudget, with the same message; a consensus
// test checks that the two agree.
func privacyBudgetProblem(b float64) string {
	if b >= 0 && !math.IsInf(b, 1) { // NaN fails b >= 0
		return ""
	}
	return "privacy_budget: " + strconv.FormatFloat(b, 'g', -1, 64) +
		" is not a finite number ≥ 0 (the total epsilon per organisation and year; 0 allows no noisy query)"
}
