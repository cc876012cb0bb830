package consensus

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/policy"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestInitialPolicyIsFrozen pins the values a replayed log is decided with
// until its first UpdatePolicy. If this fails, the change would make
// replicas on different builds decide the same log differently: revert it,
// and change the policy with an UpdatePolicy command instead.
func TestInitialPolicyIsFrozen(t *testing.T) {
	frozen := &yrdv1.PolicyParams{
		Version:                              1,
		DefaultMinGroupSize:                  10,
		RowCap:                               100000,
		CrossBorderIndividualsLimit:          100000,
		CrossBorderSensitiveIndividualsLimit: 10000,
		TrialSectors:                         []string{"connected-vehicles", "fintech", "industrial-internet"},
		PrivacyBudget:                        10,
	}
	if got := InitialPolicy(); !proto.Equal(got, frozen) {
		t.Fatalf("InitialPolicy() =\n%v\nwant the frozen\n%v\n(a raft log replayed by this build would be decided differently)", got, frozen)
	}
	// Each call returns its own copy: a caller that edits it (an operator's
	// proposal starts from it) must not change what the FSM replays with.
	InitialPolicy().PrivacyBudget = 0
	if InitialPolicy().GetPrivacyBudget() != 10 {
		t.Fatal("InitialPolicy shares its result between calls")
	}
}

// The policy engine's defaults are the values the delta starts from: node
// tests and operators read one and get the other.
func TestInitialPolicyIsThePolicyDefaults(t *testing.T) {
	if got, want := policy.DefaultParams(), InitialPolicy(); !proto.Equal(got, want) {
		t.Fatalf("policy.DefaultParams() =\n%v\nbut the FSM starts from\n%v", got, want)
	}
}

// The FSM's frozen budget check accepts and refuses what the node's
// validation does, with the same message.
func TestPrivacyBudgetCheckMatchesPolicy(t *testing.T) {
	for _, b := range []float64{0, 1e-300, 10, 1e300, math.MaxFloat64, -1e-300, -1, math.Inf(1), math.Inf(-1), math.NaN()} {
		got, err := privacyBudgetProblem(b), policy.ValidatePrivacyBudget(b)
		switch {
		case err == nil && got != "":
			t.Errorf("budget %v: the FSM refuses it (%s), the policy accepts it", b, got)
		case err != nil && got != err.Error():
			t.Errorf("budget %v: the FSM says %q, the policy %q", b, got, err.Error())
		}
	}
}
