package node

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// resultType is the type a result column of catalog type t has on the
// wire: integers widen to BIGINT and decimals arrive as DOUBLE.
func resultType(t string) string {
	switch strings.ToUpper(t) {
	case "INTEGER", "BIGINT":
		return "BIGINT"
	case "DOUBLE", "DECIMAL":
		return "DOUBLE"
	}
	return strings.ToUpper(t)
}

// resultColumns describes the result Compile makes for q under dec, one
// entry per select item (SELECT * expanded as Compile does). names are the
// engine's column names, used where the requester gave no alias.
func resultColumns(ds *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, names []string, sumBound float64) []*yrdv1.ResultColumn {
	treat := map[string]yrdv1.ColumnTreatment{}
	for _, c := range dec.GetColumns() {
		treat[c.GetColumn()] = c.GetTreatment()
	}
	types := map[string]string{}
	for _, c := range ds.GetSchema().GetColumns() {
		types[c.GetName()] = c.GetType()
	}
	items := q.GetSelect()
	if len(items) == 0 {
		for _, c := range ds.GetSchema().GetColumns() {
			if t := treat[c.GetName()]; t != yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD && t != yrdv1.ColumnTreatment_COLUMN_TREATMENT_UNSPECIFIED {
				items = append(items, &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: c.GetName()}})
			}
		}
	}
	out := make([]*yrdv1.ResultColumn, len(items))
	for i, it := range items {
		rc := &yrdv1.ResultColumn{Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW}
		if i < len(names) {
			rc.Name = names[i]
		}
		if it.GetAlias() != "" {
			rc.Name = it.GetAlias()
		}
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			rc.Type = resultType(types[x.Column])
			rc.Treatment = treat[x.Column]
			if rc.Treatment == yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED ||
				(rc.Treatment == yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED && strings.EqualFold(types[x.Column], "VARCHAR")) {
				rc.Type = "VARCHAR"
			}
		case *yrdv1.SelectItem_Aggregate:
			a := x.Aggregate
			switch a.GetFunction() {
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
				rc.Type = "BIGINT"
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
				rc.Type = "DOUBLE"
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
				rc.Type = resultType(types[a.GetColumn()])
				if sumBound > 0 {
					rc.Type = "DOUBLE"
				}
			default:
				rc.Type = resultType(types[a.GetColumn()])
			}
		}
		out[i] = rc
	}
	return out
}

// toValue turns an engine value into a wire value of the column's type.
func toValue(v any, typ string) (*yrdv1.Value, error) {
	switch x := v.(type) {
	case nil:
		return &yrdv1.Value{}, nil
	case string:
		return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: x}}, nil
	case []byte:
		return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: string(x)}}, nil
	case bool:
		return &yrdv1.Value{Kind: &yrdv1.Value_BoolValue{BoolValue: x}}, nil
	case float64:
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: x}}, nil
	case float32:
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(x)}}, nil
	case time.Time:
		if typ == "DATE" {
			return &yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: x.UTC().Format(time.DateOnly)}}, nil
		}
		return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: x.UTC().Format(time.RFC3339Nano)}}, nil
	case *big.Int:
		if x.IsInt64() {
			return intValue(x.Int64(), typ), nil
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: f}}, nil
	case int64:
		return intValue(x, typ), nil
	case int32:
		return intValue(int64(x), typ), nil
	case int16:
		return intValue(int64(x), typ), nil
	case int8:
		return intValue(int64(x), typ), nil
	case int:
		return intValue(int64(x), typ), nil
	case uint8:
		return intValue(int64(x), typ), nil
	case uint16:
		return intValue(int64(x), typ), nil
	case uint32:
		return intValue(int64(x), typ), nil
	case uint64:
		if x > math.MaxInt64 {
			return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(x)}}, nil
		}
		return intValue(int64(x), typ), nil
	}
	return nil, fmt.Errorf("result value of unsupported Go type %T", v)
}

func intValue(n int64, typ string) *yrdv1.Value {
	if typ == "DOUBLE" {
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(n)}}
	}
	return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: n}}
}

// int64Of reads an integer result value (a count), for checks.
func int64Of(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case *big.Int:
		return x.Int64(), x.IsInt64()
	}
	return 0, false
}

