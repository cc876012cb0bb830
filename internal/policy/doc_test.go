package policy

import (
	"os"
	"slices"
	"strings"
	"testing"
)

var allRules = []string{
	RuleRequestComplete, RuleParamsValid, RuleRoleAnalyst, RuleDatasetRetired, RuleProcessingUse,
	RulePurposePermitted, RuleLevelCore, RuleIdentifierDirect, RuleNoMinMaxPersonal, RuleGroupColumns,
	RuleCrossBorderGeneralOnly, RuleCrossBorderEligible, RuleCrossBorderTrialSector, RuleCrossBorderNoPersonal,
	RuleCrossBorderThreshold, RuleGeneralHiddenPredicate, RuleGeneralRows, RuleGeneralAggregates,
	RuleGeneralPseudonymise, RuleGeneralGeneralise, RuleGeneralQuasiWithhold, RuleGeneralMask, RuleGeneralPersonalGrant,
	RuleGeneralSensitiveWithhold, RuleImportantGrant, RuleImportantAggregatesOnly, RuleImportantKAnonymity,
	RuleSensitiveGrant, RuleNoiseUnsupported, RuleSumBound, RuleNoise, RuleExact,
}

// The rule table in doc.go lists every rule id, in evaluation order.
func TestDocRuleTable(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var table []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "//"))
		switch {
		case len(f) >= 2 && f[0] == "group" && f[1] == "id":
			in = true
		case in && len(f) >= 2 && strings.HasPrefix(line, "//\t"):
			table = append(table, f[1])
		case in:
			in = false
		}
	}
	if !slices.Equal(table, allRules) {
		t.Errorf("doc.go table lists\n%q\nwant\n%q", table, allRules)
	}
}

// Every rule id has at least one hand-written case that fires it.
func TestEveryRuleHasACase(t *testing.T) {
	fired := map[string]bool{}
	for _, cases := range [][]ruleCase{gateCases(), queryCases(), crossBorderCases(), generalCases(), importantCases()} {
		for _, c := range cases {
			for _, id := range c.ids {
				fired[id] = true
			}
		}
	}
	for _, id := range allRules {
		if !fired[id] {
			t.Errorf("no hand-written case fires %s", id)
		}
	}
}
