package resultcodec

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// RowBuilder converts engine rows into one RowBatch's rows with a few
// slab allocations per batch instead of several per cell: at hundreds of
// thousands of rows a second, per-cell allocation and the GC it causes
// dominated the owner's CPU.
type RowBuilder struct {
	cols  []*yrdv1.ResultColumn
	rows  []*yrdv1.Row
	slab  []yrdv1.Row
	vals  []yrdv1.Value
	ptrs  []*yrdv1.Value
	strs  []yrdv1.Value_StringValue
	ints  []yrdv1.Value_IntValue
	dbls  []yrdv1.Value_DoubleValue
	bools []yrdv1.Value_BoolValue
	dates []yrdv1.Value_DateValue
	tss   []yrdv1.Value_TimestampValue
	size  int // wire size of the rows so far, as RowBatch.rows entries
}

// NewRowBuilder returns a builder of one batch of at most capRows rows of
// a result with columns cols.
func NewRowBuilder(cols []*yrdv1.ResultColumn, capRows int) *RowBuilder {
	cells := capRows * len(cols)
	return &RowBuilder{cols: cols, rows: make([]*yrdv1.Row, 0, capRows), slab: make([]yrdv1.Row, capRows),
		vals: make([]yrdv1.Value, cells), ptrs: make([]*yrdv1.Value, cells)}
}

// slot returns a pointer to a new element of *s, allocating the slab on
// first use with room for every cell of the batch, so pointers into it stay
// valid (append never reallocates).
func slot[T any](s *[]T, cells int) *T {
	if *s == nil {
		*s = make([]T, 0, cells)
	}
	*s = append(*s, *new(T))
	return &(*s)[len(*s)-1]
}

// Add converts one engine row; len(vals) must be len(cols) and the batch
// must hold fewer than capRows rows.
func (b *RowBuilder) Add(vals []any) (*yrdv1.Row, error) {
	i := len(b.rows)
	n := len(b.cols)
	cells := cap(b.vals)
	rowSize := 0
	for j, x := range vals {
		v := &b.vals[i*n+j]
		typ := b.cols[j].GetType()
		size := 0
		switch x := x.(type) {
		case nil:
		case string:
			w := slot(&b.strs, cells)
			w.StringValue, v.Kind, size = x, w, 1+protowire.SizeBytes(len(x))
		case []byte:
			w := slot(&b.strs, cells)
			w.StringValue, v.Kind, size = string(x), w, 1+protowire.SizeBytes(len(x))
		case bool:
			w := slot(&b.bools, cells)
			w.BoolValue, v.Kind, size = x, w, 2
		case float64:
			w := slot(&b.dbls, cells)
			w.DoubleValue, v.Kind, size = x, w, 9
		case time.Time:
			if typ == "DATE" {
				w := slot(&b.dates, cells)
				w.DateValue, v.Kind = x.UTC().Format(time.DateOnly), w
				size = 1 + protowire.SizeBytes(len(w.DateValue))
			} else {
				w := slot(&b.tss, cells)
				w.TimestampValue, v.Kind = x.UTC().Format(time.RFC3339Nano), w
				size = 1 + protowire.SizeBytes(len(w.TimestampValue))
			}
		default:
			if n, ok := EngineInt64(x); ok && typ != "DOUBLE" {
				w := slot(&b.ints, cells)
				w.IntValue, v.Kind, size = n, w, 1+protowire.SizeVarint(uint64(n))
				break
			}
			// Rare kinds (floats of other widths, huge integers, integers
			// of a DOUBLE column) take the general path.
			conv, err := EngineValue(x, typ)
			if err != nil {
				return nil, fmt.Errorf("column %s: %v", b.cols[j].GetName(), err)
			}
			*v = yrdv1.Value{Kind: conv.Kind}
			size = proto.Size(v)
		}
		b.ptrs[i*n+j] = v
		rowSize += 1 + protowire.SizeBytes(size)
	}
	row := &b.slab[i]
	row.Values = b.ptrs[i*n : (i+1)*n : (i+1)*n]
	b.rows = append(b.rows, row)
	b.size += 1 + protowire.SizeBytes(rowSize)
	return row, nil
}

