package owner

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/noise"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// released is what a query sent, for its receipt and trailer.
type released struct {
	rows        sentRows
	individuals uint64
	// Groups held back by the difference check; nil when none were.
	suppressed *yrdv1.Suppression
}

// sentRows counts the rows sent and digests them for the receipt.
type sentRows struct {
	n      uint64
	digest []byte
}

// run runs the plan on the engine and sends the result, checking it on
// the way: every aggregate group against k (whatever the engine did) and
// the difference check, a row result against the row cap, either against
// the size cap. A check that fails stops the result with an error, and
// nothing more is sent.
func (e *Executor) run(ctx context.Context, q *query, send Send) (released, error) {
	if q.agg == nil {
		rows, err := e.streamRows(ctx, q, send)
		return released{rows: rows}, err
	}
	res, err := e.runAggregates(ctx, q)
	if err != nil {
		return released{}, err
	}
	out := released{individuals: res.individuals, suppressed: res.suppressed}
	out.rows, err = e.sendRows(q, res.cols, res.rows, send)
	return out, err
}

// aggregateResult is what an aggregate query releases.
type aggregateResult struct {
	cols        []*yrdv1.ResultColumn
	rows        []*yrdv1.Row
	individuals uint64
	suppressed  *yrdv1.Suppression
}

// group is one group of the parts as the engine computed it.
type group struct {
	row         *yrdv1.Row
	individuals uint64
	sketch      *diffcheck.Sketch // nil when the dataset has no individuals
}

// runAggregates runs the planned parts, checks every group against k on
// the result, holds back what the difference check refuses, noises the
// parts and merges them into the requested columns, order and limit.
func (e *Executor) runAggregates(ctx context.Context, q *query) (*aggregateResult, error) {
	cols, groups, err := readGroups(ctx, q)
	if err != nil {
		return nil, err
	}
	res := &aggregateResult{}
	if q.opts.Sketch != nil {
		if groups, res.suppressed, err = e.differences(q, groups); err != nil {
			return nil, err
		}
	}
	parts := make([]*yrdv1.Row, len(groups))
	for i, g := range groups {
		parts[i] = g.row
		res.individuals += g.individuals
	}
	if err := q.agg.merge.Add(e.cfg.City, cols, parts); err != nil {
		return nil, errkind.Errorf(errkind.Internal, "%v", err)
	}
	if res.cols, res.rows, err = q.agg.merge.Result(); err != nil {
		return nil, errkind.Errorf(errkind.Internal, "%v", err)
	}
	return res, nil
}

// readGroups reads the groups of the parts, each checked against k and
// noised, with its sketch when one was asked for.
func readGroups(ctx context.Context, q *query) ([]*yrdv1.ResultColumn, []group, error) {
	rows, err := q.eng.Exec(ctx, q.stmt)
	if err != nil {
		return nil, nil, queryError(ctx, err)
	}
	defer rows.Close()
	names := rows.Columns()
	sk := q.opts.Sketch
	hidden, err := individualsColumn(names, sk != nil)
	if err != nil {
		return nil, nil, err
	}
	bound := 0.0
	if q.agg.noise != nil {
		bound = 1 // noisy sums are clamped doubles
	}
	cols := resultColumns(q.ds, q.agg.partial, q.dec, names[:hidden], bound)
	var groups []group
	var s noise.Sampler
	for rows.Next() {
		vals := rows.Values()
		k, err := checkK(vals[hidden], q.dec.GetMinGroupSize())
		if err != nil {
			return nil, nil, err
		}
		g := group{individuals: k}
		if sk != nil {
			if g.sketch, err = groupSketch(sk.Cells, vals[hidden+1], vals[hidden+2], vals[hidden+3]); err != nil {
				return nil, nil, errkind.Errorf(errkind.Internal, "group sketch: %v", err)
			}
		}
		if g.row, err = partRow(s, q.agg.noise, cols, vals[:hidden]); err != nil {
			return nil, nil, err
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, queryError(ctx, err)
	}
	return cols, groups, nil
}

// individualsColumn is the index of the planned result's individuals
// column, the first of the hidden columns that follow the parts' own.
func individualsColumn(names []string, sketched bool) (int, error) {
	hidden := len(names) - 1
	if sketched {
		if !connector.HasSketch(names) {
			return 0, errkind.Errorf(errkind.Internal, "planned result lacks the sketch columns")
		}
		hidden -= 3
	}
	if hidden < 0 || names[hidden] != connector.IndividualsColumn {
		return 0, errkind.Errorf(errkind.Internal, "planned result lacks the individuals column")
	}
	return hidden, nil
}

// checkK is the count of individuals behind a group, which must be at
// least k: a smaller group stops the whole result.
func checkK(individuals any, k uint32) (uint64, error) {
	n, ok := resultcodec.EngineInt64(individuals)
	if !ok || n < int64(k) {
		return 0, errkind.Errorf(errkind.Internal, "a result group has %v individuals, under k = %d; nothing is sent", individuals, k)
	}
	return uint64(n), nil
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
		val, err := resultcodec.EngineValue(v, cols[i].GetType())
		if err != nil {
			return nil, errkind.Errorf(errkind.Internal, "column %s: %v", cols[i].GetName(), err)
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
			n, isInt := resultcodec.EngineInt64(v)
			if !isInt {
				return nil, errkind.Errorf(errkind.Internal, "noisy sum of unexpected type %T", v)
			}
			f = float64(n)
		}
		return s.NoisyFloat(f, m.scale)
	}
	n, ok := resultcodec.EngineInt64(v)
	if !ok {
		return nil, errkind.Errorf(errkind.Internal, "noisy count of unexpected type %T", v)
	}
	out, err := s.NoisyInt(n, m.scale)
	return max(out, 0), err // a count is never negative; clamping is post-processing
}

