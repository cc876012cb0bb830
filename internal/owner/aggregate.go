package owner

import (
	"fmt"

	"github.com/yrd-exchange/yrdnode/internal/merge"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The owner answers an aggregate query from its decomposed parts, the way
// a family query is merged (internal/merge): counts and sums, an avg as a
// sum and a count, ORDER BY and LIMIT taken out. That is what lets noise
// go where it belongs: on each count and sum, once, and an avg, an order
// or a top N is then computed from the noisy parts, never from exact
// values that the order of the released rows would otherwise reveal. An
// exact result takes the same path, so both have one set of semantics.

// aggregatePlan is how one aggregate query runs at the owner.
type aggregatePlan struct {
	merge   *merge.Merge
	partial *yrdv1.Query
	// noise per partial select item (key "" for a group column); nil
	// when the result is exact.
	noise []measurement
	// The distinct noisy quantities, for --explain.
	measured []*yrdv1.NoiseMeasurement
}

// measurement is one noisy quantity a partial column carries. Items that
// measure the same quantity (count(*) asked twice, the sum behind an avg
// and a sum) get the same draw: two independent draws of one quantity
// would average the noise away.
type measurement struct {
	key   string // count(*), count(x), count_distinct(x), sum(x)
	sum   bool
	scale float64
}

// planAggregates decomposes q and, when dec noises the result, shares
// dec's epsilon among the distinct quantities it measures (sequential
// composition; the groups of one GROUP BY are disjoint and share nothing).
func planAggregates(ds *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision) (*aggregatePlan, error) {
	mp, err := merge.PlanDataset(q)
	if err != nil {
		return nil, err
	}
	ap := &aggregatePlan{merge: mp, partial: mp.Partial(ds.GetId())}
	eps := dec.GetNoiseEpsilon()
	if eps <= 0 {
		return ap, nil
	}
	items := ap.partial.GetSelect()
	ap.noise = make([]measurement, len(items))
	keys := map[string]bool{}
	for i, it := range items {
		if a := it.GetAggregate(); a != nil {
			arg := a.GetColumn()
			if arg == "" {
				arg = "*"
			}
			ap.noise[i] = measurement{key: aggregateName(a.GetFunction()) + "(" + arg + ")",
				sum: noiseOf(a) == querylang.NoiseBoundedSum}
			keys[ap.noise[i].key] = true
		}
	}
	share := noise.Split(eps, len(keys))
	seen := map[string]bool{}
	for i, m := range ap.noise {
		if m.key == "" {
			continue
		}
		nm := &yrdv1.NoiseMeasurement{Aggregate: m.key, Epsilon: share}
		switch a := items[i].GetAggregate(); noiseOf(a) {
		case querylang.NoiseCount:
			ap.noise[i].scale = noise.CountScale(share)
		case querylang.NoiseBoundedSum:
			nm.SumBound = policy.SumBound(ds, a.GetColumn())
			ap.noise[i].scale = noise.SumScale(share, nm.SumBound)
		default:
			// The policy refuses these under noise (aggregate.noise-unsupported).
			return nil, fmt.Errorf("%s cannot carry calibrated noise", m.key)
		}
		if !(ap.noise[i].scale > 0) {
			return nil, fmt.Errorf("%s has no usable noise scale (sum bound %v)", m.key, nm.SumBound)
		}
		if !seen[m.key] {
			seen[m.key] = true
			nm.ExpectedError, nm.StdDev = noise.ExpectedAbs(ap.noise[i].scale), noise.StdDev(ap.noise[i].scale)
			ap.measured = append(ap.measured, nm)
		}
	}
	return ap, nil
}

// sumBounds clamps every summed column of a noisy plan to its declared
// bound, which is what the noise's scale assumes.
func (ap *aggregatePlan) sumBounds(ds *yrdv1.Dataset) map[string]float64 {
	if ap.noise == nil {
		return nil
	}
	out := map[string]float64{}
	for _, it := range ap.partial.GetSelect() {
		if a := it.GetAggregate(); a != nil && noiseOf(a) == querylang.NoiseBoundedSum {
			out[a.GetColumn()] = policy.SumBound(ds, a.GetColumn())
		}
	}
	return out
}

// noiseOf is how calibrated noise applies to a partial aggregate; a
// partial query never holds an average (NoiseParts), which the merge
// planner decomposed into a sum and a count.
func noiseOf(a *yrdv1.AggregateCall) querylang.Noise {
	agg, _ := querylang.AggregateOf(a.GetFunction())
	return agg.Noise
}