// ColumnBuilder builds one ColumnBatch straight from engine values, column
// by column into typed slices: no message per cell, and, with the client
// decoding packed arrays rather than a Value per cell, a fraction of the
// row form's CPU at both ends. It carries exactly the rows RowBuilder
// would (as RowsToColumns would convert them), so a receipt digest of
// either is the same.
type ColumnBuilder struct {
	cols  []colBuf
	rows  int
	capRs int
}

// colBuf is one column of the batch being built.
type colBuf struct {
	kind  Kind
	nulls []byte // nil until the column's first NULL
	nullN int    // NULLs in nulls
	ints  []int64
	dbls  []float64
	strs  []string
	bools []bool
	dates []int32
	pay   int // encoded size of the values (packed payload, or the strings' fields)
}

// NewColumnBuilder returns a builder for a result of cols, or nil if some
// column's type has no column form: such a result goes as rows.
func NewColumnBuilder(cols []*yrdv1.ResultColumn, capRows int) *ColumnBuilder {
	b := &ColumnBuilder{cols: make([]colBuf, len(cols)), capRs: capRows}
	for j, c := range cols {
		if b.cols[j].kind = KindOfType(c.GetType()); b.cols[j].kind == Invalid {
			return nil
		}
	}
	b.reset()
	return b
}

// reset starts a new batch with fresh slices (the sent batch keeps its own).
func (b *ColumnBuilder) reset() {
	n := b.capRs
	for j := range b.cols {
		c := &b.cols[j]
		*c = colBuf{kind: c.kind}
		switch c.kind {
		case Ints, Timestamps:
			c.ints = make([]int64, 0, n)
		case Doubles:
			c.dbls = make([]float64, 0, n)
		case Strings:
			c.strs = make([]string, 0, n)
		case Bools:
			c.bools = make([]bool, 0, n)
		case Dates:
			c.dates = make([]int32, 0, n)
		}
	}
	b.rows = 0
}

// Add appends one engine row; len(vals) must be len(cols) and the batch
// must hold fewer than capRows rows. It returns false, having added
// nothing, if a value is not of its column's kind as RowBuilder would
// send it (e.g. a sum past BIGINT's range, which the row form sends as a
// DOUBLE): the rest of the result must then go as rows.
func (b *ColumnBuilder) Add(vals []any) bool {
	i := b.rows
	for j, x := range vals {
		c := &b.cols[j]
		if x == nil {
			if c.nulls == nil {
				c.nulls = make([]byte, NullBytes(b.capRs))
			}
			c.nulls[i>>3] |= 1 << (i & 7)
			c.nullN++
			continue
		}
		ok := false
		switch c.kind {
		case Ints:
			var n int64
			if n, ok = x.(int64); !ok {
				n, ok = EngineInt64(x)
			}
			if ok {
				c.ints = append(c.ints, n)
				c.pay += protowire.SizeVarint(protowire.EncodeZigZag(n))
			}
		case Doubles:
			var f float64
			if f, ok = x.(float64); !ok {
				if v, err := EngineValue(x, "DOUBLE"); err == nil {
					var d *yrdv1.Value_DoubleValue
					if d, ok = v.GetKind().(*yrdv1.Value_DoubleValue); ok {
						f = d.DoubleValue
					}
				}
			}
			if ok {
				c.dbls = append(c.dbls, f)
				c.pay += 8
			}
		case Strings:
			var s string
			switch x := x.(type) {
			case string:
				s, ok = x, true
			case []byte:
				s, ok = string(x), true
			}
			if ok {
				c.strs = append(c.strs, s)
				c.pay += 1 + protowire.SizeBytes(len(s))
			}
		case Bools:
			var v bool
			if v, ok = x.(bool); ok {
				c.bools = append(c.bools, v)
				c.pay++
			}
		case Dates:
			if t, isTime := x.(time.Time); isTime {
				var d int32
				if d, ok = DateDays(t); ok {
					c.dates = append(c.dates, d)
					c.pay += protowire.SizeVarint(protowire.EncodeZigZag(int64(d)))
				}
			}
		case Timestamps:
			if t, isTime := x.(time.Time); isTime {
				var us int64
				if us, ok = TimestampMicros(t); ok {
					c.ints = append(c.ints, us)
					c.pay += protowire.SizeVarint(protowire.EncodeZigZag(us))
				}
			}
		}
		if !ok {
			b.undo(vals[:j])
			return false
		}
	}
	b.rows++
	return true
}

