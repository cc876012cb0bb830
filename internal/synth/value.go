package synth

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Kind is the representation of a generated value. It follows from the
// column's declared type: BOOLEAN → Bool, INTEGER and BIGINT → Int, DOUBLE
// and DECIMAL → Decimal, VARCHAR → String, DATE → Date, TIMESTAMP →
// Timestamp; any column may be Null.
type Kind uint8

const (
	Null Kind = iota
	Bool
	Int
	// Decimal is Int scaled down by 10^Scale. DOUBLE columns use it too:
	// generated measurements have a fixed precision (a speed to 0.1 km/h),
	// and integer formatting is both faster and free of float artefacts.
	Decimal
	String
	// Date is Int days since 1970-01-01.
	Date
	// Timestamp is Int seconds since 1970-01-01T00:00:00Z.
	Timestamp
)

// Value is one generated cell. Bytes of a String aliases the generator's
// buffer and is valid only until the next call of Rows.Next; copy it (or
// use String or Any) to keep it.
type Value struct {
	Kind  Kind
	Scale uint8 // Decimal only: digits after the decimal point
	Int   int64 // Bool (0 or 1), Int, Decimal (unscaled), Date, Timestamp
	Bytes []byte
}

// IsNull reports whether the value is SQL NULL.
func (v Value) IsNull() bool { return v.Kind == Null }

// AppendText appends the value's text form, as written unquoted to CSV:
// DATE as YYYY-MM-DD, TIMESTAMP as RFC 3339 in UTC, BOOLEAN as true or
// false, DECIMAL with exactly Scale decimals, NULL as nothing.
func (v Value) AppendText(dst []byte) []byte {
	switch v.Kind {
	case Bool:
		if v.Int != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Int:
		return strconv.AppendInt(dst, v.Int, 10)
	case Decimal:
		return appendDecimal(dst, v.Int, int(v.Scale))
	case String:
		return append(dst, v.Bytes...)
	case Date:
		return appendDate(dst, v.Int)
	case Timestamp:
		return appendTimestamp(dst, v.Int)
	}
	return dst
}

// String returns the text form (see AppendText); "" for NULL.
func (v Value) String() string { return string(v.AppendText(nil)) }

// Any returns the value as a Go value for database drivers: nil, bool,
// int64, float64 (Decimal), string, or time.Time in UTC (Date at midnight).
func (v Value) Any() any {
	switch v.Kind {
	case Bool:
		return v.Int != 0
	case Int:
		return v.Int
	case Decimal:
		f, _ := strconv.ParseFloat(string(appendDecimal(nil, v.Int, int(v.Scale))), 64)
		return f
	case String:
		return string(v.Bytes)
	case Date:
		return time.Unix(v.Int*86400, 0).UTC()
	case Timestamp:
		return time.Unix(v.Int, 0).UTC()
	}
	return nil
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

func appendDecimal(dst []byte, n int64, scale int) []byte {
	if scale == 0 {
		return strconv.AppendInt(dst, n, 10)
	}
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	p := pow10[scale]
	dst = strconv.AppendInt(dst, n/p, 10)
	dst = append(dst, '.')
	frac := n % p
	for q := p / 10; q > 0; q /= 10 {
		dst = append(dst, byte('0'+frac/q%10))
	}
	return dst
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse); about ten times cheaper than
// going through time.Time, which matters at millions of dates per second.
func civil(days int64) (y, m, d int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		yy++
	}
	return int(yy), m, d
}

// dayNumber is the inverse of civil.
func dayNumber(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := int64(y - era*400)
	mm := int64(m)
	if m > 2 {
		mm -= 3
	} else {
		mm += 9
	}
	doy := (153*mm+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + doe - 719468
}

func append2(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }

func appendDate(dst []byte, days int64) []byte {
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return time.Unix(days*86400, 0).UTC().AppendFormat(dst, time.DateOnly)
	}
	dst = append2(dst, y/100)
	dst = append2(dst, y%100)
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	return append2(dst, d)
}

// appendDateCompact writes YYYYMMDD, as inside an identity card number.
func appendDateCompact(dst []byte, days int64) []byte {
	y, m, d := civil(days)
	dst = append2(dst, y/100)
	dst = append2(dst, y%100)
	dst = append2(dst, m)
	return append2(dst, d)
}

func appendTimestamp(dst []byte, unix int64) []byte {
	days, sec := unix/86400, unix%86400
	if sec < 0 {
		days--
		sec += 86400
	}
	dst = appendDate(dst, days)
	dst = append(dst, 'T')
	dst = append2(dst, int(sec/3600))
	dst = append(dst, ':')
	dst = append2(dst, int(sec/60%60))
	dst = append(dst, ':')
	dst = append2(dst, int(sec%60))
	return append(dst, 'Z')
}

// appendCSVField writes v as one RFC 4180 field. Only strings can need
// quotes; an empty string is quoted so that it differs from NULL, which
// PostgreSQL's COPY and DuckDB read as the unquoted empty field.
func appendCSVField(dst []byte, v *Value) []byte {
	if v.Kind != String {
		return v.AppendText(dst)
	}
	return appendCSVString(dst, v.Bytes)
}

func appendCSVString(dst, s []byte) []byte {
	quote := len(s) == 0
	for _, c := range s {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for _, c := range s {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// appendJSONValue writes v as a JSON value: numbers and booleans bare,
// dates and timestamps as strings in their text form, NULL as null.
func appendJSONValue(dst []byte, v *Value) []byte {
	switch v.Kind {
	case Null:
		return append(dst, "null"...)
	case String:
		return appendJSONString(dst, v.Bytes)
	case Date, Timestamp:
		dst = append(dst, '"')
		dst = v.AppendText(dst)
		return append(dst, '"')
	}
	return v.AppendText(dst)
}

const hexDigits = "0123456789abcdef"

// appendJSONString escapes quotes, backslashes, control characters and
// invalid UTF-8; everything else, Chinese included, is copied as is.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(dst, '"')
}
