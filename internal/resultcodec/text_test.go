package resultcodec

import (
	"math"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestTextOfEveryKind(t *testing.T) {
	cases := []struct {
		v    *yrdv1.Value
		want string
		null bool
	}{
		{&yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: "a,b"}}, "a,b", false},
		{&yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: -9007199254740993}}, "-9007199254740993", false},
		{&yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: 0.1}}, "0.1", false},
		{&yrdv1.Value{Kind: &yrdv1.Value_BoolValue{BoolValue: true}}, "true", false},
		{&yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: "2025-06-30"}}, "2025-06-30", false},
		{&yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: "2025-06-30T08:00:00Z"}}, "2025-06-30T08:00:00Z", false},
		{&yrdv1.Value{}, "", true},
		{nil, "", true},
	}
	for _, c := range cases {
		if got, null := Text(c.v); got != c.want || null != c.null {
			t.Errorf("Text(%v) = %q, %v; want %q, %v", c.v, got, null, c.want, c.null)
		}
	}
	for f, want := range map[float64]string{1e21: "1e+21", 1e-7: "1e-07", 123456789.5: "123456789.5", -0.25: "-0.25",
		math.NaN(): "NaN", math.Inf(1): "Infinity", math.Inf(-1): "-Infinity", 0: "0"} {
		if got := FormatDouble(f); got != want {
			t.Errorf("FormatDouble(%v) = %s, want %s", f, got, want)
		}
	}
}
