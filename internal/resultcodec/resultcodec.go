// Package resultcodec converts query results between their two wire forms:
// rows of Value messages (yrdv1.RowBatch) and packed columns
// (yrdv1.ColumnBatch), and holds the one definition of how a DATE or
// TIMESTAMP travels in a column batch, which the receipt digest relies on
// to hash a column batch to exactly the bytes of its rows.
//
// The two forms carry the same rows: ColumnsToRows(RowsToColumns(rows)) is
// rows, value for value and kind for kind, and a column batch's Value kinds
// follow from its columns' oneof members (see ColumnData in
// proto/yrd/v1/query_api.proto):
//
//	ints        int_value        doubles     double_value
//	strings     string_value     bools       bool_value
//	dates       date_value       (days since 1970-01-01 ↔ "YYYY-MM-DD")
//	timestamps  timestamp_value  (µs since the epoch ↔ RFC 3339 UTC text,
//	                              time.RFC3339Nano)
package resultcodec

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Kind is how a column's values travel in a ColumnBatch: which member of
// ColumnData's values oneof is set.
type Kind uint8

// The kinds; Invalid is a column with no values member set, a result type
// that has no column form, or (KindOfValue) a NULL. Their order is the
// order in which values of different kinds sort (internal/merge relies on
// it, and names them in it).
const (
	Invalid Kind = iota
	Strings
	Ints
	Doubles
	Bools
	Dates
	Timestamps
)

func (k Kind) String() string {
	switch k {
	case Ints:
		return "ints"
	case Doubles:
		return "doubles"
	case Strings:
		return "strings"
	case Bools:
		return "bools"
	case Dates:
		return "dates"
	case Timestamps:
		return "timestamps"
	}
	return "invalid"
}

// KindOfType is the column kind of a result column type (ResultColumn.type:
// BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE or TIMESTAMP), or Invalid.
func KindOfType(typ string) Kind {
	switch strings.ToUpper(typ) {
	case "BIGINT":
		return Ints
	case "DOUBLE":
		return Doubles
	case "VARCHAR":
		return Strings
	case "BOOLEAN":
		return Bools
	case "DATE":
		return Dates
	case "TIMESTAMP":
		return Timestamps
	}
	return Invalid
}

// KindOf is the kind of c: which values member is set.
func KindOf(c *yrdv1.ColumnData) Kind {
	switch c.GetValues().(type) {
	case *yrdv1.ColumnData_Ints:
		return Ints
	case *yrdv1.ColumnData_Doubles:
		return Doubles
	case *yrdv1.ColumnData_Strings:
		return Strings
	case *yrdv1.ColumnData_Bools:
		return Bools
	case *yrdv1.ColumnData_Dates:
		return Dates
	case *yrdv1.ColumnData_Timestamps:
		return Timestamps
	}
	return Invalid
}

// ValueCount is the number of values c carries (its non-NULL rows).
func ValueCount(c *yrdv1.ColumnData) int {
	switch x := c.GetValues().(type) {
	case *yrdv1.ColumnData_Ints:
		return len(x.Ints.GetValues())
	case *yrdv1.ColumnData_Doubles:
		return len(x.Doubles.GetValues())
	case *yrdv1.ColumnData_Strings:
		return len(x.Strings.GetValues())
	case *yrdv1.ColumnData_Bools:
		return len(x.Bools.GetValues())
	case *yrdv1.ColumnData_Dates:
		return len(x.Dates.GetValues())
	case *yrdv1.ColumnData_Timestamps:
		return len(x.Timestamps.GetValues())
	}
	return 0
}

// IsNull reports whether row i is NULL in the bitmap nulls.
func IsNull(nulls []byte, i int) bool {
	return len(nulls) > 0 && nulls[i>>3]&(1<<(i&7)) != 0
}

// NullBytes is the length of a non-empty NULL bitmap for rows rows.
func NullBytes(rows int) int { return (rows + 7) / 8 }

// MaxRows is the most rows one batch may carry.
const MaxRows = 65536

// ErrMalformed is wrapped by Validate's errors (and so by ColumnsToRows'
// and the receipt digest's for a malformed batch).
var ErrMalformed = errors.New("malformed column batch")

