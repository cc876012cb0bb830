package resultcodec

import (
	"math"
	"strconv"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Text is a value's text form, and whether it is NULL: the one form every
// client that shows or saves a result (the CLI's table and CSV output, the
// web console's table and CSV download) prints, so that the same result
// reads the same everywhere. A DATE is YYYY-MM-DD, a TIMESTAMP RFC 3339 in
// UTC as it travels, a DOUBLE the shortest text that reads back as the
// same double (see FormatDouble).
func Text(v *yrdv1.Value) (string, bool) {
	switch x := v.GetKind().(type) {
	case *yrdv1.Value_StringValue:
		return x.StringValue, false
	case *yrdv1.Value_IntValue:
		return strconv.FormatInt(x.IntValue, 10), false
	case *yrdv1.Value_DoubleValue:
		return FormatDouble(x.DoubleValue), false
	case *yrdv1.Value_BoolValue:
		return strconv.FormatBool(x.BoolValue), false
	case *yrdv1.Value_DateValue:
		return x.DateValue, false
	case *yrdv1.Value_TimestampValue:
		return x.TimestampValue, false
	}
	return "", true
}

// FormatDouble prints the shortest text that reads back as the same
// double, without an exponent unless the number is very large or small;
// NaN and the infinities as JSON clients (protojson) spell them.
func FormatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a != 0 && (a >= 1e21 || a < 1e-6) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
