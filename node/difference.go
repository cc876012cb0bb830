package node

import (
	"fmt"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The difference check: the owner remembers, per requesting organisation
// and dataset, a sketch of the individuals behind every aggregate group it
// released, and holds back a group whose individuals differ from a
// remembered one's by 1 to k-1 (internal/diffcheck). The engine computes
// the sketches in the same scan as the groups (connector.SketchOptions).

// pruneInterval is how often expired fingerprints are deleted.
const pruneInterval = 24 * time.Hour

// sketchOptions asks the engine for sketches of the groups of an aggregate
// over ds, or returns nil where there are no individuals to protect.
func (n *Node) sketchOptions(ds *yrdv1.Dataset, dec *yrdv1.Decision) (*connector.SketchOptions, error) {
	if !connector.HasPersonalInfo(ds) {
		return nil, nil
	}
	seed, err := n.secret("yrd.sketch", ds.GetId())
	if err != nil {
		return nil, err
	}
	return &connector.SketchOptions{Cells: diffcheck.CellsFor(dec.GetMinGroupSize()), Seed: seed}, nil
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
// refuses, and says how many and why.
func (n *Node) differences(p *yrdv1.Principal, ds *yrdv1.Dataset, scheme string, k uint32, groups []group) ([]group, *yrdv1.Suppression, error) {
	if len(groups) == 0 {
		return groups, nil, nil
	}
	sketches := make([]*diffcheck.Sketch, len(groups))
	for i, g := range groups {
		sketches[i] = g.sketch
	}
	scope := diffcheck.Scope{City: p.GetCity(), Org: p.GetOrg(), Dataset: ds.GetId()}
	out, err := n.data.differ.Release(scope, scheme, k, sketches, time.Now())
	if err != nil {
		return nil, nil, errorf(ErrUnavailable, "the difference check failed, so nothing is released: %v", err)
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

// pruneLoop deletes expired fingerprints once a day.
func (n *Node) pruneLoop() {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		if removed, err := n.data.differ.Prune(time.Now()); err != nil {
			n.log.Warn("pruning expired difference-check fingerprints failed", "err", err)
		} else if removed > 0 {
			n.log.Info("pruned expired difference-check fingerprints", "removed", removed)
		}
		select {
		case <-n.base.Done():
			return
		case <-t.C:
		}
	}
}