// Validate checks that b is well formed: every column has a values member,
// a NULL bitmap that is empty or exactly NullBytes(rows) long with no bit
// set past the last row, and exactly one value per non-NULL row. It does
// not know the result's columns; Check does.
func Validate(b *yrdv1.ColumnBatch) error {
	rows := int(b.GetRows())
	// Bounds what a receiver allocates for a batch: an all-NULL column
	// costs the sender one bit per row, the receiver a row each.
	if b.GetRows() > MaxRows {
		return fmt.Errorf("%w: %d rows in one batch, more than %d", ErrMalformed, b.GetRows(), MaxRows)
	}
	if rows > 0 && len(b.GetColumns()) == 0 {
		return fmt.Errorf("%w: %d rows and no columns", ErrMalformed, rows)
	}
	for j, c := range b.GetColumns() {
		if KindOf(c) == Invalid {
			return fmt.Errorf("%w: column %d has no values", ErrMalformed, j)
		}
		nulls := c.GetNulls()
		nonNull := rows
		if len(nulls) > 0 {
			if len(nulls) != NullBytes(rows) {
				return fmt.Errorf("%w: column %d: NULL bitmap of %d bytes for %d rows", ErrMalformed, j, len(nulls), rows)
			}
			if tail := rows & 7; tail != 0 && nulls[len(nulls)-1]>>tail != 0 {
				return fmt.Errorf("%w: column %d: NULL bitmap marks rows past the last", ErrMalformed, j)
			}
			for _, x := range nulls {
				nonNull -= bits.OnesCount8(x)
			}
		}
		if n := ValueCount(c); n != nonNull {
			return fmt.Errorf("%w: column %d: %d values for %d non-NULL rows", ErrMalformed, j, n, nonNull)
		}
	}
	return nil
}

// Check is Validate, and also that b has one column per result column and
// each column the kind of its result type.
func Check(b *yrdv1.ColumnBatch, cols []*yrdv1.ResultColumn) error {
	if err := Validate(b); err != nil {
		return err
	}
	if len(b.GetColumns()) != len(cols) {
		return fmt.Errorf("%w: %d columns for a result of %d", ErrMalformed, len(b.GetColumns()), len(cols))
	}
	for j, c := range b.GetColumns() {
		if want, got := KindOfType(cols[j].GetType()), KindOf(c); want != got {
			return fmt.Errorf("%w: column %s of type %s carries %v", ErrMalformed, cols[j].GetName(), cols[j].GetType(), got)
		}
	}
	return nil
}

const secondsPerDay = 86400

// DateDays is the day number (days since 1970-01-01) of t's date in UTC, as
// a DATE value travels in a column batch; false if it does not fit.
func DateDays(t time.Time) (int32, bool) {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d--
	}
	return int32(d), d >= math.MinInt32 && d <= math.MaxInt32
}

// AppendDate appends the row form of a DATE (YYYY-MM-DD) of day number
// days: t.UTC().Format(time.DateOnly) for any t with DateDays(t) == days.
func AppendDate(b []byte, days int32) []byte {
	return time.Unix(int64(days)*secondsPerDay, 0).UTC().AppendFormat(b, time.DateOnly)
}

// TimestampMicros is t in microseconds since the epoch, as a TIMESTAMP
// travels in a column batch; false if t has a finer part than a
// microsecond or is out of range.
func TimestampMicros(t time.Time) (int64, bool) {
	us := t.UnixMicro()
	return us, time.UnixMicro(us).Equal(t)
}

// AppendTimestamp appends the row form of a TIMESTAMP (RFC 3339 in UTC,
// time.RFC3339Nano) of us microseconds since the epoch:
// t.UTC().Format(time.RFC3339Nano) for any t with TimestampMicros(t) == us.
func AppendTimestamp(b []byte, us int64) []byte {
	return time.UnixMicro(us).UTC().AppendFormat(b, time.RFC3339Nano)
}

// parseDate is the day number of a row-form DATE, if s is exactly what
// AppendDate makes of it.
func parseDate(s string) (int32, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, false
	}
	d, ok := DateDays(t)
	var buf [32]byte
	return d, ok && string(AppendDate(buf[:0], d)) == s
}

