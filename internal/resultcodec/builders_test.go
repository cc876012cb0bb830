package resultcodec_test

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var builderCols = []*yrdv1.ResultColumn{
	{Name: "s", Type: "VARCHAR"}, {Name: "i", Type: "BIGINT"}, {Name: "d", Type: "DOUBLE"},
	{Name: "b", Type: "BOOLEAN"}, {Name: "day", Type: "DATE"}, {Name: "at", Type: "TIMESTAMP"},
}

// engineRow is a random row of builderCols as the connector yields it,
// in the Go types it may use for each, with NULLs.
func engineRow(rng *rand.Rand) []any {
	vals := make([]any, len(builderCols))
	for j := range vals {
		if rng.IntN(6) == 0 {
			continue // NULL
		}
		switch j {
		case 0:
			if rng.IntN(2) == 0 {
				vals[j] = "road-" + string(rune('a'+rng.IntN(26)))
			} else {
				vals[j] = []byte("bytes")
			}
		case 1:
			vals[j] = []any{rng.Int64() - math.MaxInt64/2, int32(-7), big.NewInt(1 << 40), uint64(12)}[rng.IntN(4)]
		case 2:
			vals[j] = []any{rng.NormFloat64(), float32(1.5), int64(3), big.NewInt(5), math.Copysign(0, -1)}[rng.IntN(5)]
		case 3:
			vals[j] = rng.IntN(2) == 0
		case 4:
			vals[j] = time.Date(1900+rng.IntN(200), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		case 5:
			vals[j] = time.UnixMicro(rng.Int64N(4e15) - 1e15).In(time.FixedZone("CST", 8*3600))
		}
	}
	return vals
}

// TestColumnBuilderMatchesRows: the column builder carries the rows the row
// builder makes of the same engine values, hashes to the same digest and
// sizes its batch as proto.Size does.
func TestColumnBuilderMatchesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 8, 9, 100} {
		cb := resultcodec.NewColumnBuilder(builderCols, n)
		rb := resultcodec.NewRowBuilder(builderCols, n)
		rd := receipt.NewDigest()
		for range n {
			vals := engineRow(rng)
			if !cb.Add(vals) {
				t.Fatalf("column builder refused %v", vals)
			}
			row, err := rb.Add(vals)
			if err != nil {
				t.Fatal(err)
			}
			rd.Add(row)
		}
		batch, size := cb.Take()
		if want := proto.Size(batch); size != want {
			t.Errorf("n=%d: column batch sized %d, proto.Size %d", n, size, want)
		}
		if err := resultcodec.Check(batch, builderCols); err != nil {
			t.Fatal(err)
		}
		rows, err := resultcodec.ColumnsToRows(batch)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&yrdv1.RowBatch{Rows: rows}, &yrdv1.RowBatch{Rows: rb.Rows()}) {
			t.Fatalf("n=%d: column batch rows differ from the row builder's", n)
		}
		cd := receipt.NewDigest()
		if err := cd.AddColumns(batch); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cd.Sum(), rd.Sum()) {
			t.Fatalf("n=%d: digests differ", n)
		}
		if cb.Len() != 0 {
			t.Fatal("Take did not start a new batch")
		}
	}
}

// TestColumnBuilderRefusesAndUndoes: a value the row form would send as
// another kind than its column's (a float in a BIGINT column, a sum past
// int64, a time with nanoseconds) is refused with nothing of its row kept.
func TestColumnBuilderRefusesAndUndoes(t *testing.T) {
	good := []any{"x", int64(1), 2.5, true, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), time.UnixMicro(5)}
	huge, _ := new(big.Int).SetString("100000000000000000000", 10)
	for name, bad := range map[string]func([]any){
		"float in BIGINT":      func(v []any) { v[1] = 1.5 },
		"sum past int64":       func(v []any) { v[1] = huge },
		"string in DOUBLE":     func(v []any) { v[2] = "2.5" },
		"int in VARCHAR":       func(v []any) { v[0] = int64(3) },
		"nanosecond timestamp": func(v []any) { v[5] = time.Unix(0, 1) },
		"timestamp in BOOLEAN": func(v []any) { v[3] = time.Unix(0, 0) },
		"last column, NULLs before": func(v []any) {
			v[0], v[1], v[2], v[3] = nil, nil, nil, nil
			v[5] = "late"
		},
	} {
		cb := resultcodec.NewColumnBuilder(builderCols, 4)
		if !cb.Add(good) {
			t.Fatal("refused a good row")
		}
		want, wantSize := func() (*yrdv1.ColumnBatch, int) {
			c := resultcodec.NewColumnBuilder(builderCols, 4)
			c.Add(good)
			return c.Take()
		}()
		row := append([]any(nil), good...)
		bad(row)
		if cb.Add(row) {
			t.Fatalf("%s: accepted", name)
		}
		got, size := cb.Take()
		if !proto.Equal(got, want) || size != wantSize || size != proto.Size(got) {
			t.Fatalf("%s: the refused row left traces: %v (%d bytes), want %v (%d)", name, got, size, want, wantSize)
		}
	}
	if resultcodec.NewColumnBuilder([]*yrdv1.ResultColumn{{Name: "t", Type: "TIME"}}, 4) != nil {
		t.Error("a column builder for a type with no column form")
	}
}
