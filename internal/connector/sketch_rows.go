package connector

import (
	"cmp"
	"fmt"
	"slices"
)

// sketchIndexes are the positions of the sketch list columns in names,
// -1 where absent.
type sketchIndexes struct{ cells, counts, xors int }

func findSketch(names []string) sketchIndexes {
	s := sketchIndexes{-1, -1, -1}
	for i, n := range names {
		switch n {
		case SketchCellsColumn:
			s.cells = i
		case SketchCountsColumn:
			s.counts = i
		case SketchXorsColumn:
			s.xors = i
		}
	}
	return s
}

// convert replaces the driver's lists ([]any of boxed integers, or NULL)
// in vals by []int64 and []uint64.
func (s sketchIndexes) convert(vals []any) error {
	for _, i := range []int{s.cells, s.counts} {
		if i < 0 {
			continue
		}
		l, _ := vals[i].([]any)
		out := make([]int64, len(l))
		for j, v := range l {
			switch x := v.(type) {
			case int64:
				out[j] = x
			case int32:
				out[j] = int64(x)
			default:
				return fmt.Errorf("connector: sketch list element %T", v)
			}
		}
		if vals[i] != nil && l == nil {
			return fmt.Errorf("connector: sketch list %T", vals[i])
		}
		vals[i] = out
	}
	if i := s.xors; i >= 0 {
		l, _ := vals[i].([]any)
		out := make([]uint64, len(l))
		for j, v := range l {
			switch x := v.(type) {
			case uint64:
				out[j] = x
			case int64:
				out[j] = uint64(x) // two's complement: the same 64 bits
			default:
				return fmt.Errorf("connector: sketch xor element %T", v)
			}
		}
		if vals[i] != nil && l == nil {
			return fmt.Errorf("connector: sketch list %T", vals[i])
		}
		vals[i] = out
	}
	return s.sortCells(vals)
}

// sortCells puts the three lists in ascending cell order: the plan does
// not order them, which an ordered list aggregate would cost several
// times a tiny query's scan.
func (s sketchIndexes) sortCells(vals []any) error {
	if s.cells < 0 || s.counts < 0 || s.xors < 0 {
		return nil
	}
	cells, counts, xors := vals[s.cells].([]int64), vals[s.counts].([]int64), vals[s.xors].([]uint64)
	if len(counts) != len(cells) || len(xors) != len(cells) {
		return fmt.Errorf("connector: sketch lists of %d, %d and %d cells", len(cells), len(counts), len(xors))
	}
	if slices.IsSorted(cells) {
		return nil
	}
	order := make([]int, len(cells))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(cells[a], cells[b]) })
	c2, n2, x2 := make([]int64, len(cells)), make([]int64, len(cells)), make([]uint64, len(cells))
	for i, j := range order {
		c2[i], n2[i], x2[i] = cells[j], counts[j], xors[j]
	}
	vals[s.cells], vals[s.counts], vals[s.xors] = c2, n2, x2
	return nil
}