// parseTimestamp is the microseconds of a row-form TIMESTAMP, if s is
// exactly what AppendTimestamp makes of it.
func parseTimestamp(s string) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	us, ok := TimestampMicros(t)
	var buf [64]byte
	return us, ok && string(AppendTimestamp(buf[:0], us)) == s
}

// ColumnsToRows returns b's rows in row form. The rows share a few slab
// allocations: the Rows, their Values and the pointers to them, and per
// column one slice of oneof wrappers.
func ColumnsToRows(b *yrdv1.ColumnBatch) ([]*yrdv1.Row, error) {
	if err := Validate(b); err != nil {
		return nil, err
	}
	g := newRowGrid(int(b.GetRows()), len(b.GetColumns()))
	for j, c := range b.GetColumns() {
		g.fill(j, c)
	}
	return g.out, nil
}

// rowGrid is the rows ColumnsToRows builds, filled one column at a time:
// the Value of row i, column j is vals[i*n+j], which row i's Values[j]
// points at; a NULL keeps its Value's Kind nil.
type rowGrid struct {
	rows, n int
	out     []*yrdv1.Row
	vals    []yrdv1.Value
	ptrs    []*yrdv1.Value
	buf     []byte // scratch for formatting a DATE or TIMESTAMP
}

// newRowGrid makes rows empty rows of n values each.
func newRowGrid(rows, n int) *rowGrid {
	g := &rowGrid{
		rows: rows, n: n,
		out:  make([]*yrdv1.Row, rows),
		vals: make([]yrdv1.Value, rows*n),
		ptrs: make([]*yrdv1.Value, rows*n),
	}
	slab := make([]yrdv1.Row, rows)
	for i := range g.out {
		slab[i].Values = g.ptrs[i*n : (i+1)*n : (i+1)*n]
		g.out[i] = &slab[i]
	}
	return g
}

// fill sets column j of every row from the column c.
func (g *rowGrid) fill(j int, c *yrdv1.ColumnData) {
	nulls := c.GetNulls()
	switch x := c.GetValues().(type) {
	case *yrdv1.ColumnData_Ints:
		g.ints(j, nulls, x.Ints.GetValues())
	case *yrdv1.ColumnData_Doubles:
		g.doubles(j, nulls, x.Doubles.GetValues())
	case *yrdv1.ColumnData_Strings:
		g.strings(j, nulls, x.Strings.GetValues())
	case *yrdv1.ColumnData_Bools:
		g.bools(j, nulls, x.Bools.GetValues())
	case *yrdv1.ColumnData_Dates:
		g.dates(j, nulls, x.Dates.GetValues())
	case *yrdv1.ColumnData_Timestamps:
		g.timestamps(j, nulls, x.Timestamps.GetValues())
	}
}

// cell is the Value of row i, column j, which it points row i at.
func (g *rowGrid) cell(i, j int) *yrdv1.Value {
	v := &g.vals[i*g.n+j]
	g.ptrs[i*g.n+j] = v
	return v
}

// The per-kind fills below differ only in their wrapper type and, for
// DATE and TIMESTAMP, in formatting the value; each is the hot loop of its
// kind, so they are written out rather than shared through a func value.

func (g *rowGrid) ints(j int, nulls []byte, vs []int64) {
	ws := make([]yrdv1.Value_IntValue, len(vs))
	k := 0
	for i := range g.rows {
		v := g.cell(i, j)
		if !IsNull(nulls, i) {
			ws[k].IntValue = vs[k]
			v.Kind = &ws[k]
			k++
		}
	}
}

func (g *rowGrid) doubles(j int, nulls []byte, vs []float64) {
	ws := make([]yrdv1.Value_DoubleValue, len(vs))
	k := 0
	for i := range g.rows {
		v := g.cell(i, j)
		if !IsNull(nulls, i) {
			ws[k].DoubleValue = vs[k]
			v.Kind = &ws[k]
			k++
		}
	}
}

func (g *rowGrid) strings(j int, nulls []byte, vs []string) {
	ws := make([]yrdv1.Value_StringValue, len(vs))
	k := 0
	for i := range g.rows {
		v := g.cell(i, j)
		if !IsNull(nulls, i) {
			ws[k].StringValue = vs[k]
			v.Kind = &ws[k]
			k++
		}
	}
}

