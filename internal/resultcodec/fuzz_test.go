package resultcodec

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// FuzzColumnsToRows feeds arbitrary bytes as a column batch, as a client
// receives it from the network: decoding, validating and converting never
// panic, and a batch that validates converts to exactly its row count.
func FuzzColumnsToRows(f *testing.F) {
	rows := []*yrdv1.Row{
		{Values: []*yrdv1.Value{{Kind: &yrdv1.Value_StringValue{StringValue: "上城区"}}, {Kind: &yrdv1.Value_IntValue{IntValue: 42}}}},
		{Values: []*yrdv1.Value{{}, {Kind: &yrdv1.Value_IntValue{IntValue: -7}}}},
	}
	cols := []*yrdv1.ResultColumn{{Name: "district", Type: "VARCHAR"}, {Name: "n", Type: "BIGINT"}}
	if b, err := RowsToColumns(cols, rows); err == nil {
		seed, _ := proto.Marshal(b)
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b yrdv1.ColumnBatch
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		if Validate(&b) != nil {
			return
		}
		out, err := ColumnsToRows(&b)
		if err != nil {
			return
		}
		if len(out) != int(b.GetRows()) {
			t.Fatalf("%d rows from a valid batch of %d", len(out), b.GetRows())
		}
	})
}

// TestValidateBoundsWhatAReceiverAllocates: a batch may not claim more
// rows than MaxRows, nor rows without columns (cheap to send, a row each
// to receive).
func TestValidateBoundsWhatAReceiverAllocates(t *testing.T) {
	for _, b := range []*yrdv1.ColumnBatch{
		{Rows: 1000},
		{Rows: MaxRows + 1, Columns: []*yrdv1.ColumnData{{Nulls: make([]byte, NullBytes(MaxRows+1)),
			Values: &yrdv1.ColumnData_Ints{Ints: &yrdv1.Int64Column{}}}}},
	} {
		if err := Validate(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate(%d rows, %d columns) = %v, want ErrMalformed", b.GetRows(), len(b.GetColumns()), err)
		}
	}
}
