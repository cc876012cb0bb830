package receipt_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// randomBatch makes rows random rows of one column of every kind (and a
// second string column of long values), with NULLs at random, both as a
// column batch and, built independently of internal/resultcodec, as the
// rows of Value messages the row form would carry: dates and timestamps
// formatted straight with the time package.
func randomBatch(rng *rand.Rand, rows int, nullRate float64) (*yrdv1.ColumnBatch, []*yrdv1.Row) {
	const ncols = 7
	var cols randomColumns
	nulls := make([][]byte, ncols)
	out := make([]*yrdv1.Row, rows)
	for i := range rows {
		r := &yrdv1.Row{Values: make([]*yrdv1.Value, ncols)}
		for j := range ncols {
			if rng.Float64() < nullRate {
				if nulls[j] == nil {
					nulls[j] = make([]byte, (rows+7)/8)
				}
				nulls[j][i/8] |= 1 << (i % 8)
				r.Values[j] = &yrdv1.Value{}
				continue
			}
			r.Values[j] = cols.add(rng, j)
		}
		out[i] = r
	}
	return cols.batch(rows, nulls), out
}

// randomColumns gathers the non-null values of randomBatch's seven
// columns: an integer, a double, a short and a long string, a bool, a
// date and a timestamp.
type randomColumns struct {
	ints  []int64
	dbls  []float64
	strs  []string
	longs []string
	bools []bool
	dates []int32
	tss   []int64
}

var specialDoubles = []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64}

// add draws a random value for column j, keeps it and returns it as a
// row value.
func (c *randomColumns) add(rng *rand.Rand, j int) *yrdv1.Value {
	switch j {
	case 0:
		x := rng.Int64() >> rng.IntN(64)
		if rng.IntN(2) == 0 {
			x = -x
		}
		c.ints = append(c.ints, x)
		return i64(x)
	case 1:
		x := rng.NormFloat64() * 1e6
		if rng.IntN(8) == 0 {
			x = specialDoubles[rng.IntN(len(specialDoubles))]
		}
		c.dbls = append(c.dbls, x)
		return f64(x)
	case 2:
		x := []string{"", "Huangpu", "鼓楼区", "a\x00b", "1"}[rng.IntN(5)]
		c.strs = append(c.strs, x)
		return str(x)
	case 3:
		x := strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(2000))
		c.longs = append(c.longs, x)
		return str(x)
	case 4:
		x := rng.IntN(2) == 0
		c.bools = append(c.bools, x)
		return boolean(x)
	case 5:
		// -1000 to 3000 AD or so, around the epoch both ways.
		x := int32(rng.IntN(1_100_000) - 720_000)
		c.dates = append(c.dates, x)
		return date(time.Unix(int64(x)*86400, 0).UTC().Format(time.DateOnly))
	}
	x := rng.Int64N(200*365*86400*1_000_000) - 100*365*86400*1_000_000
	switch rng.IntN(4) { // whole seconds and milliseconds too
	case 0:
		x -= x % 1_000_000
	case 1:
		x -= x % 1000
	}
	c.tss = append(c.tss, x)
	return ts(time.UnixMicro(x).UTC().Format(time.RFC3339Nano))
}

// batch is the column batch of the values kept, with the null bitmaps.
func (c *randomColumns) batch(rows int, nulls [][]byte) *yrdv1.ColumnBatch {
	return &yrdv1.ColumnBatch{Rows: uint32(rows), Columns: []*yrdv1.ColumnData{
		{Nulls: nulls[0], Values: &yrdv1.ColumnData_Ints{Ints: &yrdv1.Int64Column{Values: c.ints}}},
		{Nulls: nulls[1], Values: &yrdv1.ColumnData_Doubles{Doubles: &yrdv1.DoubleColumn{Values: c.dbls}}},
		{Nulls: nulls[2], Values: &yrdv1.ColumnData_Strings{Strings: &yrdv1.StringColumn{Values: c.strs}}},
		{Nulls: nulls[3], Values: &yrdv1.ColumnData_Strings{Strings: &yrdv1.StringColumn{Values: c.longs}}},
		{Nulls: nulls[4], Values: &yrdv1.ColumnData_Bools{Bools: &yrdv1.BoolColumn{Values: c.bools}}},
		{Nulls: nulls[5], Values: &yrdv1.ColumnData_Dates{Dates: &yrdv1.DateColumn{Values: c.dates}}},
		{Nulls: nulls[6], Values: &yrdv1.ColumnData_Timestamps{Timestamps: &yrdv1.TimestampColumn{Values: c.tss}}},
	}}
}

func TestAddColumnsMatchesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		nullRate := []float64{0, 0.1, 0.5, 1}[trial%4]
		var batches []*yrdv1.ColumnBatch
		var all []*yrdv1.Row
		for range 1 + rng.IntN(3) {
			b, rows := randomBatch(rng, rng.IntN(40), nullRate)
			batches, all = append(batches, b), append(all, rows...)
		}
		cd := receipt.NewDigest()
		for _, b := range batches {
			if err := cd.AddColumns(b); err != nil {
				t.Fatal(err)
			}
		}
		if cd.Rows() != uint64(len(all)) {
			t.Fatalf("trial %d: AddColumns counted %d rows, want %d", trial, cd.Rows(), len(all))
		}
		if got, want := cd.Sum(), digest(all...); !bytes.Equal(got, want) {
			t.Fatalf("trial %d: digest of the column batches differs from the rows' digest", trial)
		}
		// Both forms mixed in one stream, as a receiver may get them.
		md := receipt.NewDigest()
		for i, b := range batches {
			if i%2 == 0 {
				if err := md.AddColumns(b); err != nil {
					t.Fatal(err)
				}
				continue
			}
			rows, err := resultcodec.ColumnsToRows(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				md.Add(r)
			}
		}
		if !bytes.Equal(md.Sum(), cd.Sum()) {
			t.Fatalf("trial %d: mixed row and column batches hash differently", trial)
		}
	}
}

func TestAddColumnsEmpty(t *testing.T) {
	d := receipt.NewDigest()
	if err := d.AddColumns(&yrdv1.ColumnBatch{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Sum(), digest()) || d.Rows() != 0 {
		t.Fatal("an empty batch changed the digest")
	}
	// Rows of no columns never occur in a result (a query selects
	// something) and would cost a receiver a row each: refused.
	if err := d.AddColumns(&yrdv1.ColumnBatch{Rows: 2}); err == nil {
		t.Fatal("two rows of no columns were hashed")
	}
}

func TestAddColumnsRejectsMalformed(t *testing.T) {
	ints := func(vs ...int64) *yrdv1.ColumnData_Ints {
		return &yrdv1.ColumnData_Ints{Ints: &yrdv1.Int64Column{Values: vs}}
	}
	for name, b := range map[string]*yrdv1.ColumnBatch{
		"no values member":  {Rows: 1, Columns: []*yrdv1.ColumnData{{}}},
		"too few values":    {Rows: 2, Columns: []*yrdv1.ColumnData{{Values: ints(1)}}},
		"too many values":   {Rows: 1, Columns: []*yrdv1.ColumnData{{Values: ints(1, 2)}}},
		"NULL and a value":  {Rows: 1, Columns: []*yrdv1.ColumnData{{Nulls: []byte{1}, Values: ints(1)}}},
		"bitmap too long":   {Rows: 1, Columns: []*yrdv1.ColumnData{{Nulls: []byte{1, 0}, Values: ints()}}},
		"bitmap too short":  {Rows: 9, Columns: []*yrdv1.ColumnData{{Nulls: []byte{1}, Values: ints(1, 2, 3, 4, 5, 6, 7, 8)}}},
		"bit past last row": {Rows: 1, Columns: []*yrdv1.ColumnData{{Nulls: []byte{2}, Values: ints(1)}}},
	} {
		d := receipt.NewDigest()
		before := d.Sum()
		if err := d.AddColumns(b); !errors.Is(err, resultcodec.ErrMalformed) {
			t.Errorf("%s: AddColumns = %v, want ErrMalformed", name, err)
		}
		if d.Rows() != 0 || !bytes.Equal(d.Sum(), before) {
			t.Errorf("%s: a refused batch was hashed", name)
		}
	}
}

func TestCheckColumns(t *testing.T) {
	b, rows := randomBatch(rand.New(rand.NewPCG(3, 4)), 50, 0.2)
	r := &yrdv1.ResultReceipt{Rows: uint64(len(rows)), ResultDigest: digest(rows...)}
	if err := receipt.CheckColumns(r, []*yrdv1.ColumnBatch{b}); err != nil {
		t.Fatal(err)
	}
	b.Columns[0].GetInts().Values[0]++
	if err := receipt.CheckColumns(r, []*yrdv1.ColumnBatch{b}); !errors.Is(err, receipt.ErrDigestMismatch) {
		t.Fatalf("CheckColumns after a changed value = %v, want ErrDigestMismatch", err)
	}
}

func TestAddColumnsAllocs(t *testing.T) {
	b, _ := randomBatch(rand.New(rand.NewPCG(5, 6)), 200, 0.1)
	d := receipt.NewDigest()
	_ = d.AddColumns(b) // sizes the cursors and scratch
	if n := testing.AllocsPerRun(100, func() { _ = d.AddColumns(b) }); n != 0 {
		t.Fatalf("AddColumns allocates %.1f times per batch, want 0", n)
	}
}

// BenchmarkDigestAddColumns is the per-row cost of hashing a column batch
// of benchRow's six kinds (compare BenchmarkDigestAdd).
func BenchmarkDigestAddColumns(b *testing.B) {
	const rows = 4096
	cols := []*yrdv1.ResultColumn{{Type: "VARCHAR"}, {Type: "BIGINT"}, {Type: "DOUBLE"}, {Type: "BOOLEAN"}, {Type: "DATE"}, {Type: "TIMESTAMP"}}
	rs := make([]*yrdv1.Row, rows)
	for i := range rs {
		rs[i] = benchRow()
	}
	batch, err := resultcodec.RowsToColumns(cols, rs)
	if err != nil {
		b.Fatal(err)
	}
	d := receipt.NewDigest()
	b.ReportAllocs()
	for b.Loop() {
		if err := d.AddColumns(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
	_ = d.Sum()
}
