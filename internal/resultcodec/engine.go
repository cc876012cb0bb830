package resultcodec

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// This file is the one place that turns a value as an engine yields it
// (internal/connector: nil, bool, integers of any width, *big.Int,
// float32/64, string, []byte, time.Time) into a wire Value, and a catalog
// type into a result column's type.

// ResultType is the type a result column of catalog type t has on the
// wire: integers widen to BIGINT and decimals arrive as DOUBLE.
func ResultType(t string) string {
	switch strings.ToUpper(t) {
	case "INTEGER", "BIGINT":
		return "BIGINT"
	case "DOUBLE", "DECIMAL":
		return "DOUBLE"
	}
	return strings.ToUpper(t)
}

// KindOfValue is the kind of the member v carries, Invalid for NULL (an
// unset Value).
func KindOfValue(v *yrdv1.Value) Kind {
	switch v.GetKind().(type) {
	case *yrdv1.Value_StringValue:
		return Strings
	case *yrdv1.Value_IntValue:
		return Ints
	case *yrdv1.Value_DoubleValue:
		return Doubles
	case *yrdv1.Value_BoolValue:
		return Bools
	case *yrdv1.Value_DateValue:
		return Dates
	case *yrdv1.Value_TimestampValue:
		return Timestamps
	}
	return Invalid
}

// EngineValue turns an engine value into a wire value of a column of
// result type typ: an integer of a DOUBLE column becomes a double, an
// integer past int64's range a double, a time a date or a timestamp.
func EngineValue(v any, typ string) (*yrdv1.Value, error) {
	switch x := v.(type) {
	case nil:
		return &yrdv1.Value{}, nil
	case string:
		return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: x}}, nil
	case []byte:
		return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: string(x)}}, nil
	case bool:
		return &yrdv1.Value{Kind: &yrdv1.Value_BoolValue{BoolValue: x}}, nil
	case float64:
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: x}}, nil
	case float32:
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(x)}}, nil
	case time.Time:
		if typ == "DATE" {
			return &yrdv1.Value{Kind: &yrdv1.Value_DateValue{DateValue: x.UTC().Format(time.DateOnly)}}, nil
		}
		return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: x.UTC().Format(time.RFC3339Nano)}}, nil
	case *big.Int:
		if x.IsInt64() {
			return intValue(x.Int64(), typ), nil
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: f}}, nil
	case uint64:
		if x > math.MaxInt64 {
			return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(x)}}, nil
		}
		return intValue(int64(x), typ), nil
	}
	if n, ok := EngineInt64(v); ok {
		return intValue(n, typ), nil
	}
	return nil, fmt.Errorf("result value of unsupported Go type %T", v)
}

func intValue(n int64, typ string) *yrdv1.Value {
	if typ == "DOUBLE" {
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(n)}}
	}
	return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: n}}
}

// EngineInt64 reads an integer engine value (a count, say) and reports
// whether v is an integer that fits int64.
func EngineInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case *big.Int:
		return x.Int64(), x.IsInt64()
	}
	return 0, false
}
