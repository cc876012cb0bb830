package synth

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestDates(t *testing.T) {
	for days := int64(-800000); days < 800000; days += 97 {
		want := time.Unix(days*86400, 0).UTC()
		y, m, d := civil(days)
		if y != want.Year() || time.Month(m) != want.Month() || d != want.Day() {
			t.Fatalf("civil(%d) = %d-%d-%d, want %s", days, y, m, d, want.Format(time.DateOnly))
		}
		if back := dayNumber(y, m, d); back != days {
			t.Fatalf("dayNumber(civil(%d)) = %d", days, back)
		}
		if got := string(appendDate(nil, days)); got != want.Format(time.DateOnly) {
			t.Fatalf("appendDate(%d) = %s, want %s", days, got, want.Format(time.DateOnly))
		}
		unix := days*86400 + days%86400
		if got := string(appendTimestamp(nil, unix)); got != time.Unix(unix, 0).UTC().Format(time.RFC3339) {
			t.Fatalf("appendTimestamp(%d) = %s", unix, got)
		}
	}
	if a := ageAt(dayNumber(1960, 7, 1), dayNumber(2025, 6, 30)); a != 64 {
		t.Errorf("age the day before the 65th birthday = %d", a)
	}
	if a := ageAt(dayNumber(1960, 6, 30), dayNumber(2025, 6, 30)); a != 65 {
		t.Errorf("age on the 65th birthday = %d", a)
	}
}

func TestValueText(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		text string
		any  any
	}{
		{Value{}, "", nil},
		{Value{Kind: Bool, Int: 1}, "true", true},
		{Value{Kind: Bool}, "false", false},
		{Value{Kind: Int, Int: -42}, "-42", int64(-42)},
		{Value{Kind: Decimal, Scale: 2, Int: -1205}, "-12.05", -12.05},
		{Value{Kind: Decimal, Scale: 3, Int: 7}, "0.007", 0.007},
		{Value{Kind: String, Bytes: []byte("黄浦区")}, "黄浦区", "黄浦区"},
		{Value{Kind: Date, Int: 20269}, "2025-06-30", time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)},
		{Value{Kind: Timestamp, Int: 1748880300}, "2025-06-02T16:05:00Z", time.Unix(1748880300, 0).UTC()},
	} {
		if got := tc.v.String(); got != tc.text {
			t.Errorf("%+v: text %q, want %q", tc.v, got, tc.text)
		}
		if got := tc.v.Any(); got != tc.any {
			t.Errorf("%+v: Any %#v, want %#v", tc.v, got, tc.any)
		}
	}
}

// TestEncodingEscapes round-trips awkward strings through both encoders.
func TestEncodingEscapes(t *testing.T) {
	for _, s := range []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "cr\r", "tab\t", "\x01", "浦东,新区", "bad\xffutf8"} {
		v := Value{Kind: String, Bytes: []byte(s)}
		line := appendCSVField(nil, &v)
		recs, err := csv.NewReader(bytes.NewReader(append(append(line, ",x"...), '\n'))).ReadAll()
		// encoding/csv turns \r\n inside quotes into \n and drops a lone \r
		// before the newline; RFC 4180 readers keep them, so compare loosely.
		if err != nil || len(recs) != 1 || strings.ReplaceAll(recs[0][0], "\r", "") != strings.ReplaceAll(s, "\r", "") {
			t.Errorf("CSV %q → %q → %q, %v", s, line, recs, err)
		}
		if s == "" && string(line) != `""` {
			t.Errorf("empty string written as %q, want \"\" (distinct from NULL)", line)
		}
		var back string
		if err := json.Unmarshal(appendJSONValue(nil, &v), &back); err != nil || back != strings.ToValidUTF8(s, "\uFFFD") {
			t.Errorf("JSON %q → %q, %v", s, back, err)
		}
	}
}

// TestGenericSchema covers a schema with no known column names: every type,
// lower-case type names, unique *_id values, categorical strings.
func TestGenericSchema(t *testing.T) {
	cols := []*yrdv1.Column{
		{Name: "reading_id", Type: "varchar"},
		{Name: "station", Type: "VARCHAR"},
		{Name: "ok", Type: "BOOLEAN"},
		{Name: "n", Type: "INTEGER"},
		{Name: "big", Type: "BIGINT"},
		{Name: "x", Type: "DOUBLE"},
		{Name: "amount", Type: "DECIMAL"},
		{Name: "day", Type: "DATE"},
		{Name: "at", Type: "TIMESTAMP"},
		{Name: "age", Type: "VARCHAR"}, // a known name with an odd type
	}
	d := &yrdv1.Dataset{Id: "wuxi.environment.air-quality", OwnerCity: "wuxi", Schema: &yrdv1.Schema{Columns: cols}}
	tb := genTable(t, d, 20000, 1)
	checkTyped(t, d, tb, map[string]bool{"reading_id": true})
	ids := map[string]bool{}
	for _, id := range tb.col("reading_id") {
		if ids[id] || !strings.HasPrefix(id, "R3202-") {
			t.Fatalf("reading_id %s repeated or malformed", id)
		}
		ids[id] = true
	}
	stations := map[string]bool{}
	for _, s := range tb.col("station") {
		stations[s] = true
	}
	if len(stations) < 15 || len(stations) > 21 {
		t.Errorf("%d distinct stations, want about 20 categories and NULL", len(stations))
	}
	// A single nullable column is never NULL: the line would be blank.
	one := &yrdv1.Dataset{Id: "x.y", OwnerCity: "nowhere", Schema: &yrdv1.Schema{Columns: cols[1:2]}}
	for _, s := range genTable(t, one, 2000, 1, WithNullRate(0.5)).col("station") {
		if s == "" {
			t.Fatal("NULL in a one-column table")
		}
	}
}

func TestRowsIterator(t *testing.T) {
	d := sampleDataset(t, "nanjing.civil-affairs.elderly-population")
	r, err := Generate(d, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 10 || len(r.Columns()) != 6 {
		t.Fatalf("Len %d, %d columns", r.Len(), len(r.Columns()))
	}
	var seen []int
	for i, vals := range r.All() {
		seen = append(seen, i)
		if len(vals) != 6 || vals[0].Kind != String {
			t.Fatalf("row %d: %v", i, vals)
		}
		if i == 3 {
			break
		}
	}
	for r.Next() { // continues after the break
		seen = append(seen, -1)
	}
	if len(seen) != 10 || seen[3] != 3 {
		t.Errorf("rows seen %v", seen)
	}
}