func (g *rowGrid) bools(j int, nulls []byte, vs []bool) {
	ws := make([]yrdv1.Value_BoolValue, len(vs))
	k := 0
	for i := range g.rows {
		v := g.cell(i, j)
		if !IsNull(nulls, i) {
			ws[k].BoolValue = vs[k]
			v.Kind = &ws[k]
			k++
		}
	}
}

func (g *rowGrid) dates(j int, nulls []byte, vs []int32) {
	ws := make([]yrdv1.Value_DateValue, len(vs))
	k := 0
	for i := range g.rows {
		v := g.cell(i, j)
		if !IsNull(nulls, i) {
			g.buf = AppendDate(g.buf[:0], vs[k])
			ws[k].DateValue = string(g.buf)
			v.Kind = &ws[k]
			k++
		}
	}
}

func (g *rowGrid) timestamps(j int, nulls []byte, vs []int64) {
	ws := make([]yrdv1.Value_TimestampValue, len(vs))
	k := 0
	for i := range g.rows {
		v := g.cell(i, j)
		if !IsNull(nulls, i) {
			g.buf = AppendTimestamp(g.buf[:0], vs[k])
			ws[k].TimestampValue = string(g.buf)
			v.Kind = &ws[k]
			k++
		}
	}
}

// RowsToColumns returns rows as one column batch of a result with columns
// cols. Every row must have one value per column, each NULL or of its
// column type's kind (a DATE or TIMESTAMP exactly as the column form
// writes it back), else the rows have no column form and it fails: send
// them as rows.
func RowsToColumns(cols []*yrdv1.ResultColumn, rows []*yrdv1.Row) (*yrdv1.ColumnBatch, error) {
	n := len(rows)
	if n > math.MaxUint32 {
		return nil, fmt.Errorf("resultcodec: %d rows do not fit one batch", n)
	}
	for i, r := range rows {
		if len(r.GetValues()) != len(cols) {
			return nil, fmt.Errorf("resultcodec: row %d has %d values for %d columns", i, len(r.GetValues()), len(cols))
		}
	}
	out := &yrdv1.ColumnBatch{Rows: uint32(n), Columns: make([]*yrdv1.ColumnData, len(cols))}
	for j, col := range cols {
		cd, err := packColumn(col, rows, j)
		if err != nil {
			return nil, err
		}
		out.Columns[j] = cd
	}
	return out, nil
}

// packColumn is column j of rows in column form, of the kind of col's
// type.
func packColumn(col *yrdv1.ResultColumn, rows []*yrdv1.Row, j int) (*yrdv1.ColumnData, error) {
	cd := &yrdv1.ColumnData{}
	bad := -1 // the first row whose value has no column form, if any
	switch KindOfType(col.GetType()) {
	case Ints:
		var vs []int64
		vs, cd.Nulls, bad = packInts(rows, j)
		cd.Values = &yrdv1.ColumnData_Ints{Ints: &yrdv1.Int64Column{Values: vs}}
	case Doubles:
		var vs []float64
		vs, cd.Nulls, bad = packDoubles(rows, j)
		cd.Values = &yrdv1.ColumnData_Doubles{Doubles: &yrdv1.DoubleColumn{Values: vs}}
	case Strings:
		var vs []string
		vs, cd.Nulls, bad = packStrings(rows, j)
		cd.Values = &yrdv1.ColumnData_Strings{Strings: &yrdv1.StringColumn{Values: vs}}
	case Bools:
		var vs []bool
		vs, cd.Nulls, bad = packBools(rows, j)
		cd.Values = &yrdv1.ColumnData_Bools{Bools: &yrdv1.BoolColumn{Values: vs}}
	case Dates:
		var vs []int32
		vs, cd.Nulls, bad = packDates(rows, j)
		cd.Values = &yrdv1.ColumnData_Dates{Dates: &yrdv1.DateColumn{Values: vs}}
	case Timestamps:
		var vs []int64
		vs, cd.Nulls, bad = packTimestamps(rows, j)
		cd.Values = &yrdv1.ColumnData_Timestamps{Timestamps: &yrdv1.TimestampColumn{Values: vs}}
	default:
		return nil, fmt.Errorf("resultcodec: column %s: type %q has no column form", col.GetName(), col.GetType())
	}
	if bad >= 0 {
		return nil, fmt.Errorf("resultcodec: row %d: column %s of type %s: value %v has no column form", bad, col.GetName(), col.GetType(), rows[bad].GetValues()[j])
	}
	return cd, nil
}

