package receipt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// ErrDigestMismatch is returned by CheckRows and CheckDigest when the rows
// are not the ones the receipt was issued for: a row was dropped, added,
// reordered or changed.
var ErrDigestMismatch = errors.New("receipt: rows do not match the receipt")

// Value kind tags of the digest encoding (see the package documentation).
// They are part of the format: never renumber them.
const (
	kindNull      byte = 0
	kindString    byte = 1
	kindInt       byte = 2
	kindDouble    byte = 3
	kindBool      byte = 4
	kindDate      byte = 5
	kindTimestamp byte = 6
)

const (
	// flushAt is how many encoded bytes Digest gathers before hashing them.
	flushAt = 512
	// headroom fits the largest fixed-size piece appended without a
	// capacity check: a kind byte, a 10-byte uvarint and an 8-byte payload.
	headroom = 32
)

// Digest computes a receipt's result_digest incrementally: Add each released
// row in order, then Sum. The zero Digest is ready to use, as is NewDigest's.
// A Digest is not safe for concurrent use.
type Digest struct {
	h    hash.Hash
	buf  []byte // encoded bytes not yet written to h
	rows uint64
	cur  []column // AddColumns' per-column cursors, reused
	text []byte   // AddColumns' scratch for a date or timestamp's text
}

// column is one column of a batch being hashed by AddColumns: its kind
// tag, NULL bitmap, values (one slice set) and the next value's index.
type column struct {
	kind  byte
	nulls []byte
	ints  []int64
	dbls  []float64
	strs  []string
	bools []bool
	dates []int32
	next  int
}

// NewDigest returns an empty Digest.
func NewDigest() *Digest {
	d := &Digest{}
	d.init()
	return d
}

func (d *Digest) init() {
	d.h = sha256.New()
	d.buf = make([]byte, 0, flushAt+headroom)
}

// Add hashes one row. A nil row hashes as a row of no values, and a nil
// value as NULL, as they would travel on the wire.
func (d *Digest) Add(row *yrdv1.Row) {
	if d.h == nil {
		d.init()
	}
	if len(d.buf) >= flushAt {
		d.flush()
	}
	vals := row.GetValues()
	d.buf = binary.AppendUvarint(d.buf, uint64(len(vals)))
	for _, v := range vals {
		if len(d.buf) >= flushAt {
			d.flush()
		}
		switch k := v.GetKind().(type) {
		case nil:
			d.buf = append(d.buf, kindNull, 0)
		case *yrdv1.Value_StringValue:
			d.addString(kindString, k.StringValue)
		case *yrdv1.Value_IntValue:
			d.buf = append(d.buf, kindInt, 8)
			d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(k.IntValue))
		case *yrdv1.Value_DoubleValue:
			d.buf = append(d.buf, kindDouble, 8)
			d.buf = binary.BigEndian.AppendUint64(d.buf, math.Float64bits(k.DoubleValue))
		case *yrdv1.Value_BoolValue:
			var b byte
			if k.BoolValue {
				b = 1
			}
			d.buf = append(d.buf, kindBool, 1, b)
		case *yrdv1.Value_DateValue:
			d.addString(kindDate, k.DateValue)
		case *yrdv1.Value_TimestampValue:
			d.addString(kindTimestamp, k.TimestampValue)
		default:
			// Only a new member of Value's oneof gets here; the package's
			// tests fail until it has a kind tag of its own.
			panic(fmt.Sprintf("receipt: digest: value kind %T has no digest encoding", k))
		}
	}
	d.rows++
}

