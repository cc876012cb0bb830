package receipt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func row(vals ...*yrdv1.Value) *yrdv1.Row { return &yrdv1.Row{Values: vals} }
func null() *yrdv1.Value                  { return &yrdv1.Value{} }
func str(s string) *yrdv1.Value {
	return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: s}}
}
func i64(v int64) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: v}} }
func f64(v float64) *yrdv1.Value {
	return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: v}}
}
func boolean(v bool) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_BoolValue{BoolValue: v}} }
func date(s string) *yrdv1.Value  { return &yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: s}} }
func ts(s string) *yrdv1.Value {
	return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: s}}
}

func digest(rows ...*yrdv1.Row) []byte {
	d := receipt.NewDigest()
	for _, r := range rows {
		d.Add(r)
	}
	return d.Sum()
}

// specEncode is the digest's byte string written straight from the
// package documentation, independently of the package's buffered encoder.
func specEncode(rows []*yrdv1.Row) []byte {
	var b []byte
	lp := func(kind byte, payload []byte) {
		b = append(b, kind)
		b = binary.AppendUvarint(b, uint64(len(payload)))
		b = append(b, payload...)
	}
	for _, r := range rows {
		b = binary.AppendUvarint(b, uint64(len(r.GetValues())))
		for _, v := range r.GetValues() {
			switch k := v.GetKind().(type) {
			case nil:
				lp(0, nil)
			case *yrdv1.Value_StringValue:
				lp(1, []byte(k.StringValue))
			case *yrdv1.Value_IntValue:
				lp(2, binary.BigEndian.AppendUint64(nil, uint64(k.IntValue)))
			case *yrdv1.Value_DoubleValue:
				lp(3, binary.BigEndian.AppendUint64(nil, math.Float64bits(k.DoubleValue)))
			case *yrdv1.Value_BoolValue:
				if k.BoolValue {
					lp(4, []byte{1})
				} else {
					lp(4, []byte{0})
				}
			case *yrdv1.Value_DateValue:
				lp(5, []byte(k.DateValue))
			case *yrdv1.Value_TimestampValue:
				lp(6, []byte(k.TimestampValue))
			default:
				panic(fmt.Sprintf("specEncode: %T", k))
			}
		}
	}
	return b
}

// specDecode parses specEncode's output back into rows; that it can proves
// the encoding unambiguous. It reports false for bytes that are not a
// complete encoding.
func specDecode(b []byte) ([]*yrdv1.Row, bool) {
	var rows []*yrdv1.Row
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for len(b) > 0 {
		n, ok := uvarint()
		if !ok {
			return nil, false
		}
		r := &yrdv1.Row{}
		for ; n > 0; n-- {
			if len(b) == 0 {
				return nil, false
			}
			kind := b[0]
			b = b[1:]
			l, ok := uvarint()
			if !ok || l > uint64(len(b)) {
				return nil, false
			}
			p := b[:l]
			b = b[l:]
			fixed := func(size int) bool { return len(p) == size }
			var v *yrdv1.Value
			switch kind {
			case 0:
				if !fixed(0) {
					return nil, false
				}
				v = null()
			case 1:
				v = str(string(p))
			case 2:
				if !fixed(8) {
					return nil, false
				}
				v = i64(int64(binary.BigEndian.Uint64(p)))
			case 3:
				if !fixed(8) {
					return nil, false
				}
				v = f64(math.Float64frombits(binary.BigEndian.Uint64(p)))
			case 4:
				if !fixed(1) || p[0] > 1 {
					return nil, false
				}
				v = boolean(p[0] == 1)
			case 5:
				v = date(string(p))
			case 6:
				v = ts(string(p))
			default:
				return nil, false
			}
			r.Values = append(r.Values, v)
		}
		rows = append(rows, r)
	}
	return rows, true
}