// The per-kind packs below each return column j of rows as that kind's
// values and a NULL bitmap (nil if no row is NULL), and -1; or the first
// row whose value is of another kind (or a DATE or TIMESTAMP not exactly
// as the column form writes it back). Like the fills above, each is its
// kind's hot loop, written out.

func packInts(rows []*yrdv1.Row, j int) ([]int64, []byte, int) {
	vs := make([]int64, 0, len(rows))
	var nulls []byte
	for i, r := range rows {
		switch x := r.GetValues()[j].GetKind().(type) {
		case nil:
			nulls = setNull(nulls, len(rows), i)
		case *yrdv1.Value_IntValue:
			vs = append(vs, x.IntValue)
		default:
			return nil, nil, i
		}
	}
	return vs, nulls, -1
}

func packDoubles(rows []*yrdv1.Row, j int) ([]float64, []byte, int) {
	vs := make([]float64, 0, len(rows))
	var nulls []byte
	for i, r := range rows {
		switch x := r.GetValues()[j].GetKind().(type) {
		case nil:
			nulls = setNull(nulls, len(rows), i)
		case *yrdv1.Value_DoubleValue:
			vs = append(vs, x.DoubleValue)
		default:
			return nil, nil, i
		}
	}
	return vs, nulls, -1
}

func packStrings(rows []*yrdv1.Row, j int) ([]string, []byte, int) {
	vs := make([]string, 0, len(rows))
	var nulls []byte
	for i, r := range rows {
		switch x := r.GetValues()[j].GetKind().(type) {
		case nil:
			nulls = setNull(nulls, len(rows), i)
		case *yrdv1.Value_StringValue:
			vs = append(vs, x.StringValue)
		default:
			return nil, nil, i
		}
	}
	return vs, nulls, -1
}

func packBools(rows []*yrdv1.Row, j int) ([]bool, []byte, int) {
	vs := make([]bool, 0, len(rows))
	var nulls []byte
	for i, r := range rows {
		switch x := r.GetValues()[j].GetKind().(type) {
		case nil:
			nulls = setNull(nulls, len(rows), i)
		case *yrdv1.Value_BoolValue:
			vs = append(vs, x.BoolValue)
		default:
			return nil, nil, i
		}
	}
	return vs, nulls, -1
}

func packDates(rows []*yrdv1.Row, j int) ([]int32, []byte, int) {
	vs := make([]int32, 0, len(rows))
	var nulls []byte
	for i, r := range rows {
		switch x := r.GetValues()[j].GetKind().(type) {
		case nil:
			nulls = setNull(nulls, len(rows), i)
		case *yrdv1.Value_DateValue:
			d, ok := parseDate(x.DateValue)
			if !ok {
				return nil, nil, i
			}
			vs = append(vs, d)
		default:
			return nil, nil, i
		}
	}
	return vs, nulls, -1
}

func packTimestamps(rows []*yrdv1.Row, j int) ([]int64, []byte, int) {
	vs := make([]int64, 0, len(rows))
	var nulls []byte
	for i, r := range rows {
		switch x := r.GetValues()[j].GetKind().(type) {
		case nil:
			nulls = setNull(nulls, len(rows), i)
		case *yrdv1.Value_TimestampValue:
			us, ok := parseTimestamp(x.TimestampValue)
			if !ok {
				return nil, nil, i
			}
			vs = append(vs, us)
		default:
			return nil, nil, i
		}
	}
	return vs, nulls, -1
}

// setNull marks row i of n NULL in nulls, making the bitmap on first use.
func setNull(nulls []byte, n, i int) []byte {
	if nulls == nil {
		nulls = make([]byte, NullBytes(n))
	}
	nulls[i>>3] |= 1 << (i & 7)
	return nulls
}