// AddColumns hashes the rows of a column batch, in order, to exactly the
// bytes Add would hash for the same rows in row form (ColumnBatch in
// proto/yrd/v1/query_api.proto says which Value each column member stands
// for; a date or timestamp hashes as its row-form text, which
// internal/resultcodec.AppendDate and AppendTimestamp make). A malformed
// batch (resultcodec.Validate) is an error and hashes nothing.
func (d *Digest) AddColumns(b *yrdv1.ColumnBatch) error {
	if err := resultcodec.Validate(b); err != nil {
		return fmt.Errorf("receipt: digest: %w", err)
	}
	if d.h == nil {
		d.init()
	}
	cs := b.GetColumns()
	cur := d.cur[:0]
	for _, c := range cs {
		col := column{nulls: c.GetNulls()}
		switch x := c.GetValues().(type) {
		case *yrdv1.ColumnData_Ints:
			col.kind, col.ints = kindInt, x.Ints.GetValues()
		case *yrdv1.ColumnData_Doubles:
			col.kind, col.dbls = kindDouble, x.Doubles.GetValues()
		case *yrdv1.ColumnData_Strings:
			col.kind, col.strs = kindString, x.Strings.GetValues()
		case *yrdv1.ColumnData_Bools:
			col.kind, col.bools = kindBool, x.Bools.GetValues()
		case *yrdv1.ColumnData_Dates:
			col.kind, col.dates = kindDate, x.Dates.GetValues()
		case *yrdv1.ColumnData_Timestamps:
			col.kind, col.ints = kindTimestamp, x.Timestamps.GetValues()
		}
		cur = append(cur, col)
	}
	d.cur = cur
	rows := int(b.GetRows())
	for i := range rows {
		if len(d.buf) >= flushAt {
			d.flush()
		}
		d.buf = binary.AppendUvarint(d.buf, uint64(len(cur)))
		for j := range cur {
			c := &cur[j]
			if len(d.buf) >= flushAt {
				d.flush()
			}
			if len(c.nulls) > 0 && c.nulls[i>>3]&(1<<(i&7)) != 0 {
				d.buf = append(d.buf, kindNull, 0)
				continue
			}
			k := c.next
			c.next++
			switch c.kind {
			case kindInt:
				d.buf = append(d.buf, kindInt, 8)
				d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(c.ints[k]))
			case kindDouble:
				d.buf = append(d.buf, kindDouble, 8)
				d.buf = binary.BigEndian.AppendUint64(d.buf, math.Float64bits(c.dbls[k]))
			case kindString:
				d.addString(kindString, c.strs[k])
			case kindBool:
				var v byte
				if c.bools[k] {
					v = 1
				}
				d.buf = append(d.buf, kindBool, 1, v)
			case kindDate:
				d.text = resultcodec.AppendDate(d.text[:0], c.dates[k])
				d.addBytes(kindDate, d.text)
			case kindTimestamp:
				d.text = resultcodec.AppendTimestamp(d.text[:0], c.ints[k])
				d.addBytes(kindTimestamp, d.text)
			}
		}
		d.rows++
	}
	clear(cur) // drop the batch's slices
	return nil
}

// addBytes is addString for a value held as bytes.
func (d *Digest) addBytes(kind byte, s []byte) { appendValue(d, kind, s) }

// addString appends a length-prefixed string value, hashing as it goes so
// that a long string never grows the buffer.
func (d *Digest) addString(kind byte, s string) { appendValue(d, kind, s) }

func appendValue[S string | []byte](d *Digest, kind byte, s S) {
	d.buf = append(d.buf, kind)
	d.buf = binary.AppendUvarint(d.buf, uint64(len(s)))
	for len(s) > 0 {
		if len(d.buf) == cap(d.buf) {
			d.flush()
		}
		n := copy(d.buf[len(d.buf):cap(d.buf)], s)
		d.buf = d.buf[:len(d.buf)+n]
		s = s[n:]
	}
}

func (d *Digest) flush() {
	d.h.Write(d.buf) // a hash.Hash's Write never fails
	d.buf = d.buf[:0]
}

// Sum returns the SHA-256 of the rows added so far (32 bytes). It does not
// change the Digest: more rows may be added and Sum called again.
func (d *Digest) Sum() []byte {
	if d.h == nil {
		d.init()
	}
	d.flush()
	return d.h.Sum(nil)
}

// Rows returns how many rows have been added.
func (d *Digest) Rows() uint64 {
	return d.rows
}

// CheckRows checks that rows, in order, are the rows r was issued for: that
// there are r.Rows of them and that their Digest is r.ResultDigest. A
// mismatch is ErrDigestMismatch. CheckRows does not check r's signature;
// call Verify as well.
func CheckRows(r *yrdv1.ResultReceipt, rows []*yrdv1.Row) error {
	d := NewDigest()
	for _, row := range rows {
		d.Add(row)
	}
	return CheckDigest(r, d)
}

// CheckColumns is CheckRows for rows that came as column batches.
func CheckColumns(r *yrdv1.ResultReceipt, batches []*yrdv1.ColumnBatch) error {
	d := NewDigest()
	for _, b := range batches {
		if err := d.AddColumns(b); err != nil {
			return err
		}
	}
	return CheckDigest(r, d)
}

// CheckDigest is CheckRows for rows already added to d, for a receiver that
// hashes rows as they stream in rather than keeping them.
func CheckDigest(r *yrdv1.ResultReceipt, d *Digest) error {
	if r == nil {
		return errors.New("receipt: check rows: nil receipt")
	}
	if d == nil {
		d = NewDigest()
	}
	if n := len(r.GetResultDigest()); n != sha256.Size {
		return fmt.Errorf("receipt: check rows: result_digest is %d bytes, want %d", n, sha256.Size)
	}
	if d.Rows() != r.GetRows() {
		return fmt.Errorf("%w: the receipt's rows field says %d, got %d rows", ErrDigestMismatch, r.GetRows(), d.Rows())
	}
	if !bytes.Equal(d.Sum(), r.GetResultDigest()) {
		return fmt.Errorf("%w: result_digest differs from the rows' digest", ErrDigestMismatch)
	}
	return nil
}
