package policy

import (
	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	piNone      = yrdv1.PersonalInfo_PERSONAL_INFO_NONE
	piPersonal  = yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL
	piSensitive = yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE

	idNone   = yrdv1.IdentifierRole_IDENTIFIER_NONE
	idDirect = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
	idQuasi  = yrdv1.IdentifierRole_IDENTIFIER_QUASI

	levelGeneral   = yrdv1.ClassificationLevel_LEVEL_GENERAL
	levelImportant = yrdv1.ClassificationLevel_LEVEL_IMPORTANT
	levelCore      = yrdv1.ClassificationLevel_LEVEL_CORE

	treatRawT         = yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW
	treatMaskedT      = yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED
	treatPseudoT      = yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED
	treatWithheldT    = yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD
	treatGeneralisedT = yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED
)

// personalInfo is the column's tag as the rules read it: unspecified or
// unknown counts as SENSITIVE, and an identifier tagged NONE as PERSONAL.
func personalInfo(c *yrdv1.Column) yrdv1.PersonalInfo {
	switch pi := c.GetPersonalInfo(); pi {
	case piNone:
		if r := identifierRole(c); r == idDirect || r == idQuasi {
			return piPersonal
		}
		return piNone
	case piPersonal, piSensitive:
		return pi
	}
	return piSensitive
}

// identifierRole is the column's role as the rules read it: unspecified is
// NONE (catalogspec normalises it so), an unknown value counts as DIRECT.
func identifierRole(c *yrdv1.Column) yrdv1.IdentifierRole {
	switch r := c.GetIdentifierRole(); r {
	case yrdv1.IdentifierRole_IDENTIFIER_ROLE_UNSPECIFIED, idNone:
		return idNone
	case idDirect, idQuasi:
		return r
	}
	return idDirect
}

// effectiveLevel is the dataset's level; unspecified or unknown counts as
// CORE.
func effectiveLevel(d *yrdv1.Dataset) yrdv1.ClassificationLevel {
	switch l := d.GetLevel(); l {
	case levelGeneral, levelImportant, levelCore:
		return l
	}
	return levelCore
}

func levelWord(l yrdv1.ClassificationLevel) string {
	switch l {
	case levelGeneral:
		return "general"
	case levelImportant:
		return "important"
	}
	return "core"
}

func (e *decider) col(name string) *yrdv1.Column {
	if i := e.s.find(name); i >= 0 {
		return e.s.cols[i]
	}
	return nil
}

// queryGroup checks the shape of the request, whatever the level.
func (e *decider) queryGroup() bool {
	a := e.a
	var seen colSet
	first := true
	for _, list := range [...][]string{a.GetFilterColumns(), a.GetGroupBy(), a.GetOrderBy()} {
		for _, name := range list {
			i := e.s.find(name)
			if i < 0 || identifierRole(e.s.cols[i]) != idDirect || !seen.add(i) {
				continue
			}
			if first {
				e.deny(RuleIdentifierDirect)
				e.say("no filter, group or order on a direct identifier: ")
			}
			e.sepQuote(&first, name)
		}
	}
	first = true
	for _, ag := range a.GetAggregates() {
		f := ag.GetFunction()
		if agg, ok := querylang.AggregateByKey(f); !ok || !agg.RevealsValue {
			continue
		}
		if c := e.col(ag.GetColumn()); c == nil || personalInfo(c) == piNone {
			continue
		}
		if first {
			e.deny(RuleNoMinMaxPersonal)
			e.say("min or max over personal information reveals one person's value: ")
		}
		e.sep(&first)
		e.say(f)
		e.say("(")
		e.say(ag.GetColumn())
		e.say(")")
	}
	if e.agg {
		first = true
		ok := groupedOrAggregated(a, &e.s)
		for _, name := range a.GetColumns() {
			if i := e.s.find(name); i < 0 || ok.has(i) {
				continue
			}
			if first {
				e.deny(RuleGroupColumns)
				e.say("an aggregate result shows only grouped or aggregated columns, and these are neither: ")
			}
			e.sepQuote(&first, name)
		}
	}
	return e.denied
}

