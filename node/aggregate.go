package node

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/merge"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	"github.com/yrd-exchange/yrdnode/internal/policy"
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
				sum: a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM}
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
		switch a := items[i].GetAggregate(); a.GetFunction() {
		case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
			ap.noise[i].scale = noise.CountScale(share)
		case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
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
		if a := it.GetAggregate(); a.GetFunction() == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM {
			out[a.GetColumn()] = policy.SumBound(ds, a.GetColumn())
		}
	}
	return out
}

// aggregateResult is what an aggregate query releases.
type aggregateResult struct {
	cols        []*yrdv1.ResultColumn
	rows        []*yrdv1.Row
	individuals uint64
	// Groups held back by the difference check; nil when none were.
	suppressed *yrdv1.Suppression
}

// group is one group of the parts as the engine computed it.
type group struct {
	row         *yrdv1.Row
	individuals uint64
	sketch      *diffcheck.Sketch // nil when the dataset has no individuals
}

// runAggregates runs the planned parts, checks every group against k on
// the result (whatever the engine did), holds back what the difference
// check refuses, noises the parts and merges them into the requested
// columns, order and limit.
func (n *Node) runAggregates(ctx context.Context, r execRequest, eng connector.Engine, ds *yrdv1.Dataset, ap *aggregatePlan,
	dec *yrdv1.Decision, sk *connector.SketchOptions, stmt connector.Statement) (*aggregateResult, error) {
	cols, groups, err := n.readGroups(ctx, eng, ds, ap, dec, sk, stmt)
	if err != nil {
		return nil, err
	}
	res := &aggregateResult{}
	if sk != nil {
		if groups, res.suppressed, err = n.differences(r.p, ds, eng.SketchScheme(), dec.GetMinGroupSize(), groups); err != nil {
			return nil, err
		}
	}
	parts := make([]*yrdv1.Row, len(groups))
	for i, g := range groups {
		parts[i] = g.row
		res.individuals += g.individuals
	}
	if err := ap.merge.Add(n.cfg.City, cols, parts); err != nil {
		return nil, errorf(ErrInternal, "%v", err)
	}
	if res.cols, res.rows, err = ap.merge.Result(); err != nil {
		return nil, errorf(ErrInternal, "%v", err)
	}
	return res, nil
}

// readGroups reads the groups of the parts, each checked against k and
// noised, with its sketch when one was asked for.
func (n *Node) readGroups(ctx context.Context, eng connector.Engine, ds *yrdv1.Dataset, ap *aggregatePlan, dec *yrdv1.Decision,
	sk *connector.SketchOptions, stmt connector.Statement) ([]*yrdv1.ResultColumn, []group, error) {
	rows, err := eng.Exec(ctx, stmt)
	if err != nil {
		return nil, nil, queryError(ctx, err)
	}
	defer rows.Close()
	names := rows.Columns()
	hidden := len(names) - 1
	if sk != nil {
		if !connector.HasSketch(names) {
			return nil, nil, errorf(ErrInternal, "planned result lacks the sketch columns")
		}
		hidden -= 3
	}
	if hidden < 0 || names[hidden] != connector.IndividualsColumn {
		return nil, nil, errorf(ErrInternal, "planned result lacks the individuals column")
	}
	bound := 0.0
	if ap.noise != nil {
		bound = 1 // noisy sums are clamped doubles
	}
	cols := resultColumns(ds, ap.partial, dec, names[:hidden], bound)
	var groups []group
	var s noise.Sampler
	for rows.Next() {
		vals := rows.Values()
		k, ok := int64Of(vals[hidden])
		if !ok || k < int64(dec.GetMinGroupSize()) {
			return nil, nil, errorf(ErrInternal, "a result group has %v individuals, under k = %d; nothing is sent", vals[hidden], dec.GetMinGroupSize())
		}
		g := group{individuals: uint64(k)}
		if sk != nil {
			if g.sketch, err = groupSketch(sk.Cells, vals[hidden+1], vals[hidden+2], vals[hidden+3]); err != nil {
				return nil, nil, errorf(ErrInternal, "group sketch: %v", err)
			}
		}
		if g.row, err = partRow(s, ap.noise, cols, vals[:hidden]); err != nil {
			return nil, nil, err
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, queryError(ctx, err)
	}
	return cols, groups, nil
}

// partRow converts one group of the parts into a row, with one noise draw
// per distinct quantity.
func partRow(s noise.Sampler, ms []measurement, cols []*yrdv1.ResultColumn, vals []any) (*yrdv1.Row, error) {
	row := &yrdv1.Row{Values: make([]*yrdv1.Value, len(vals))}
	var drawn map[string]any
	for i, v := range vals {
		if ms != nil && ms[i].key != "" && v != nil {
			if d, ok := drawn[ms[i].key]; ok {
				v = d
			} else {
				nv, err := ms[i].apply(s, v)
				if err != nil {
					return nil, err
				}
				if drawn == nil {
					drawn = map[string]any{}
				}
				drawn[ms[i].key], v = nv, nv
			}
		}
		val, err := toValue(v, cols[i].GetType())
		if err != nil {
			return nil, errorf(ErrInternal, "column %s: %v", cols[i].GetName(), err)
		}
		row.Values[i] = val
	}
	return row, nil
}

// apply perturbs one exact value of the measurement.
func (m measurement) apply(s noise.Sampler, v any) (any, error) {
	if m.sum {
		f, ok := v.(float64)
		if !ok {
			n, isInt := int64Of(v)
			if !isInt {
				return nil, errorf(ErrInternal, "noisy sum of unexpected type %T", v)
			}
			f = float64(n)
		}
		return s.NoisyFloat(f, m.scale)
	}
	n, ok := int64Of(v)
	if !ok {
		return nil, errorf(ErrInternal, "noisy count of unexpected type %T", v)
	}
	out, err := s.NoisyInt(n, m.scale)
	return max(out, 0), err // a count is never negative; clamping is post-processing
}

// size is the wire size of the rows, for the result size cap.
func rowsSize(rows []*yrdv1.Row) int64 {
	var size int64
	for _, r := range rows {
		size += int64(proto.Size(r))
	}
	return size
}
