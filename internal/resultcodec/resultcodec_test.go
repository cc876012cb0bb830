package resultcodec_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var allTypes = []*yrdv1.ResultColumn{
	{Name: "i", Type: "BIGINT"}, {Name: "d", Type: "DOUBLE"}, {Name: "s", Type: "VARCHAR"},
	{Name: "b", Type: "BOOLEAN"}, {Name: "day", Type: "DATE"}, {Name: "at", Type: "TIMESTAMP"},
}

// randomRows makes n rows of allTypes in row form, with NULLs, dates and
// timestamps formatted as the owner's row form does.
func randomRows(rng *rand.Rand, n int) []*yrdv1.Row {
	rows := make([]*yrdv1.Row, n)
	for i := range rows {
		vs := make([]*yrdv1.Value, len(allTypes))
		for j := range vs {
			v := &yrdv1.Value{}
			if rng.IntN(5) > 0 {
				switch j {
				case 0:
					v.Kind = &yrdv1.Value_IntValue{IntValue: rng.Int64() - math.MaxInt64/2}
				case 1:
					v.Kind = &yrdv1.Value_DoubleValue{DoubleValue: rng.NormFloat64()}
				case 2:
					v.Kind = &yrdv1.Value_StringValue{StringValue: []string{"", "a", "苏州"}[rng.IntN(3)]}
				case 3:
					v.Kind = &yrdv1.Value_BoolValue{BoolValue: rng.IntN(2) == 1}
				case 4:
					t := time.Date(1900+rng.IntN(200), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
					v.Kind = &yrdv1.Value_DateValue{DateValue: t.Format(time.DateOnly)}
				case 5:
					t := time.UnixMicro(rng.Int64N(4e15) - 2e15)
					v.Kind = &yrdv1.Value_TimestampValue{TimestampValue: t.UTC().Format(time.RFC3339Nano)}
				}
			}
			vs[j] = v
		}
		rows[i] = &yrdv1.Row{Values: vs}
	}
	return rows
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		rows := randomRows(rng, n)
		b, err := resultcodec.RowsToColumns(allTypes, rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := resultcodec.Check(b, allTypes); err != nil {
			t.Fatal(err)
		}
		// Through the wire, as a client gets it.
		wire, err := proto.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got := &yrdv1.ColumnBatch{}
		if err := proto.Unmarshal(wire, got); err != nil {
			t.Fatal(err)
		}
		back, err := resultcodec.ColumnsToRows(got)
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != len(rows) {
			t.Fatalf("%d rows back for %d", len(back), len(rows))
		}
		for i := range rows {
			if !proto.Equal(back[i], rows[i]) {
				t.Fatalf("n=%d row %d: %v back, want %v", n, i, back[i], rows[i])
			}
		}
		if n > 0 && len(wire) >= proto.Size(&yrdv1.RowBatch{Rows: rows}) {
			t.Errorf("n=%d: column form is %d bytes, the row form %d", n, len(wire), proto.Size(&yrdv1.RowBatch{Rows: rows}))
		}
	}
}

func TestAllNullColumnKeepsItsKind(t *testing.T) {
	rows := []*yrdv1.Row{{Values: make([]*yrdv1.Value, len(allTypes))}}
	for j := range rows[0].Values {
		rows[0].Values[j] = &yrdv1.Value{}
	}
	b, err := resultcodec.RowsToColumns(allTypes, rows)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := proto.Marshal(b)
	got := &yrdv1.ColumnBatch{}
	if err := proto.Unmarshal(wire, got); err != nil {
		t.Fatal(err)
	}
	if err := resultcodec.Check(got, allTypes); err != nil {
		t.Fatalf("an all-NULL batch after the wire: %v", err)
	}
}

func TestRowsToColumnsRefuses(t *testing.T) {
	date := func(s string) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: s}} }
	ts := func(s string) *yrdv1.Value { return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: s}} }
	i64 := &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: 1}}
	for name, c := range map[string]struct {
		typ string
		v   *yrdv1.Value
	}{
		"double in BIGINT":          {"BIGINT", &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: 1}}},
		"int in VARCHAR":            {"VARCHAR", i64},
		"int in DOUBLE":             {"DOUBLE", i64},
		"unknown type":              {"INTERVAL", i64},
		"date not as written":       {"DATE", date("2024-1-02")},
		"timestamp with offset":     {"TIMESTAMP", ts("2024-01-02T08:00:00+08:00")},
		"timestamp of nanoseconds":  {"TIMESTAMP", ts("2024-01-02T08:00:00.123456789Z")},
		"timestamp trailing zeros":  {"TIMESTAMP", ts("2024-01-02T08:00:00.500Z")},
		"string in TIMESTAMP":       {"TIMESTAMP", &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: "2024-01-02T08:00:00Z"}}},
		"timestamp in DATE":         {"DATE", ts("2024-01-02T00:00:00Z")},
		"date text in a timestamp":  {"TIMESTAMP", ts("2024-01-02")},
		"not a date":                {"DATE", date("yesterday")},
		"timestamp of another zone": {"TIMESTAMP", ts("2024-01-02T08:00:00.5+00:00")},
	} {
		cols := []*yrdv1.ResultColumn{{Name: "c", Type: c.typ}}
		if _, err := resultcodec.RowsToColumns(cols, []*yrdv1.Row{{Values: []*yrdv1.Value{c.v}}}); err == nil {
			t.Errorf("%s: converted", name)
		}
	}
	if _, err := resultcodec.RowsToColumns(allTypes[:1], []*yrdv1.Row{{}}); err == nil {
		t.Error("a row of no values for one column converted")
	}
}

func TestCheckKinds(t *testing.T) {
	b, err := resultcodec.RowsToColumns(allTypes, randomRows(rand.New(rand.NewPCG(2, 2)), 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := resultcodec.Check(b, allTypes[:5]); !errors.Is(err, resultcodec.ErrMalformed) {
		t.Errorf("Check with a column too few = %v", err)
	}
	swapped := append([]*yrdv1.ResultColumn{allTypes[1], allTypes[0]}, allTypes[2:]...)
	if err := resultcodec.Check(b, swapped); !errors.Is(err, resultcodec.ErrMalformed) {
		t.Errorf("Check with columns of other types = %v", err)
	}
}

func TestTimeEncodings(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2024, 2, 29, 12, 0, 0, 500000000, time.FixedZone("CST", 8*3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		us, ok := resultcodec.TimestampMicros(tm)
		if !ok {
			t.Fatalf("%v: no microseconds", tm)
		}
		if got, want := string(resultcodec.AppendTimestamp(nil, us)), tm.UTC().Format(time.RFC3339Nano); got != want {
			t.Errorf("AppendTimestamp(%d) = %s, want %s", us, got, want)
		}
		days, ok := resultcodec.DateDays(tm)
		if !ok {
			t.Fatalf("%v: no day number", tm)
		}
		if got, want := string(resultcodec.AppendDate(nil, days)), tm.UTC().Format(time.DateOnly); got != want {
			t.Errorf("AppendDate(%d) = %s, want %s", days, got, want)
		}
	}
	if _, ok := resultcodec.TimestampMicros(time.Unix(0, 1)); ok {
		t.Error("a nanosecond timestamp has microseconds")
	}
	if _, ok := resultcodec.TimestampMicros(time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("a timestamp past int64 microseconds has microseconds")
	}
}