// groupedOrAggregated is the set of columns an aggregate result may show.
func groupedOrAggregated(a *yrdv1.AccessRequest, s *schema) colSet {
	var set colSet
	for _, g := range a.GetGroupBy() {
		if i := s.find(g); i >= 0 {
			set.add(i)
		}
	}
	for _, ag := range a.GetAggregates() {
		if i := s.find(ag.GetColumn()); i >= 0 {
			set.add(i)
		}
	}
	return set
}

// crossBorderGroup: under the Lingang trial only GENERAL, eligible data of
// a trial sector leaves the mainland, without personal information and
// only while the owner is under this year's limits.
func (e *decider) crossBorderGroup() bool {
	d, p := e.d, e.p
	if e.level != levelGeneral {
		e.deny(RuleCrossBorderGeneralOnly)
		e.say("only general data may leave the mainland, and dataset ")
		e.quote(d.GetId())
		e.say(" is ")
		e.say(levelWord(e.level))
		e.say(" data")
	}
	if !d.GetCrossBorderEligible() {
		e.deny(RuleCrossBorderEligible)
		e.say("dataset ")
		e.quote(d.GetId())
		e.say(" is not eligible for cross-border transfer")
	}
	if !contains(p.GetTrialSectors(), d.GetSector()) {
		e.deny(RuleCrossBorderTrialSector)
		e.say("sector ")
		e.quote(d.GetSector())
		e.say(" is not in the Lingang cross-border trial (")
		if len(p.GetTrialSectors()) == 0 {
			e.say("no trial sectors")
		}
		for i, s := range p.GetTrialSectors() {
			if i > 0 {
				e.say(", ")
			}
			e.say(s)
		}
		e.say(")")
	}
	e.namedPersonal()
	e.threshold()
	if e.denied {
		return true
	}
	// An empty projection names no column, so personal columns are dropped
	// rather than the whole request denied.
	first := true
	shown := e.shown()
	for i, c := range shown {
		if personalInfo(e.s.cols[c.idx]) == piNone {
			continue
		}
		if first {
			e.fire(RuleCrossBorderNoPersonal)
			e.say("personal information stays in the mainland, withheld: ")
		}
		e.sepQuote(&first, e.s.cols[c.idx].GetName())
		shown[i].treat = treatWithheldT
	}
	return false
}

// namedPersonal denies a cross-border request that names a personal column
// anywhere: shown, filtered, grouped, ordered or aggregated.
func (e *decider) namedPersonal() {
	a := e.a
	var seen colSet
	first := true
	check := func(name string) {
		i := e.s.find(name)
		if i < 0 || personalInfo(e.s.cols[i]) == piNone || !seen.add(i) {
			return
		}
		if first {
			e.deny(RuleCrossBorderNoPersonal)
			e.say("personal information may not leave the mainland, and the request uses ")
		}
		e.sepQuote(&first, name)
	}
	for _, list := range [...][]string{a.GetColumns(), a.GetFilterColumns(), a.GetGroupBy(), a.GetOrderBy()} {
		for _, n := range list {
			check(n)
		}
	}
	for _, ag := range a.GetAggregates() {
		check(ag.GetColumn())
	}
}

// threshold denies once the owning organisation's cross-border exports this
// year reached a limit; past it the export needs a security assessment,
// which is outside the trial.
func (e *decider) threshold() {
	u, p := e.r.CrossBorderUsage, e.p
	over := u.Individuals >= p.GetCrossBorderIndividualsLimit()
	overSensitive := e.hasSensitive() && u.SensitiveIndividuals >= p.GetCrossBorderSensitiveIndividualsLimit()
	if !over && !overSensitive {
		return
	}
	e.deny(RuleCrossBorderThreshold)
	e.say("cross-border exports of ")
	e.say(e.d.GetOwnerOrg())
	e.say(" reached ")
	if over {
		e.limitClause(u.Individuals, p.GetCrossBorderIndividualsLimit(), " individuals this year", "non-sensitive")
	}
	if over && overSensitive {
		e.say(", and ")
	}
	if overSensitive {
		e.limitClause(u.SensitiveIndividuals, p.GetCrossBorderSensitiveIndividualsLimit(),
			" individuals with sensitive personal information this year", "sensitive")
	}
}