// key is a canonical byte form of a row sequence: equal keys mean equal
// rows, value kinds and double bits included.
func key(t testing.TB, rows []*yrdv1.Row) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&yrdv1.RowBatch{Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDigestMatchesSpec(t *testing.T) {
	long := strings.Repeat("长江三角洲", 300)       // multi-byte, longer than the buffer
	ascii := strings.Repeat("0123456789", 200) // for exact lengths around the buffer size
	sets := map[string][]*yrdv1.Row{
		"none":        nil,
		"empty row":   {row()},
		"every kind":  {row(null(), str("Huangpu"), i64(-42), f64(3.25), boolean(true), boolean(false), date("2024-02-29"), ts("2024-02-29T08:00:00Z"))},
		"extremes":    {row(i64(math.MinInt64), i64(math.MaxInt64), f64(math.Inf(-1)), f64(math.NaN()), f64(math.Copysign(0, -1)))},
		"long string": {row(str(long), str("")), row(date(ascii[:511]), ts(ascii[:512]), str(ascii[:513]), str(long[:1500]))},
		"many values": {row(manyValues(1000)...), row(manyValues(3)...)},
	}
	for name, rows := range sets {
		t.Run(name, func(t *testing.T) {
			enc := specEncode(rows)
			want := sha256.Sum256(enc)
			if got := digest(rows...); !bytes.Equal(got, want[:]) {
				t.Fatalf("digest = %x, want sha256(spec encoding) = %x", got, want)
			}
			back, ok := specDecode(enc)
			if !ok || key(t, back) != key(t, rows) {
				t.Fatal("the spec encoding does not decode back to the rows")
			}
		})
	}
}

func manyValues(n int) []*yrdv1.Value {
	vals := make([]*yrdv1.Value, n)
	for i := range vals {
		switch i % 4 {
		case 0:
			vals[i] = str(strings.Repeat("x", i%50))
		case 1:
			vals[i] = i64(int64(i))
		case 2:
			vals[i] = null()
		default:
			vals[i] = f64(float64(i) / 7)
		}
	}
	return vals
}

// TestDigestPinned pins the encoding: receipts already issued carry digests
// computed this way, and other implementations must agree.
func TestDigestPinned(t *testing.T) {
	tests := []struct {
		rows []*yrdv1.Row
		want string
	}{
		{nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{[]*yrdv1.Row{row(str("Huangpu"), i64(1203), null()), row(boolean(true), f64(0.5), date("2024-01-31"), ts("2024-01-31T08:00:00Z"))}, "de2cb351ac4c0e8f22c09b3292951201649bafd80624672c37e9e825449a279c"},
	}
	for i, tt := range tests {
		if got := hex.EncodeToString(digest(tt.rows...)); got != tt.want {
			t.Errorf("case %d: digest = %s, pinned %s", i, got, tt.want)
		}
	}
}

func TestDigestDistinguishes(t *testing.T) {
	a, b, c := str("a"), str("b"), str("c")
	tests := []struct {
		name string
		x, y []*yrdv1.Row
	}{
		{"int 1 vs string 1", []*yrdv1.Row{row(i64(1))}, []*yrdv1.Row{row(str("1"))}},
		{"null vs empty string", []*yrdv1.Row{row(null())}, []*yrdv1.Row{row(str(""))}},
		{"row boundaries", []*yrdv1.Row{row(a, b), row(c)}, []*yrdv1.Row{row(a), row(b, c)}},
		{"empty row vs no row", []*yrdv1.Row{row()}, nil},
		{"empty row vs null", []*yrdv1.Row{row()}, []*yrdv1.Row{row(null())}},
		{"string vs date", []*yrdv1.Row{row(str("2024-01-31"))}, []*yrdv1.Row{row(date("2024-01-31"))}},
		{"date vs timestamp", []*yrdv1.Row{row(date("2024-01-31"))}, []*yrdv1.Row{row(ts("2024-01-31"))}},
		{"bool false vs int 0", []*yrdv1.Row{row(boolean(false))}, []*yrdv1.Row{row(i64(0))}},
		{"int 0 vs double 0", []*yrdv1.Row{row(i64(0))}, []*yrdv1.Row{row(f64(0))}},
		{"0 vs -0", []*yrdv1.Row{row(f64(0))}, []*yrdv1.Row{row(f64(math.Copysign(0, -1)))}},
		{"string split", []*yrdv1.Row{row(str("ab"), str(""))}, []*yrdv1.Row{row(str("a"), str("b"))}},
		{"reordered values", []*yrdv1.Row{row(a, b)}, []*yrdv1.Row{row(b, a)}},
		{"reordered rows", []*yrdv1.Row{row(a), row(b)}, []*yrdv1.Row{row(b), row(a)}},
		{"null count", []*yrdv1.Row{row(null(), null())}, []*yrdv1.Row{row(null())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(digest(tt.x...), digest(tt.y...)) {
				t.Fatal("different rows have the same digest")
			}
		})
	}

	// What is the same on the wire hashes the same: a nil value is NULL and
	// a nil row has no values.
	if !bytes.Equal(digest(row(nil, a)), digest(row(null(), a))) {
		t.Error("a nil value and an empty (NULL) value hash differently")
	}
	if !bytes.Equal(digest(nil), digest(row())) {
		t.Error("a nil row and an empty row hash differently")
	}
}

// TestDigestCoversEveryValueKind fails when Value gains a kind that Digest
// does not encode (Add would panic on it).
func TestDigestCoversEveryValueKind(t *testing.T) {
	md := (&yrdv1.Value{}).ProtoReflect().Descriptor()
	if n := md.Fields().Len(); n != 6 {
		t.Fatalf("Value has %d fields; Digest encodes 6 kinds: give the new kind a tag in digest.go, the package doc and specEncode", n)
	}
	if n := md.Oneofs().Len(); n != 1 {
		t.Fatalf("Value has %d oneofs, want 1", n)
	}
	seen := map[string]bool{}
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		v := &yrdv1.Value{}
		var pv protoreflect.Value
		switch fd.Kind() {
		case protoreflect.StringKind:
			pv = protoreflect.ValueOfString("x")
		case protoreflect.Int64Kind:
			pv = protoreflect.ValueOfInt64(1)
		case protoreflect.DoubleKind:
			pv = protoreflect.ValueOfFloat64(1)
		case protoreflect.BoolKind:
			pv = protoreflect.ValueOfBool(true)
		default:
			t.Fatalf("Value.%s has kind %s, which Digest does not encode", fd.Name(), fd.Kind())
		}
		v.ProtoReflect().Set(fd, pv)
		sum := string(digest(row(v)))
		if seen[sum] {
			t.Errorf("Value.%s hashes like another kind", fd.Name())
		}
		seen[sum] = true
	}
}

func TestDigestSumIsNotFinal(t *testing.T) {
	rows := sampleRows()
	d := receipt.NewDigest()
	d.Add(rows[0])
	first := d.Sum()
	if again := d.Sum(); !bytes.Equal(first, again) {
		t.Fatal("calling Sum twice gives different sums")
	}
	if len(first) != 32 {
		t.Fatalf("Sum is %d bytes, want 32", len(first))
	}
	for _, r := range rows[1:] {
		d.Add(r)
	}
	if got, want := d.Sum(), digest(rows...); !bytes.Equal(got, want) {
		t.Fatal("adding rows after Sum does not give the digest of all the rows")
	}
	if d.Rows() != uint64(len(rows)) {
		t.Fatalf("Rows = %d, want %d", d.Rows(), len(rows))
	}
	if bytes.Equal(first, d.Sum()) {
		t.Fatal("adding rows did not change the sum")
	}
}

func TestDigestZeroValue(t *testing.T) {
	var empty receipt.Digest
	if got, want := empty.Sum(), digest(); !bytes.Equal(got, want) {
		t.Fatal("zero Digest's Sum differs from NewDigest's")
	}
	var d receipt.Digest
	for _, r := range sampleRows() {
		d.Add(r)
	}
	if !bytes.Equal(d.Sum(), digest(sampleRows()...)) {
		t.Fatal("zero Digest hashes differently from NewDigest")
	}
}

func TestDigestAddAllocs(t *testing.T) {
	r := benchRow()
	long := row(str(strings.Repeat("x", 5000)), i64(1))
	d := receipt.NewDigest()
	if n := testing.AllocsPerRun(1000, func() { d.Add(r); d.Add(long) }); n != 0 {
		t.Fatalf("Add allocates %.1f times per call, want 0", n)
	}
}

// TestDigestInjectiveSmall hashes every sequence of up to 3 rows holding up
// to 3 values in total, over values chosen to be confusable, and checks
// that different sequences never share a digest.
func TestDigestInjectiveSmall(t *testing.T) {
	alphabet := []*yrdv1.Value{
		null(), str(""), str("1"), str("a"), str("\x00"), str("\x01"),
		i64(0), i64(1), i64(-1), i64(256),
		f64(0), f64(math.Copysign(0, -1)), f64(1),
		boolean(false), boolean(true),
		date(""), date("1"), ts(""), ts("1"),
	}
	var sets [][]*yrdv1.Row
	var grow func(rows []*yrdv1.Row, budget int)
	grow = func(rows []*yrdv1.Row, budget int) {
		sets = append(sets, rows)
		if len(rows) == 3 {
			return
		}
		var fill func(vals []*yrdv1.Value, left int)
		fill = func(vals []*yrdv1.Value, left int) {
			next := append(append([]*yrdv1.Row(nil), rows...), row(vals...))
			grow(next, left)
			if left == 0 {
				return
			}
			for _, v := range alphabet {
				fill(append(append([]*yrdv1.Value(nil), vals...), v), left-1)
			}
		}
		fill(nil, budget)
	}
	grow(nil, 3)

	byDigest := make(map[string]string, len(sets))
	for _, rows := range sets {
		k := key(t, rows)
		sum := string(digest(rows...))
		if prev, ok := byDigest[sum]; ok && prev != k {
			t.Fatalf("two different row sequences share a digest:\n%x\n%x", prev, k)
		}
		byDigest[sum] = k
	}
	if len(byDigest) < 100000 {
		t.Fatalf("only %d distinct row sequences enumerated", len(byDigest))
	}
	t.Logf("%d row sequences, all with distinct digests", len(byDigest))
}

// rowsFromBytes builds a row sequence from fuzz input.
func rowsFromBytes(b []byte) []*yrdv1.Row {
	var rows []*yrdv1.Row
	cur := &yrdv1.Row{}
	take := func(n int) []byte {
		n = min(n, len(b))
		p := b[:n]
		b = b[n:]
		return p
	}
	u64 := func() uint64 {
		var x [8]byte
		copy(x[:], take(8))
		return binary.BigEndian.Uint64(x[:])
	}
	text := func() string {
		n := 0
		if p := take(1); len(p) == 1 {
			n = int(p[0] % 6)
		}
		return string(take(n))
	}
	for len(b) > 0 {
		op := b[0] % 8
		b = b[1:]
		switch op {
		case 0:
			rows = append(rows, cur)
			cur = &yrdv1.Row{}
			continue
		case 1:
			cur.Values = append(cur.Values, null())
		case 2:
			cur.Values = append(cur.Values, str(strings.ToValidUTF8(text(), "?")))
		case 3:
			cur.Values = append(cur.Values, i64(int64(u64())))
		case 4:
			cur.Values = append(cur.Values, f64(math.Float64frombits(u64())))
		case 5:
			p := take(1)
			cur.Values = append(cur.Values, boolean(len(p) == 1 && p[0]&1 == 1))
		case 6:
			cur.Values = append(cur.Values, date(strings.ToValidUTF8(text(), "?")))
		case 7:
			cur.Values = append(cur.Values, ts(strings.ToValidUTF8(text(), "?")))
		}
	}
	if len(cur.Values) > 0 {
		rows = append(rows, cur)
	}
	return rows
}

// FuzzDigestInjective checks, for two row sequences built from fuzz input,
// that their digests are equal exactly when the rows are, and that the
// encoding hashed is the documented one and decodes back to the rows.
func FuzzDigestInjective(f *testing.F) {
	f.Add([]byte{2, 1, '1'}, []byte{3, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{1}, []byte{2, 0})
	f.Add([]byte{2, 1, 'a', 2, 1, 'b', 0, 2, 1, 'c'}, []byte{2, 1, 'a', 0, 2, 1, 'b', 2, 1, 'c'})
	f.Add([]byte{6, 3, 'x', 'y', 'z'}, []byte{7, 3, 'x', 'y', 'z'})
	f.Add([]byte{0, 0}, []byte{0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ra, rb := rowsFromBytes(a), rowsFromBytes(b)
		da, db := digest(ra...), digest(rb...)
		if same := key(t, ra) == key(t, rb); same != bytes.Equal(da, db) {
			t.Fatalf("rows equal: %v, digests equal: %v", same, !same)
		}
		enc := specEncode(ra)
		if want := sha256.Sum256(enc); !bytes.Equal(da, want[:]) {
			t.Fatal("digest is not sha256 of the documented encoding")
		}
		back, ok := specDecode(enc)
		if !ok || key(t, back) != key(t, ra) {
			t.Fatal("the documented encoding does not decode back to the rows")
		}
	})
}

func TestCheckRows(t *testing.T) {
	r, _, _ := signed(t)
	rows := sampleRows()
	if err := receipt.CheckRows(r, rows); err != nil {
		t.Fatalf("CheckRows of the receipt's own rows: %v", err)
	}
	extra := row(str("Songjiang"), i64(77))
	tests := []struct {
		name string
		rows []*yrdv1.Row
	}{
		{"none", nil},
		{"dropped first", rows[1:]},
		{"dropped last", rows[:2]},
		{"added", append(sampleRows(), extra)},
		{"inserted", []*yrdv1.Row{rows[0], extra, rows[1], rows[2]}},
		{"replaced", []*yrdv1.Row{rows[0], extra, rows[2]}},
		{"reordered", []*yrdv1.Row{rows[1], rows[0], rows[2]}},
		{"value changed", []*yrdv1.Row{rows[0], row(str("Xuhui"), i64(989)), rows[2]}},
		{"kind changed", []*yrdv1.Row{rows[0], row(str("Xuhui"), str("988")), rows[2]}},
		{"null filled", []*yrdv1.Row{rows[0], rows[1], row(str("Minhang"), i64(0))}},
		{"value dropped", []*yrdv1.Row{rows[0], row(str("Xuhui")), rows[2]}},
		{"values moved across rows", []*yrdv1.Row{row(str("Huangpu")), row(i64(1203), str("Xuhui"), i64(988)), rows[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := receipt.CheckRows(r, tt.rows); !errors.Is(err, receipt.ErrDigestMismatch) {
				t.Fatalf("CheckRows = %v, want ErrDigestMismatch", err)
			}
		})
	}

	t.Run("rows field wrong", func(t *testing.T) {
		c := proto.CloneOf(r)
		c.Rows = 2
		if err := receipt.CheckRows(c, rows[:2]); !errors.Is(err, receipt.ErrDigestMismatch) {
			t.Fatalf("CheckRows = %v, want ErrDigestMismatch", err)
		}
	})
	t.Run("no digest", func(t *testing.T) {
		c := proto.CloneOf(r)
		c.ResultDigest = nil
		err := receipt.CheckRows(c, rows)
		if err == nil || errors.Is(err, receipt.ErrDigestMismatch) || !strings.Contains(err.Error(), "result_digest") {
			t.Fatalf("CheckRows of a receipt without a digest = %v, want an error naming result_digest", err)
		}
	})
	t.Run("nil receipt", func(t *testing.T) {
		if err := receipt.CheckRows(nil, rows); err == nil {
			t.Fatal("CheckRows(nil) succeeded")
		}
	})
	t.Run("empty result", func(t *testing.T) {
		c := &yrdv1.ResultReceipt{ResultDigest: digest()}
		if err := receipt.CheckRows(c, nil); err != nil {
			t.Fatalf("CheckRows of an empty result: %v", err)
		}
	})
}

func TestCheckDigestStreaming(t *testing.T) {
	r, _, _ := signed(t)
	d := receipt.NewDigest()
	for _, batch := range [][]*yrdv1.Row{sampleRows()[:1], sampleRows()[1:]} {
		for _, row := range batch {
			d.Add(row)
		}
	}
	if err := receipt.CheckDigest(r, d); err != nil {
		t.Fatalf("CheckDigest: %v", err)
	}
	d.Add(row())
	if err := receipt.CheckDigest(r, d); !errors.Is(err, receipt.ErrDigestMismatch) {
		t.Fatalf("CheckDigest after an extra row = %v, want ErrDigestMismatch", err)
	}
}

func benchRow() *yrdv1.Row {
	return row(
		str("Huangpu"),
		i64(1203),
		f64(78.25),
		boolean(true),
		date("2024-01-31"),
		ts("2024-01-31T08:00:00Z"),
	)
}

// BenchmarkDigestAdd is the per-row cost of the digest on a typical row of
// six values; it runs on every released row.
func BenchmarkDigestAdd(b *testing.B) {
	r := benchRow()
	d := receipt.NewDigest()
	b.SetBytes(int64(len(specEncode([]*yrdv1.Row{r}))))
	b.ReportAllocs()
	for b.Loop() {
		d.Add(r)
	}
	_ = d.Sum()
}
