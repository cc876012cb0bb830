package connector

import (
	"fmt"
	"math/big"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// PGRows streams a PostgreSQL result like Rows does a DuckDB one: Next,
// then Values, until Next is false; then Err. Close it (or drain it) to
// return the connection.
type PGRows struct {
	p      *Postgres
	conn   *pgx.Conn
	rows   pgx.Rows
	names  []string
	vals   []any
	sketch sketchIndexes
	err    error
	done   bool
}

// ResultRows is what both connectors' results offer.
type ResultRows interface {
	Columns() []string
	Next() bool
	Values() []any
	Err() error
	Close() error
}

var (
	_ ResultRows = (*Rows)(nil)
	_ ResultRows = (*PGRows)(nil)
)

// Columns returns the result's column names.
func (r *PGRows) Columns() []string { return r.names }

// Next advances to the next row.
func (r *PGRows) Next() bool {
	if r.done || r.err != nil {
		return false
	}
	if !r.rows.Next() {
		r.finish()
		return false
	}
	vals, err := r.rows.Values()
	if err != nil {
		r.err = fmt.Errorf("connector: query: %w", err)
		r.finish()
		return false
	}
	for i, v := range vals {
		vals[i] = pgNormalise(v)
	}
	if err := r.sketch.convert(vals); err != nil {
		r.err = err
		r.finish()
		return false
	}
	r.vals = vals
	return true
}

// Values returns the current row as Rows.Values does: nil, bool, int32,
// int64, float64 (also for DECIMAL, and numeric aggregates such as avg),
// string, time.Time. Sums over integers are int64 (*big.Int if they do
// not fit), where DuckDB gives *big.Int. The sketch columns come as
// []int64 and []uint64, as from Rows.Values.
func (r *PGRows) Values() []any { return r.vals }

// Err returns the error that ended iteration, if any.
func (r *PGRows) Err() error { return r.err }

// Close releases the result and its connection.
func (r *PGRows) Close() error {
	r.finish()
	return nil
}

func (r *PGRows) finish() {
	if r.done {
		return
	}
	r.done = true
	r.rows.Close()
	if err := r.rows.Err(); err != nil && r.err == nil {
		r.err = fmt.Errorf("connector: query: %w", err)
	}
	r.p.release(r.conn)
}

// pgNormalise turns pgx values into the plain Go ones Rows gives.
func pgNormalise(v any) any {
	switch x := v.(type) {
	case pgtype.Numeric:
		if !x.Valid {
			return nil
		}
		if x.Exp >= 0 && x.Int != nil && !x.NaN && x.InfinityModifier == pgtype.Finite {
			// Scale 0: an integer, e.g. sum over BIGINT. Keep it exact.
			n := new(big.Int).Mul(x.Int, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Exp)), nil))
			if n.IsInt64() {
				return n.Int64()
			}
			return n
		}
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return nil
		}
		return f.Float64
	case int16:
		return int32(x)
	case float32:
		return float64(x)
	}
	return v
}