func (e *decider) limitClause(n, limit uint64, what, kind string) {
	e.uint(n)
	e.say(what)
	if n == limit {
		e.say(", the limit for ")
	} else {
		e.say(", over the limit of ")
		e.uint(limit)
		e.say(" for ")
	}
	e.say(kind)
	e.say(" personal information")
}

func (e *decider) hasSensitive() bool {
	for _, c := range e.s.cols {
		if c != nil && personalInfo(c) == piSensitive {
			return true
		}
	}
	return false
}

// hiddenPredicate denies a row result that filters or orders on a column
// it does not show raw: the rows returned would reveal the hidden values.
func (e *decider) hiddenPredicate(personalGrant bool) bool {
	a := e.a
	var seen colSet
	first := true
	for _, list := range [...][]string{a.GetFilterColumns(), a.GetOrderBy()} {
		for _, name := range list {
			i := e.s.find(name)
			if i < 0 {
				continue
			}
			t, _ := e.rowTreatment(int32(i), personalGrant)
			if t == treatRawT || !seen.add(i) {
				continue
			}
			if first {
				e.deny(RuleGeneralHiddenPredicate)
				e.say("a row result may not filter or order on a column it does not show raw: ")
			}
			e.sepQuote(&first, name)
			e.say(" (")
			e.say(treatmentWord(t))
			e.say(")")
		}
	}
	return e.denied
}

func treatmentWord(t yrdv1.ColumnTreatment) string {
	switch t {
	case treatMaskedT:
		return "masked"
	case treatPseudoT:
		return "pseudonymised"
	case treatGeneralisedT:
		return "generalised"
	case treatRawT:
		return "raw"
	}
	return "withheld"
}

// treatRule is the rule behind a column's treatment in a row result.
type treatRule int

const (
	treatRaw treatRule = iota
	treatPseudonymise
	treatGeneralise
	treatMask
	treatGrant
	treatWithhold
	treatQuasiWithhold
	treatCrossBorder // already recorded by the cross-border group
	nTreatRules
)

func (t treatRule) id() string {
	switch t {
	case treatPseudonymise:
		return RuleGeneralPseudonymise
	case treatGeneralise:
		return RuleGeneralGeneralise
	case treatQuasiWithhold:
		return RuleGeneralQuasiWithhold
	case treatMask:
		return RuleGeneralMask
	case treatGrant:
		return RuleGeneralPersonalGrant
	case treatWithhold:
		return RuleGeneralSensitiveWithhold
	}
	return ""
}

func (t treatRule) sayPrefix(e *decider, g *yrdv1.Grant) {
	switch t {
	case treatPseudonymise:
		e.say("direct identifiers pseudonymised, keyed per dataset and grant: ")
	case treatGeneralise:
		e.say("quasi-identifiers generalised: ")
	case treatQuasiWithhold:
		e.say("quasi-identifiers without a generalisation withheld: ")
	case treatMask:
		e.say("personal columns masked: ")
	case treatGrant:
		e.say("personal columns raw under grant ")
		e.quote(g.GetId())
		e.say(": ")
	case treatWithhold:
		e.say("sensitive columns withheld: ")
	}
}

// rowTreatment is how column ci appears in a GENERAL row result.
func (e *decider) rowTreatment(ci int32, personalGrant bool) (yrdv1.ColumnTreatment, treatRule) {
	c := e.s.cols[ci]
	pi := personalInfo(c)
	switch {
	case pi == piNone:
		return treatRawT, treatRaw
	case e.r.RequesterOutsideMainland:
		return treatWithheldT, treatCrossBorder
	case pi == piSensitive:
		return treatWithheldT, treatWithhold
	case personalGrant:
		return treatRawT, treatGrant
	case identifierRole(c) == idDirect:
		return treatPseudoT, treatPseudonymise
	case identifierRole(c) == idQuasi && c.GetGeneralise() != nil:
		return treatGeneralisedT, treatGeneralise
	case identifierRole(c) == idQuasi:
		// A keyed token per value would still be counted and decoded by
		// its frequencies (gender has two values), so no token: withheld.
		return treatWithheldT, treatQuasiWithhold
	}
	return treatMaskedT, treatMask
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