// undo takes back the current row's values of the columns of vals.
func (b *ColumnBuilder) undo(vals []any) {
	i := b.rows
	for j, x := range vals {
		c := &b.cols[j]
		if x == nil {
			c.nulls[i>>3] &^= 1 << (i & 7)
			c.nullN--
			continue
		}
		switch c.kind {
		case Ints, Timestamps:
			c.pay -= protowire.SizeVarint(protowire.EncodeZigZag(c.ints[len(c.ints)-1]))
			c.ints = c.ints[:len(c.ints)-1]
		case Doubles:
			c.pay -= 8
			c.dbls = c.dbls[:len(c.dbls)-1]
		case Strings:
			c.pay -= 1 + protowire.SizeBytes(len(c.strs[len(c.strs)-1]))
			c.strs = c.strs[:len(c.strs)-1]
		case Bools:
			c.pay--
			c.bools = c.bools[:len(c.bools)-1]
		case Dates:
			c.pay -= protowire.SizeVarint(protowire.EncodeZigZag(int64(c.dates[len(c.dates)-1])))
			c.dates = c.dates[:len(c.dates)-1]
		}
	}
}

// Take returns the batch built so far and its encoded size (as
// proto.Size, from the sizes added up in Add), and starts a new batch.
func (b *ColumnBuilder) Take() (*yrdv1.ColumnBatch, int) {
	out := &yrdv1.ColumnBatch{Rows: uint32(b.rows), Columns: make([]*yrdv1.ColumnData, len(b.cols))}
	size := 0
	if b.rows > 0 {
		size += 1 + protowire.SizeVarint(uint64(b.rows))
	}
	for j := range b.cols {
		c := &b.cols[j]
		cd := &yrdv1.ColumnData{}
		if c.nullN > 0 {
			cd.Nulls = c.nulls[:NullBytes(b.rows)]
		}
		member := c.pay // the values field of the member message
		if c.kind != Strings && c.pay > 0 {
			member = 1 + protowire.SizeBytes(c.pay) // packed
		}
		switch c.kind {
		case Ints:
			cd.Values = &yrdv1.ColumnData_Ints{Ints: &yrdv1.Int64Column{Values: c.ints}}
		case Timestamps:
			cd.Values = &yrdv1.ColumnData_Timestamps{Timestamps: &yrdv1.TimestampColumn{Values: c.ints}}
		case Doubles:
			cd.Values = &yrdv1.ColumnData_Doubles{Doubles: &yrdv1.DoubleColumn{Values: c.dbls}}
		case Strings:
			cd.Values = &yrdv1.ColumnData_Strings{Strings: &yrdv1.StringColumn{Values: c.strs}}
		case Bools:
			cd.Values = &yrdv1.ColumnData_Bools{Bools: &yrdv1.BoolColumn{Values: c.bools}}
		case Dates:
			cd.Values = &yrdv1.ColumnData_Dates{Dates: &yrdv1.DateColumn{Values: c.dates}}
		}
		colSize := 1 + protowire.SizeBytes(member)
		if len(cd.Nulls) > 0 {
			colSize += 1 + protowire.SizeBytes(len(cd.Nulls))
		}
		size += 1 + protowire.SizeBytes(colSize)
		out.Columns[j] = cd
	}
	b.reset()
	return out, size
}

// Len is the number of rows in the batch.
func (b *RowBuilder) Len() int { return len(b.rows) }

// Rows are the rows of the batch.
func (b *RowBuilder) Rows() []*yrdv1.Row { return b.rows }

// Size is the wire size of the rows as RowBatch.rows entries, for a size
// cap checked without encoding the batch.
func (b *RowBuilder) Size() int { return b.size }

// Len is the number of rows in the batch being built.
func (b *ColumnBuilder) Len() int { return b.rows }
