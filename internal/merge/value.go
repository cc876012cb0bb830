package merge

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"strings"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// kind is the kind of a Value, kNull for an unset one (SQL NULL): the
// kinds of internal/resultcodec, which converts values, in the order
// values of different kinds sort.
type kind = resultcodec.Kind

const (
	kNull      = resultcodec.Invalid
	kString    = resultcodec.Strings
	kInt       = resultcodec.Ints
	kDouble    = resultcodec.Doubles
	kBool      = resultcodec.Bools
	kDate      = resultcodec.Dates
	kTimestamp = resultcodec.Timestamps
)

func kindOf(v *yrdv1.Value) kind { return resultcodec.KindOfValue(v) }

// typeKind is the Value kind of a result column type. Result types are
// upper case on the wire (resultcodec.ResultType makes them so); another
// spelling is no result type here.
func typeKind(t string) (kind, bool) {
	if t != strings.ToUpper(t) {
		return kNull, false
	}
	k := resultcodec.KindOfType(t)
	return k, k != kNull
}

// compareValues orders two non-NULL values of one column as DuckDB does:
// numbers by value (NaN above every other double, -0 equal to 0),
// strings by bytes, false before true, dates as YYYY-MM-DD text and
// timestamps as instants when both parse as RFC 3339, else as text.
// Values of different kinds, which a checked column never holds, order
// by kind.
func compareValues(a, b *yrdv1.Value) int {
	ka, kb := kindOf(a), kindOf(b)
	if ka != kb {
		return cmp.Compare(ka, kb)
	}
	switch ka {
	case kInt:
		return cmp.Compare(a.GetIntValue(), b.GetIntValue())
	case kDouble:
		return compareDoubles(a.GetDoubleValue(), b.GetDoubleValue())
	case kString:
		return strings.Compare(a.GetStringValue(), b.GetStringValue())
	case kBool:
		x, y := a.GetBoolValue(), b.GetBoolValue()
		switch {
		case x == y:
			return 0
		case y:
			return -1
		}
		return 1
	case kDate:
		return strings.Compare(a.GetDateValue(), b.GetDateValue())
	case kTimestamp:
		x, y := a.GetTimestampValue(), b.GetTimestampValue()
		tx, ex := time.Parse(time.RFC3339Nano, x)
		ty, ey := time.Parse(time.RFC3339Nano, y)
		if ex == nil && ey == nil {
			return tx.Compare(ty)
		}
		return strings.Compare(x, y)
	}
	return 0
}

func compareDoubles(x, y float64) int {
	nx, ny := math.IsNaN(x), math.IsNaN(y)
	switch {
	case nx && ny:
		return 0
	case nx:
		return 1
	case ny:
		return -1
	}
	return cmp.Compare(x, y)
}

// compareNullsLast orders two values of one column, NULL after every
// other value whichever the direction.
func compareNullsLast(a, b *yrdv1.Value, desc bool) int {
	na, nb := kindOf(a) == kNull, kindOf(b) == kNull
	switch {
	case na && nb:
		return 0
	case na:
		return 1
	case nb:
		return -1
	}
	c := compareValues(a, b)
	if desc {
		return -c
	}
	return c
}

// appendKey appends an encoding of v to a group key: equal for values
// that are equal in a GROUP BY (same kind and value; -0 and 0, all NaNs,
// and timestamps that are one instant), different otherwise, and
// self-delimiting, so a concatenation of encodings identifies the tuple.
func appendKey(dst []byte, v *yrdv1.Value) []byte {
	k := kindOf(v)
	switch k {
	case kInt:
		dst = append(dst, byte(k))
		return binary.BigEndian.AppendUint64(dst, uint64(v.GetIntValue()))
	case kDouble:
		f := v.GetDoubleValue()
		switch {
		case f == 0:
			f = 0
		case math.IsNaN(f):
			f = math.NaN()
		}
		dst = append(dst, byte(k))
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	case kBool:
		b := byte(0)
		if v.GetBoolValue() {
			b = 1
		}
		return append(dst, byte(k), b)
	case kString:
		return appendText(append(dst, byte(k)), v.GetStringValue())
	case kDate:
		return appendText(append(dst, byte(k)), v.GetDateValue())
	case kTimestamp:
		s := v.GetTimestampValue()
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			dst = append(dst, byte(k), 0)
			dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix()))
			return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
		}
		return appendText(append(dst, byte(k), 1), s)
	}
	return append(dst, byte(kNull))
}

func appendText(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// int128 is a signed 128-bit integer, two's complement: enough to add
// any 2^64 int64 values exactly.
type int128 struct {
	hi int64
	lo uint64
}

func (x *int128) add(v int64) {
	var carry uint64
	x.lo, carry = bits.Add64(x.lo, uint64(v), 0)
	x.hi += v>>63 + int64(carry)
}

// int64 returns x and whether it fits in an int64.
func (x int128) int64() (int64, bool) {
	return int64(x.lo), x.hi == int64(x.lo)>>63
}

// float64 returns x rounded to the nearest double.
func (x int128) float64() float64 {
	if v, ok := x.int64(); ok {
		return float64(v)
	}
	b := new(big.Int).SetInt64(x.hi)
	b.Lsh(b, 64)
	b.Add(b, new(big.Int).SetUint64(x.lo))
	f, _ := new(big.Float).SetInt(b).Float64()
	return f
}