// batchBuilder converts engine rows into one RowBatch's rows with a few
// slab allocations per batch instead of several per cell: at hundreds of
// thousands of rows a second, per-cell allocation and the GC it causes
// dominated the owner's CPU.
type batchBuilder struct {
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

func newBatchBuilder(cols []*yrdv1.ResultColumn, capRows int) *batchBuilder {
	cells := capRows * len(cols)
	return &batchBuilder{cols: cols, rows: make([]*yrdv1.Row, 0, capRows), slab: make([]yrdv1.Row, capRows),
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

// add converts one engine row; len(vals) must be len(cols) and the batch
// must hold fewer than capRows rows.
func (b *batchBuilder) add(vals []any) (*yrdv1.Row, error) {
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
			if n, ok := int64Of(x); ok && typ != "DOUBLE" {
				w := slot(&b.ints, cells)
				w.IntValue, v.Kind, size = n, w, 1+protowire.SizeVarint(uint64(n))
				break
			}
			// Rare kinds (floats of other widths, huge integers, integers
			// of a DOUBLE column) take the general path.
			conv, err := toValue(x, typ)
			if err != nil {
				return nil, errorf(ErrInternal, "column %s: %v", b.cols[j].GetName(), err)
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

// columnBuilder builds one ColumnBatch straight from engine values, column
// by column into typed slices: no message per cell, and, with the client
// decoding packed arrays rather than a Value per cell, a fraction of the
// row form's CPU at both ends. It carries exactly the rows batchBuilder
// would (resultcodec says how), so the receipt digest is the same.
type columnBuilder struct {
	cols  []colBuf
	rows  int
	capRs int
}

// colBuf is one column of the batch being built.
type colBuf struct {
	kind  resultcodec.Kind
	nulls []byte // nil until the column's first NULL
	nullN int    // NULLs in nulls
	ints  []int64
	dbls  []float64
	strs  []string
	bools []bool
	dates []int32
	pay   int // encoded size of the values (packed payload, or the strings' fields)
}

// newColumnBuilder returns a builder for a result of cols, or nil if some
// column's type has no column form: such a result goes as rows.
func newColumnBuilder(cols []*yrdv1.ResultColumn, capRows int) *columnBuilder {
	b := &columnBuilder{cols: make([]colBuf, len(cols)), capRs: capRows}
	for j, c := range cols {
		if b.cols[j].kind = resultcodec.KindOfType(c.GetType()); b.cols[j].kind == resultcodec.Invalid {
			return nil
		}
	}
	b.reset()
	return b
}

// reset starts a new batch with fresh slices (the sent batch keeps its own).
func (b *columnBuilder) reset() {
	n := b.capRs
	for j := range b.cols {
		c := &b.cols[j]
		*c = colBuf{kind: c.kind}
		switch c.kind {
		case resultcodec.Ints, resultcodec.Timestamps:
			c.ints = make([]int64, 0, n)
		case resultcodec.Doubles:
			c.dbls = make([]float64, 0, n)
		case resultcodec.Strings:
			c.strs = make([]string, 0, n)
		case resultcodec.Bools:
			c.bools = make([]bool, 0, n)
		case resultcodec.Dates:
			c.dates = make([]int32, 0, n)
		}
	}
	b.rows = 0
}

// add appends one engine row; len(vals) must be len(cols) and the batch
// must hold fewer than capRows rows. It returns false, having added
// nothing, if a value is not of its column's kind as batchBuilder would
// send it (e.g. a sum past BIGINT's range, which the row form sends as a
// DOUBLE): the rest of the result must then go as rows.
func (b *columnBuilder) add(vals []any) bool {
	i := b.rows
	for j, x := range vals {
		c := &b.cols[j]
		if x == nil {
			if c.nulls == nil {
				c.nulls = make([]byte, resultcodec.NullBytes(b.capRs))
			}
			c.nulls[i>>3] |= 1 << (i & 7)
			c.nullN++
			continue
		}
		ok := false
		switch c.kind {
		case resultcodec.Ints:
			var n int64
			if n, ok = x.(int64); !ok {
				n, ok = int64Of(x)
			}
			if ok {
				c.ints = append(c.ints, n)
				c.pay += protowire.SizeVarint(protowire.EncodeZigZag(n))
			}
		case resultcodec.Doubles:
			var f float64
			if f, ok = x.(float64); !ok {
				if v, err := toValue(x, "DOUBLE"); err == nil {
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
		case resultcodec.Strings:
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
		case resultcodec.Bools:
			var v bool
			if v, ok = x.(bool); ok {
				c.bools = append(c.bools, v)
				c.pay++
			}
		case resultcodec.Dates:
			if t, isTime := x.(time.Time); isTime {
				var d int32
				if d, ok = resultcodec.DateDays(t); ok {
					c.dates = append(c.dates, d)
					c.pay += protowire.SizeVarint(protowire.EncodeZigZag(int64(d)))
				}
			}
		case resultcodec.Timestamps:
			if t, isTime := x.(time.Time); isTime {
				var us int64
				if us, ok = resultcodec.TimestampMicros(t); ok {
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
func (b *columnBuilder) undo(vals []any) {
	i := b.rows
	for j, x := range vals {
		c := &b.cols[j]
		if x == nil {
			c.nulls[i>>3] &^= 1 << (i & 7)
			c.nullN--
			continue
		}
		switch c.kind {
		case resultcodec.Ints, resultcodec.Timestamps:
			c.pay -= protowire.SizeVarint(protowire.EncodeZigZag(c.ints[len(c.ints)-1]))
			c.ints = c.ints[:len(c.ints)-1]
		case resultcodec.Doubles:
			c.pay -= 8
			c.dbls = c.dbls[:len(c.dbls)-1]
		case resultcodec.Strings:
			c.pay -= 1 + protowire.SizeBytes(len(c.strs[len(c.strs)-1]))
			c.strs = c.strs[:len(c.strs)-1]
		case resultcodec.Bools:
			c.pay--
			c.bools = c.bools[:len(c.bools)-1]
		case resultcodec.Dates:
			c.pay -= protowire.SizeVarint(protowire.EncodeZigZag(int64(c.dates[len(c.dates)-1])))
			c.dates = c.dates[:len(c.dates)-1]
		}
	}
}

// take returns the batch built so far and its encoded size (as
// proto.Size, from the sizes added up in add), and starts a new batch.
func (b *columnBuilder) take() (*yrdv1.ColumnBatch, int) {
	out := &yrdv1.ColumnBatch{Rows: uint32(b.rows), Columns: make([]*yrdv1.ColumnData, len(b.cols))}
	size := 0
	if b.rows > 0 {
		size += 1 + protowire.SizeVarint(uint64(b.rows))
	}
	for j := range b.cols {
		c := &b.cols[j]
		cd := &yrdv1.ColumnData{}
		if c.nullN > 0 {
			cd.Nulls = c.nulls[:resultcodec.NullBytes(b.rows)]
		}
		member := c.pay // the values field of the member message
		if c.kind != resultcodec.Strings && c.pay > 0 {
			member = 1 + protowire.SizeBytes(c.pay) // packed
		}
		switch c.kind {
		case resultcodec.Ints:
			cd.Values = &yrdv1.ColumnData_Ints{Ints: &yrdv1.Int64Column{Values: c.ints}}
		case resultcodec.Timestamps:
			cd.Values = &yrdv1.ColumnData_Timestamps{Timestamps: &yrdv1.TimestampColumn{Values: c.ints}}
		case resultcodec.Doubles:
			cd.Values = &yrdv1.ColumnData_Doubles{Doubles: &yrdv1.DoubleColumn{Values: c.dbls}}
		case resultcodec.Strings:
			cd.Values = &yrdv1.ColumnData_Strings{Strings: &yrdv1.StringColumn{Values: c.strs}}
		case resultcodec.Bools:
			cd.Values = &yrdv1.ColumnData_Bools{Bools: &yrdv1.BoolColumn{Values: c.bools}}
		case resultcodec.Dates:
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

// asyncDigest adds column batches to a receipt digest on a goroutine of its
// own, so that hashing (formatting each date and timestamp as its row-form
// text, then SHA-256) overlaps reading and sending the next batch instead
// of adding to the one goroutine that streams the result. A batch must not
// change once handed over; sending it only reads it.
type asyncDigest struct {
	d      *receipt.Digest
	ch     chan *yrdv1.ColumnBatch
	done   chan error
	closed bool
	err    error
}

func startAsyncDigest(d *receipt.Digest) *asyncDigest {
	a := &asyncDigest{d: d, ch: make(chan *yrdv1.ColumnBatch, 4), done: make(chan error, 1)}
	go func() {
		var err error
		for b := range a.ch {
			if err == nil {
				err = a.d.AddColumns(b)
			}
		}
		a.done <- err
	}()
	return a
}

// add queues b to be hashed after the batches before it.
func (a *asyncDigest) add(b *yrdv1.ColumnBatch) { a.ch <- b }

// wait returns once every queued batch is hashed; the digest may then be
// used again. Calling it again returns the same result.
func (a *asyncDigest) wait() error {
	if !a.closed {
		a.closed = true
		close(a.ch)
		a.err = <-a.done
	}
	return a.err
}
