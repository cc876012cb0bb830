package connector

import "fmt"

// Statement is a plan as an engine runs it: its SQL, the values bound to
// its parameters, and how the rows the SQL returns become the result.
// Engines make it (Plan) and run it (Exec); the SQL is what explain shows.
type Statement struct {
	SQL  string
	Args []any
	// cellRows says the SQL returns a total of counts as one row per
	// sketch cell (see compiler.sketch), which Exec folds into the total's
	// one row, leaving it out if it has fewer than minIndividuals
	// individuals. DuckDB's second aggregation level over the cells costs
	// as much as the scan of a small dataset; this fold costs nothing.
	cellRows       bool
	minIndividuals int64
}

// rows is what Exec returns for st over the engine's rows r.
func (st Statement) rows(r ResultRows) (ResultRows, error) {
	if !st.cellRows {
		return r, nil
	}
	f, err := newCellFold(r, st.minIndividuals)
	if err != nil {
		r.Close()
		return nil, err
	}
	return f, nil
}

// cellFold folds a total's per-cell rows (its counts, then skCell,
// skPersons, skXor) into the total's row (its counts, then
// IndividualsColumn and the three sketch lists): what the single-statement
// sketch plan returns for the same query, with the same k floor.
type cellFold struct {
	in    ResultRows
	min   int64
	names []string
	row   []any
	read  bool // the in rows are folded
	err   error
}

func newCellFold(in ResultRows, min int64) (*cellFold, error) {
	cols := in.Columns()
	n := len(cols) - 3
	if n < 1 || cols[n] != skCell || cols[n+1] != skPersons || cols[n+2] != skXor {
		return nil, fmt.Errorf("connector: cell rows with columns %q", cols)
	}
	names := append(cols[:n:n], IndividualsColumn, SketchCellsColumn, SketchCountsColumn, SketchXorsColumn)
	return &cellFold{in: in, min: min, names: names}, nil
}

// Columns returns the total's column names.
func (f *cellFold) Columns() []string { return f.names }

// Next folds every cell row on its first call and reports whether the
// total has at least the minimum of individuals.
func (f *cellFold) Next() bool {
	if f.read || f.err != nil {
		return false
	}
	f.read = true
	row, err := f.fold()
	if err != nil {
		f.err = err
		return false
	}
	if row[len(row)-4].(int64) < f.min {
		return false
	}
	f.row = row
	return true
}

// fold reads the cell rows into the total's row.
func (f *cellFold) fold() ([]any, error) {
	n := len(f.names) - 4
	counts := make([]int64, n)
	var individuals int64
	var cells, persons []int64
	var xors []uint64
	for f.in.Next() {
		v := f.in.Values()
		for i := range counts {
			c, ok := v[i].(int64)
			if !ok {
				return nil, fmt.Errorf("connector: cell row count %T", v[i])
			}
			counts[i] += c
		}
		p, ok := v[n+1].(int64)
		if !ok {
			return nil, fmt.Errorf("connector: cell row individuals %T", v[n+1])
		}
		if p == 0 { // the rows without a person key: no cell
			continue
		}
		cell, ok1 := v[n].(int64)
		x, ok2 := xorBits(v[n+2])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("connector: cell row of types %T, %T", v[n], v[n+2])
		}
		individuals += p
		cells, persons, xors = append(cells, cell), append(persons, p), append(xors, x)
	}
	if err := f.in.Err(); err != nil {
		return nil, err
	}
	row := make([]any, 0, n+4)
	for _, c := range counts {
		row = append(row, c)
	}
	row = append(row, individuals, cells, persons, xors)
	s := sketchIndexes{cells: n + 1, counts: n + 2, xors: n + 3}
	if err := s.sortCells(row); err != nil {
		return nil, err
	}
	return row, nil
}

// xorBits is a cell's XOR as the sketch lists hold it: DuckDB's UBIGINT,
// or PostgreSQL's bigint bit for bit.
func xorBits(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case int64:
		return uint64(x), true
	}
	return 0, false
}

// Values returns the total's row: int64 counts and individuals, then the
// sketch lists as []int64, []int64 and []uint64.
func (f *cellFold) Values() []any { return f.row }

// Err returns the error that ended the fold, if any.
func (f *cellFold) Err() error { return f.err }

// Close releases the engine's rows.
func (f *cellFold) Close() error { return f.in.Close() }
