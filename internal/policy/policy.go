package policy

import (
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Rule ids, as recorded in Decision.rule_ids. They are stable: audit
// records and other nodes refer to them. doc.go has the table.
const (
	RuleRequestComplete          = "request.complete"
	RuleParamsValid              = "params.valid"
	RuleRoleAnalyst              = "role.analyst"
	RuleDatasetRetired           = "dataset.retired"
	RuleProcessingUse            = "rights.processing-use"
	RulePurposePermitted         = "purpose.permitted"
	RuleLevelCore                = "level.core"
	RuleIdentifierDirect         = "identifier.direct"
	RuleNoMinMaxPersonal         = "aggregate.no-minmax-personal"
	RuleGroupColumns             = "aggregate.group-columns"
	RuleCrossBorderGeneralOnly   = "crossborder.general-only"
	RuleCrossBorderEligible      = "crossborder.eligible"
	RuleCrossBorderTrialSector   = "crossborder.trial-sector"
	RuleCrossBorderNoPersonal    = "crossborder.no-personal"
	RuleCrossBorderThreshold     = "crossborder.threshold"
	RuleGeneralHiddenPredicate   = "general.hidden-predicate"
	RuleGeneralRows              = "general.rows"
	RuleGeneralAggregates        = "general.aggregates"
	RuleGeneralPseudonymise      = "general.personal.pseudonymise"
	RuleGeneralGeneralise        = "general.quasi.generalise"
	RuleGeneralQuasiWithhold     = "general.quasi.withhold"
	RuleGeneralMask              = "general.personal.mask"
	RuleGeneralPersonalGrant     = "general.personal.grant"
	RuleGeneralSensitiveWithhold = "general.sensitive.withhold"
	RuleImportantGrant           = "important.grant"
	RuleImportantAggregatesOnly  = "important.aggregates-only"
	RuleImportantKAnonymity      = "important.k-anonymity"
	RuleSensitiveGrant           = "aggregate.sensitive-grant"
	RuleNoiseUnsupported         = "aggregate.noise-unsupported"
	RuleSumBound                 = "aggregate.sum-bound"
	RuleNoise                    = "aggregate.noise"
	RuleExact                    = "aggregate.exact"
	// RuleDifference is not decided here: the owner fires it when it holds
	// back a group whose individuals differ from an earlier answer's by
	// fewer than k (internal/diffcheck).
	RuleDifference = "aggregate.difference"
)

// Usage is this calendar year's cross-border exports of the dataset's
// owning organisation so far, in distinct individuals. The caller keeps the
// count; the engine only compares it with the limits.
type Usage struct {
	Individuals, SensitiveIndividuals uint64
}

// Request is everything one decision depends on. Decide reads it and never
// modifies it.
type Request struct {
	Requester *yrdv1.Principal
	// The requester's home node is a Lingang trial partner outside the
	// mainland, so any result would leave the mainland.
	RequesterOutsideMainland bool
	Dataset                  *yrdv1.Dataset
	Access                   *yrdv1.AccessRequest
	// Candidate grants in any state; Decide picks one that applies.
	Grants []*yrdv1.Grant
	// The decision time, for grant expiry. Passed in so that decisions are
	// reproducible.
	Now              time.Time
	Params           *yrdv1.PolicyParams
	CrossBorderUsage Usage
}

// DefaultParams are the delta's initial rule parameters (version 1), which
// apply until the first UpdatePolicy. The raft FSM keeps a frozen copy
// (consensus.InitialPolicy) to decide budget spends with, and a consensus
// test fails if the two differ, so version 1's values must never change:
// replicas running different builds would decide the same log differently.
func DefaultParams() *yrdv1.PolicyParams {
	return &yrdv1.PolicyParams{
		Version:                              1,
		DefaultMinGroupSize:                  10,
		RowCap:                               100000,
		CrossBorderIndividualsLimit:          100000,
		CrossBorderSensitiveIndividualsLimit: 10000,
		TrialSectors:                         []string{"connected-vehicles", "fintech", "industrial-internet"},
		// Total epsilon per requesting organisation and calendar year.
		PrivacyBudget: 10,
	}
}

// minK is the smallest group floor params may set: a "group" of one
// individual is that individual's value.
const minK = 2

// Decide evaluates the rules for r and returns the decision. It assumes
// ValidateAccess(r.Dataset, r.Access) passed, but re-checks it (rule
// request.complete) rather than trusting it, so it never allows a request
// it cannot fully resolve.
func Decide(r *Request) *yrdv1.Decision {
	var e decider
	e.init(r)
	e.run()
	return e.finish()
}

// run evaluates the rule groups in order and stops at the first group that
// denies.
func (e *decider) run() {
	if e.requestGroup() || e.requesterGroup() || e.datasetGroup() || e.queryGroup() {
		return
	}
	if e.r.RequesterOutsideMainland && e.crossBorderGroup() {
		return
	}
	switch e.level {
	case yrdv1.ClassificationLevel_LEVEL_GENERAL:
		e.generalGroup()
	case yrdv1.ClassificationLevel_LEVEL_IMPORTANT:
		e.importantGroup()
	}
}

func (e *decider) requestGroup() bool {
	if e.r == nil || e.d == nil || e.a == nil || e.r.Now.IsZero() {
		e.deny(RuleRequestComplete)
		switch {
		case e.r == nil:
			e.say("no request")
		case e.d == nil:
			e.say("no dataset")
		case e.a == nil:
			e.say("no access request")
		default:
			e.say("no decision time: grant expiry cannot be checked")
		}
	} else if errs := validate(e.d, e.a, e.s); len(errs) > 0 {
		e.deny(RuleRequestComplete)
		e.say("the request is malformed: ")
		for i, fe := range errs {
			if i > 0 {
				e.say(", ")
			}
			e.say(fe.Error())
		}
	}
	p := e.p
	if p == nil || p.GetVersion() == 0 || p.GetDefaultMinGroupSize() < minK || p.GetRowCap() == 0 {
		e.deny(RuleParamsValid)
		e.say("policy parameters are missing or incomplete: a version, k of at least 2 and a row cap are required")
	}
	return e.denied
}

func (e *decider) requesterGroup() bool {
	if role := e.r.Requester.GetRole(); role != yrdv1.Role_ROLE_ANALYST {
		e.deny(RuleRoleAnalyst)
		e.say("only analysts may query data, and the requester's role is ")
		e.say(role.String())
	}
	return e.denied
}

func (e *decider) datasetGroup() bool {
	d := e.d
	if d.GetRetired() {
		e.deny(RuleDatasetRetired)
		e.say("dataset ")
		e.quote(d.GetId())
		e.say(" is retired")
	}
	if !d.GetDataRights().GetProcessingUseRight() {
		e.deny(RuleProcessingUse)
		e.say("data rights not confirmed: dataset ")
		e.quote(d.GetId())
		e.say(" has no confirmed processing and use right")
	}
	e.purpose()
	if e.level == yrdv1.ClassificationLevel_LEVEL_CORE {
		e.deny(RuleLevelCore)
		e.say("dataset ")
		e.quote(d.GetId())
		if d.GetLevel() == yrdv1.ClassificationLevel_LEVEL_CORE {
			e.say(" is core data: metadata only, no query")
		} else {
			e.say(" has no known classification level, so it counts as core data: metadata only, no query")
		}
	}
	return e.denied
}

func (e *decider) purpose() {
	// An empty purpose never gets here: request.complete requires one.
	purpose, permitted := e.a.GetPurpose(), e.d.GetPermittedPurposes()
	if len(permitted) == 0 {
		return
	}
	for _, p := range permitted {
		if p == purpose {
			return
		}
	}
	e.deny(RulePurposePermitted)
	e.say("purpose ")
	e.quote(purpose)
	e.say(" is not permitted for dataset ")
	e.quote(e.d.GetId())
	e.say(" (permitted: ")
	for i, p := range permitted {
		if i > 0 {
			e.say(", ")
		}
		e.say(p)
	}
	e.say(")")
}

// generalGroup: GENERAL data leaves as asked, with personal columns
// pseudonymised, masked or (under a grant with allow_personal) raw, and
// sensitive columns withheld from rows.
func (e *decider) generalGroup() {
	var g *yrdv1.Grant
	if !e.r.RequesterOutsideMainland {
		g, _, _ = e.scanGrants(e.a.GetResultForm(), true)
	}
	personalGrant := g.GetAllowPersonal()
	if e.agg {
		if e.sensitiveGrant(g) || e.noiseGate() {
			return
		}
		e.fire(RuleGeneralAggregates)
		e.say("general data: aggregates over groups of at least ")
		e.uint(uint64(e.k()))
		e.say(" individuals")
		e.allowAggregates(g)
		e.noise()
		return
	}
	if e.hiddenPredicate(personalGrant) {
		return
	}
	e.fire(RuleGeneralRows)
	e.say("general data: rows, at most ")
	e.uint(e.p.GetRowCap())
	e.effect, e.rowCap = yrdv1.Effect_EFFECT_ALLOW_ROWS, e.p.GetRowCap()
	var fired [nTreatRules]bool
	shown := e.shown()
	for i := range shown {
		t, rule := e.rowTreatment(shown[i].idx, personalGrant)
		shown[i].treat = t
		fired[rule] = true
	}
	// One rule and one sentence per kind of treatment, in a fixed order.
	for rule := treatPseudonymise; rule <= treatQuasiWithhold; rule++ {
		if !fired[rule] {
			continue
		}
		e.fire(rule.id())
		rule.sayPrefix(e, g)
		first := true
		for _, c := range shown {
			if _, r := e.rowTreatment(c.idx, personalGrant); r == rule {
				e.sepQuote(&first, e.s.cols[c.idx].GetName())
			}
		}
	}
	if g != nil {
		e.grantID = g.GetId()
	}
}

// importantGroup: IMPORTANT data leaves only as aggregates, only under an
// applicable grant.
func (e *decider) importantGroup() {
	g, closest, stage := e.scanGrants(yrdv1.ResultForm_RESULT_FORM_AGGREGATES, false)
	if g == nil {
		e.deny(RuleImportantGrant)
		e.say("important data needs an approved grant: ")
		e.say(whyNot(e.r, closest, stage))
	}
	if !e.agg {
		e.deny(RuleImportantAggregatesOnly)
		e.say("important data leaves only as aggregates, not rows")
	}
	if e.denied || e.sensitiveGrant(g) || e.noiseGate() {
		return
	}
	e.fire(RuleImportantGrant)
	e.say("relies on grant ")
	e.quote(g.GetId())
	e.fire(RuleImportantKAnonymity)
	e.say("important data: aggregates over groups of at least ")
	e.uint(uint64(e.k()))
	e.say(" individuals")
	e.allowAggregates(g)
	e.noise()
}

// k is the group floor for aggregates over the dataset: the policy's
// default, raised (never lowered) by the dataset's own min_group_size.
func (e *decider) k() uint32 {
	return max(e.p.GetDefaultMinGroupSize(), e.d.GetMinGroupSize())
}

// allowAggregates: a result over groups of at least k individuals counts as
// anonymised, so whatever it shows is RAW; cross-border personal columns
// were denied before this point.
func (e *decider) allowAggregates(g *yrdv1.Grant) {
	e.effect, e.minGroup = yrdv1.Effect_EFFECT_ALLOW_AGGREGATES, e.k()
	shown := e.shown()
	for i := range shown {
		shown[i].treat = treatRawT
	}
	if g != nil {
		e.grantID = g.GetId()
	}
}