// groupSketch reads one group's sketch from the engine's sketch columns.
func groupSketch(m int, cells, counts, xors any) (*diffcheck.Sketch, error) {
	c, ok1 := cells.([]int64)
	n, ok2 := counts.([]int64)
	x, ok3 := xors.([]uint64)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("sketch columns of types %T, %T, %T", cells, counts, xors)
	}
	return diffcheck.SketchFromCells(m, c, n, x)
}

// differences holds back the groups of a result that the difference check
// refuses, and says how many and why. The check remembers, per requesting
// organisation and dataset, a sketch of the individuals behind every group
// released, and refuses a group whose individuals differ from a
// remembered one's by 1 to k-1 (internal/diffcheck).
func (e *Executor) differences(q *query, groups []group) ([]group, *yrdv1.Suppression, error) {
	if len(groups) == 0 {
		return groups, nil, nil
	}
	p, k := q.req.Principal, q.dec.GetMinGroupSize()
	sketches := make([]*diffcheck.Sketch, len(groups))
	for i, g := range groups {
		sketches[i] = g.sketch
	}
	scope := diffcheck.Scope{City: p.GetCity(), Org: p.GetOrg(), Dataset: q.ds.GetId()}
	out, err := e.ports.Difference.Release(scope, q.eng.SketchScheme(), k, sketches, time.Now())
	if err != nil {
		return nil, nil, errkind.Errorf(errkind.Unavailable, "the difference check failed, so nothing is released: %v", err)
	}
	if out.Whole {
		return nil, &yrdv1.Suppression{RuleId: policy.RuleDifference, Groups: uint64(len(groups)),
			Reason: fmt.Sprintf("together, the groups differ from an earlier answer to %s/%s by fewer than %d individuals", p.GetCity(), p.GetOrg(), k)}, nil
	}
	if out.GroupsSuppressed == 0 {
		return groups, nil, nil
	}
	kept := groups[:0:0]
	for i, g := range groups {
		if !out.Suppressed[i] {
			kept = append(kept, g)
		}
	}
	return kept, &yrdv1.Suppression{RuleId: policy.RuleDifference, Groups: uint64(out.GroupsSuppressed),
		Reason: fmt.Sprintf("their individuals differ from those of an earlier answer to %s/%s by fewer than %d", p.GetCity(), p.GetOrg(), k)}, nil
}

// sendRows sends a computed result: its header, then its rows in batches
// (column batches when asked for and possible), checking the size cap.
func (e *Executor) sendRows(q *query, cols []*yrdv1.ResultColumn, rows []*yrdv1.Row, send Send) (sentRows, error) {
	if size := rowsSize(rows); size > e.cfg.MaxResultBytes {
		return sentRows{}, errkind.Errorf(ErrResultSize, "the result is %d bytes, over the %d-byte size cap; narrow the query", size, e.cfg.MaxResultBytes)
	}
	if err := sendHeader(q, cols, send); err != nil {
		return sentRows{}, err
	}
	batch := batchRows(q.req)
	digest := receipt.NewDigest()
	for i := 0; i < len(rows); i += batch {
		part := rows[i:min(i+batch, len(rows))]
		for _, row := range part {
			digest.Add(row)
		}
		msg := &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: part}}}
		if q.req.Columnar {
			if cb, err := resultcodec.RowsToColumns(cols, part); err == nil {
				msg = &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Columns{Columns: cb}}
			}
		}
		if err := send(msg); err != nil {
			return sentRows{}, err
		}
	}
	return sentRows{n: uint64(len(rows)), digest: digest.Sum()}, nil
}

// rowsSize is the wire size of the rows, for the result size cap.
func rowsSize(rows []*yrdv1.Row) int64 {
	var size int64
	for _, r := range rows {
		size += int64(proto.Size(r))
	}
	return size
}

// streamRows streams a row result from the engine as it is read, checking
// the row cap and the size cap as it goes.
func (e *Executor) streamRows(ctx context.Context, q *query, send Send) (sentRows, error) {
	rows, err := q.eng.Exec(ctx, q.stmt)
	if err != nil {
		return sentRows{}, queryError(ctx, err)
	}
	defer rows.Close()
	names := rows.Columns()
	cols := resultColumns(q.ds, q.req.Query, q.dec, names, 0)
	if len(cols) != len(names) {
		return sentRows{}, errkind.Errorf(errkind.Internal, "result has %d columns, the plan %d", len(names), len(cols))
	}
	if err := sendHeader(q, cols, send); err != nil {
		return sentRows{}, err
	}
	s := newRowStreamer(q.req, cols, e.cfg.MaxResultBytes, send)
	defer s.close()
	rowCap := q.dec.GetRowCap()
	for rows.Next() {
		if err := s.add(rows.Values()); err != nil {
			return sentRows{}, err
		}
		if rowCap > 0 && s.sent > rowCap {
			return sentRows{}, errkind.Errorf(errkind.Internal, "the result passed the row cap of %d; nothing more is sent", rowCap)
		}
	}
	if err := rows.Err(); err != nil {
		return sentRows{}, queryError(ctx, err)
	}
	return s.finish()
}

// sendHeader sends the result's header: its columns and the plan.
func sendHeader(q *query, cols []*yrdv1.ResultColumn, send Send) error {
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: &yrdv1.ResultHeader{
		Columns: cols, DerivedLevel: q.dec.GetDerivedLevel(), Plans: []*yrdv1.CityPlan{q.plan}}}})
}

// batchRows is the rows per batch r asked for, or the default.
func batchRows(r Request) int {
	if r.BatchRows <= 0 {
		return DefaultBatchRows
	}
	return r.BatchRows
}
