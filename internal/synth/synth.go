// Package synth generates the raw rows that catalog datasets describe, so
// that a city node can load them (from CSV or JSON Lines, into DuckDB or
// PostgreSQL) and answer federated queries in tests, demos and benchmarks,
// at any size, without real personal data.
//
// Output is a pure function of (dataset, rows, seed, options): the same
// inputs give byte-identical files on every machine and Go version, since
// the generator uses its own PRNG and fixed dates, never the clock or a
// global random source.
//
// Values follow the column's declared type and, where the column name is
// one the sample catalog uses (age, district, care_level, vehicle_count,
// credit_code, diagnosis …), its meaning, with realistic distributions.
// Unknown columns still get well-typed values, so any valid schema works.
//
// People are shared across a city's datasets. Each city under a seed has a
// population of residents 0, 1, 2, … whose person id, birth date, sex and
// district are a pure function of (city, seed, index): the elderly dataset
// lists the residents aged 60+, a household registry the residents in
// order, and hospital visits draw their patients from the first residents.
// So person_id = patient_id joins and distinct-person counts mean
// something. Person ids start with the city's division code, so no two
// cities share one. Use one seed for all the datasets of a demo.
package synth

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// DefaultNullRate is the share of NULLs in each nullable column unless
// WithNullRate says otherwise: enough that IS NULL and COUNT(col) differ
// from COUNT(*) on any sample, small enough not to distort aggregates.
const DefaultNullRate = 0.02

// options are the knobs of a generation.
type options struct {
	nullRate  float64
	residents int
}

// Option adjusts a generation.
type Option func(*options)

// WithNullRate sets the share of NULLs in nullable columns, from 0 (none)
// to 1. Key columns (direct identifiers, *_id, credit codes, the time of a
// measurement) are never NULL. Which cells are NULL is drawn apart from
// the values, so changing the rate blanks cells but changes no other value.
func WithNullRate(p float64) Option { return func(o *options) { o.nullRate = p } }

// WithResidents sets how many of the city's residents (0 … n-1) event
// datasets such as hospital visits draw their people from; by default as
// many as the dataset has rows. See ElderlyRowsFor.
func WithResidents(n int) Option { return func(o *options) { o.residents = n } }

// Rows streams the generated rows of one dataset. Each row is computed on
// demand from its index, so memory use does not grow with the row count.
// A Rows is not safe for concurrent use.
type Rows struct {
	cols []*yrdv1.Column
	plan []colPlan
	vals []Value
	g    *gen
	n    uint64 // rows in total
	next uint64 // index of the row Next produces
}

// Generate returns the rows of dataset d: rows of them, from seed. It
// fails if the schema is missing or has a column of an unknown type.
func Generate(d *yrdv1.Dataset, rows int, seed uint64, opts ...Option) (*Rows, error) {
	if d == nil {
		return nil, errors.New("synth: nil dataset")
	}
	if rows < 0 {
		return nil, fmt.Errorf("synth: %s: negative row count %d", d.GetId(), rows)
	}
	o := options{nullRate: DefaultNullRate}
	for _, opt := range opts {
		opt(&o)
	}
	if !(o.nullRate >= 0 && o.nullRate <= 1) {
		return nil, fmt.Errorf("synth: null rate %v outside [0, 1]", o.nullRate)
	}
	if o.residents < 0 {
		return nil, fmt.Errorf("synth: negative resident count %d", o.residents)
	}
	cols := d.GetSchema().GetColumns()
	if len(cols) == 0 {
		return nil, fmt.Errorf("synth: %s: schema has no columns", d.GetId())
	}
	g, plan, err := compile(d, uint64(rows), seed, o)
	if err != nil {
		return nil, err
	}
	return &Rows{cols: cols, plan: plan, vals: make([]Value, len(cols)), g: g, n: uint64(rows)}, nil
}

// Columns returns the schema's columns, in the order of the values.
func (r *Rows) Columns() []*yrdv1.Column { return r.cols }

// Len returns the total number of rows.
func (r *Rows) Len() int { return int(r.n) }

// Next advances to the next row and reports whether there is one.
func (r *Rows) Next() bool {
	if r.next >= r.n {
		return false
	}
	r.g.row(r.next, r.plan, r.vals)
	r.next++
	return true
}

// Values returns the current row's values, one per column in schema order.
// The slice and the bytes of its strings are reused by the next call of
// Next.
func (r *Rows) Values() []Value { return r.vals }

// All iterates over the remaining rows as (row index, values), with the
// reuse rules of Values.
func (r *Rows) All() iter.Seq2[int, []Value] {
	return func(yield func(int, []Value) bool) {
		for r.Next() {
			if !yield(int(r.next-1), r.vals) {
				return
			}
		}
	}
}

// flushAt is the buffer size at which writers hand bytes to the io.Writer:
// large enough that the writer's per-call cost vanishes, small enough to
// stay in cache.
const flushAt = 64 << 10

// WriteCSV writes the rows of d as RFC 4180 CSV: a header of the column
// names in schema order, CRLF line ends, fields quoted only when needed.
// NULL is the empty field and an empty string is "", as PostgreSQL's COPY
// and DuckDB's read_csv distinguish them.
func WriteCSV(w io.Writer, d *yrdv1.Dataset, rows int, seed uint64, opts ...Option) error {
	r, err := Generate(d, rows, seed, opts...)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, flushAt+4096)
	for i, c := range r.cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCSVString(buf, []byte(c.GetName()))
	}
	buf = append(buf, '\r', '\n')
	for r.Next() {
		for i := range r.vals {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendCSVField(buf, &r.vals[i])
		}
		buf = append(buf, '\r', '\n')
		if len(buf) >= flushAt {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err = w.Write(buf)
	return err
}

// WriteJSONLines writes the rows of d as JSON Lines: one object per row,
// keys in schema order, numbers and booleans as JSON numbers and booleans,
// dates and timestamps as strings in the CSV text form, NULL as null.
func WriteJSONLines(w io.Writer, d *yrdv1.Dataset, rows int, seed uint64, opts ...Option) error {
	r, err := Generate(d, rows, seed, opts...)
	if err != nil {
		return err
	}
	keys := make([][]byte, len(r.cols))
	for i, c := range r.cols {
		var k []byte
		if i == 0 {
			k = append(k, '{')
		} else {
			k = append(k, ',')
		}
		k = appendJSONString(k, []byte(c.GetName()))
		keys[i] = append(k, ':')
	}
	buf := make([]byte, 0, flushAt+4096)
	for r.Next() {
		for i := range r.vals {
			buf = append(buf, keys[i]...)
			buf = appendJSONValue(buf, &r.vals[i])
		}
		buf = append(buf, '}', '\n')
		if len(buf) >= flushAt {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err = w.Write(buf)
	return err
}

// normType is the declared type in upper case, as catalogspec.Validate
// normalises it; Generate accepts unnormalised schemas too.
func normType(c *yrdv1.Column) string { return strings.ToUpper(c.GetType()) }
