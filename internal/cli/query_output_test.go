package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestRowWritersFormatValues drives the three output formats with every
// kind of value, and table output past its alignment buffer.
func TestRowWritersFormatValues(t *testing.T) {
	h := &yrdv1.ResultHeader{Columns: []*yrdv1.ResultColumn{{Name: "s"}, {Name: "i"}, {Name: "d"}, {Name: "b"}, {Name: "day"}, {Name: "ts"}, {Name: "n"}}}
	v := func(x any) *yrdv1.Value {
		switch x := x.(type) {
		case string:
			return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: x}}
		case int64:
			return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: x}}
		case float64:
			return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: x}}
		case bool:
			return &yrdv1.Value{Kind: &yrdv1.Value_BoolValue{BoolValue: x}}
		}
		return &yrdv1.Value{}
	}
	row := []*yrdv1.Value{v("a,\"b\"\n<c>"), v(int64(-9007199254740993)), v(0.1), v(true),
		{Kind: &yrdv1.Value_DateValue{DateValue: "2025-06-30"}}, {Kind: &yrdv1.Value_TimestampValue{TimestampValue: "2025-06-30T08:00:00Z"}}, v(nil)}
	out := func(w rowWriter, buf *bytes.Buffer, bw *bufio.Writer, rows ...[]*yrdv1.Value) string {
		t.Helper()
		if err := w.header(h); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := w.row(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.finish(&yrdv1.ResultTrailer{}); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		return buf.String()
	}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	got := out(&jsonRows{w: bw}, &buf, bw, row)
	if want := `{"s":"a,\"b\"\n<c>","i":-9007199254740993,"d":0.1,"b":true,"day":"2025-06-30","ts":"2025-06-30T08:00:00Z","n":null}` + "\n"; got != want {
		t.Fatalf("json\n got %s\nwant %s", got, want)
	}
	buf.Reset()
	got = out(&csvRows{w: csv.NewWriter(bw)}, &buf, bw, row)
	// RFC 4180 line breaks are CRLF, inside quoted fields too (a CSV reader
	// such as encoding/csv's reads it back as "\n").
	if want := "s,i,d,b,day,ts,n\r\n\"a,\"\"b\"\"\r\n<c>\",-9007199254740993,0.1,true,2025-06-30,2025-06-30T08:00:00Z,\r\n"; got != want {
		t.Fatalf("csv\n got %q\nwant %q", got, want)
	}
	buf.Reset()
	got = out(&tableRows{w: bw}, &buf, bw, row)
	if want := "s               i                  d    b     day         ts                    n\n" +
		"\"a,\\\"b\\\"\\n<c>\"  -9007199254740993  0.1  true  2025-06-30  2025-06-30T08:00:00Z  NULL\n"; got != want {
		t.Fatalf("table\n got %s\nwant %s", got, want)
	}
	// Past tableBufferRows, rows stream out unaligned.
	buf.Reset()
	short := []*yrdv1.Value{v("x"), v(int64(1)), v(1.5), v(false), v(nil), v(nil), v(nil)}
	rows := make([][]*yrdv1.Value, tableBufferRows+2)
	for i := range rows {
		rows[i] = short
	}
	got = out(&tableRows{w: bw}, &buf, bw, rows...)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != tableBufferRows+3 || lines[len(lines)-1] != "x  1  1.5  false  NULL  NULL  NULL" || lines[1] != "x  1  1.5  false  NULL  NULL  NULL" {
		t.Fatalf("streamed table: %d lines, first %q, last %q", len(lines), lines[1], lines[len(lines)-1])
	}
}
