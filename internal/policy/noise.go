package policy

import (
	"strconv"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Defaults of the per-query epsilon parameters, for params that leave them
// 0. They protect: at epsilon 0.5 a count comes back exact in about a
// quarter of answers and is typically off by 1 to 3; an owner may set up
// to MaxQueryEpsilon (1 by default), never more.
const (
	DefaultMaxQueryEpsilon     = 1.0
	DefaultDefaultQueryEpsilon = 0.5
)

// MaxQueryEpsilon is the most epsilon one query may spend on one dataset
// under p.
func MaxQueryEpsilon(p *yrdv1.PolicyParams) float64 {
	if m := p.GetMaxQueryEpsilon(); m > 0 {
		return m
	}
	return DefaultMaxQueryEpsilon
}

// QueryEpsilon is the epsilon a noisy query on d spends under p: the
// dataset's noise_epsilon, else the policy's default, capped at
// MaxQueryEpsilon.
func QueryEpsilon(p *yrdv1.PolicyParams, d *yrdv1.Dataset) float64 {
	eps := d.GetNoiseEpsilon()
	if !(eps > 0) {
		eps = p.GetDefaultQueryEpsilon()
	}
	if !(eps > 0) {
		eps = DefaultDefaultQueryEpsilon
	}
	return min(eps, MaxQueryEpsilon(p))
}

// Family is the privacy budget a query on d spends from: its standard
// schema (the cities' datasets of one family share one budget), or the
// dataset itself when it belongs to none.
func Family(d *yrdv1.Dataset) string {
	if f := d.GetStandardSchemaId(); f != "" {
		return f
	}
	return d.GetId()
}

// SumBound is the clamp bound of column name's values in a noisy sum or
// avg over d: the column's sum_bound, else the dataset's noise_sum_bound;
// 0 when neither is set.
func SumBound(d *yrdv1.Dataset, name string) float64 {
	for _, c := range d.GetSchema().GetColumns() {
		if c.GetName() == name && c.GetSumBound() > 0 {
			return c.GetSumBound()
		}
	}
	return d.GetNoiseSumBound()
}

// usesSensitive reports whether an aggregate request aggregates, groups or
// filters on a SENSITIVE column.
func (e *decider) usesSensitive() bool {
	a := e.a
	for _, list := range [...][]string{a.GetFilterColumns(), a.GetGroupBy()} {
		for _, n := range list {
			if c := e.col(n); c != nil && personalInfo(c) == piSensitive {
				return true
			}
		}
	}
	for _, ag := range a.GetAggregates() {
		if c := e.col(ag.GetColumn()); c != nil && personalInfo(c) == piSensitive {
			return true
		}
	}
	return false
}

// sensitiveGrant denies an aggregate over sensitive personal information
// without a grant that allows personal data (PIPL art. 29: separate
// consent, here the CDO's).
func (e *decider) sensitiveGrant(g *yrdv1.Grant) bool {
	if !e.usesSensitive() || g.GetAllowPersonal() {
		return false
	}
	e.deny(RuleSensitiveGrant)
	e.say("aggregates that use a sensitive column need a grant that allows personal data")
	if g != nil {
		e.say(", and grant ")
		e.quote(g.GetId())
		e.say(" does not")
	}
	return true
}

// noisy reports whether the aggregates leave with calibrated noise: always
// on IMPORTANT data and over sensitive columns; on data with personal
// information unless the owner chose exact aggregates and none of a
// personal column is aggregated; elsewhere when the owner set an epsilon.
func (e *decider) noisy() bool {
	if e.level == levelImportant || e.usesSensitive() {
		return true
	}
	personal := e.hasPersonal()
	if e.d.GetExactAggregates() && !e.aggregatesPersonal() {
		return false
	}
	return personal || e.d.GetNoiseEpsilon() > 0
}

func (e *decider) hasPersonal() bool {
	for _, c := range e.s.cols {
		if c != nil && personalInfo(c) != piNone {
			return true
		}
	}
	return false
}

func (e *decider) aggregatesPersonal() bool {
	for _, ag := range e.a.GetAggregates() {
		if c := e.col(ag.GetColumn()); c != nil && personalInfo(c) != piNone {
			return true
		}
	}
	return false
}

// noiseGate denies, when the result would be noised, aggregates that
// cannot carry calibrated noise: min and max have no
// bounded effect of one individual here, and a sum or avg needs a
// declared clamp bound.
func (e *decider) noiseGate() bool {
	if !e.noisy() {
		return false
	}
	first, firstBound := true, true
	for _, ag := range e.a.GetAggregates() {
		f := ag.GetFunction()
		agg, ok := querylang.AggregateByKey(f)
		switch {
		case !ok:
			// Not an aggregate; validation names it.
		case agg.Noise == querylang.NoiseNone:
			if first {
				e.deny(RuleNoiseUnsupported)
				e.say("these aggregates cannot carry calibrated noise, as one individual's effect on them is unbounded (use count, count(DISTINCT), sum or avg): ")
			}
			e.sep(&first)
			e.say(f)
			e.say("(")
			e.say(ag.GetColumn())
			e.say(")")
		case agg.NeedsSumBound():
			if SumBound(e.d, ag.GetColumn()) > 0 {
				continue
			}
			if firstBound {
				e.deny(RuleSumBound)
				e.say("a noisy sum or avg needs a declared bound on the column (sum_bound), and these have none: ")
			}
			e.sepQuote(&firstBound, ag.GetColumn())
		}
	}
	return e.denied
}

// noise records whether the allowed aggregates are noised, and how much
// they spend, as the last rule of the decision.
func (e *decider) noise() {
	if !e.noisy() {
		if e.hasPersonal() {
			e.fire(RuleExact)
			e.say("exact aggregates: the owner releases this dataset's aggregates exactly when no personal column is aggregated")
		}
		return
	}
	e.noiseEps, e.family = QueryEpsilon(e.p, e.d), Family(e.d)
	e.fire(RuleNoise)
	e.say("counts, sums and averages carry calibrated noise, epsilon ")
	var buf [24]byte
	e.sayBytes(strconv.AppendFloat(buf[:0], e.noiseEps, 'g', -1, 64))
	e.say(" from the requester's budget for ")
	e.quote(e.family)
}
