package node

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// resultType is the type a result column of catalog type t has on the
// wire: integers widen to BIGINT and decimals arrive as DOUBLE.
func resultType(t string) string {
	switch strings.ToUpper(t) {
	case "INTEGER", "BIGINT":
		return "BIGINT"
	case "DOUBLE", "DECIMAL":
		return "DOUBLE"
	}
	return strings.ToUpper(t)
}

// resultColumns describes the result Compile makes for q under dec, one
// entry per select item (SELECT * expanded as Compile does). names are the
// engine's column names, used where the requester gave no alias.
func resultColumns(ds *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, names []string, sumBound float64) []*yrdv1.ResultColumn {
	treat := map[string]yrdv1.ColumnTreatment{}
	for _, c := range dec.GetColumns() {
		treat[c.GetColumn()] = c.GetTreatment()
	}
	types := map[string]string{}
	for _, c := range ds.GetSchema().GetColumns() {
		types[c.GetName()] = c.GetType()
	}
	items := q.GetSelect()
	if len(items) == 0 {
		for _, c := range ds.GetSchema().GetColumns() {
			if t := treat[c.GetName()]; t != yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD && t != yrdv1.ColumnTreatment_COLUMN_TREATMENT_UNSPECIFIED {
				items = append(items, &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: c.GetName()}})
			}
		}
	}
	out := make([]*yrdv1.ResultColumn, len(items))
	for i, it := range items {
		rc := &yrdv1.ResultColumn{Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW}
		if i < len(names) {
			rc.Name = names[i]
		}
		if it.GetAlias() != "" {
			rc.Name = it.GetAlias()
		}
		switch x := it.GetItem().(type) {
		case *yrdv1.SelectItem_Column:
			rc.Type = resultType(types[x.Column])
			rc.Treatment = treat[x.Column]
			if rc.Treatment == yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED ||
				(rc.Treatment == yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED && strings.EqualFold(types[x.Column], "VARCHAR")) {
				rc.Type = "VARCHAR"
			}
		case *yrdv1.SelectItem_Aggregate:
			a := x.Aggregate
			switch a.GetFunction() {
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT:
				rc.Type = "BIGINT"
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_AVG:
				rc.Type = "DOUBLE"
			case yrdv1.AggregateFunction_AGGREGATE_FUNCTION_SUM:
				rc.Type = resultType(types[a.GetColumn()])
				if sumBound > 0 {
					rc.Type = "DOUBLE"
				}
			default:
				rc.Type = resultType(types[a.GetColumn()])
			}
		}
		out[i] = rc
	}
	return out
}

// toValue turns an engine value into a wire value of the column's type.
func toValue(v any, typ string) (*yrdv1.Value, error) {
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
	case int64:
		return intValue(x, typ), nil
	case int32:
		return intValue(int64(x), typ), nil
	case int16:
		return intValue(int64(x), typ), nil
	case int8:
		return intValue(int64(x), typ), nil
	case int:
		return intValue(int64(x), typ), nil
	case uint8:
		return intValue(int64(x), typ), nil
	case uint16:
		return intValue(int64(x), typ), nil
	case uint32:
		return intValue(int64(x), typ), nil
	case uint64:
		if x > math.MaxInt64 {
			return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(x)}}, nil
		}
		return intValue(int64(x), typ), nil
	}
	return nil, fmt.Errorf("result value of unsupported Go type %T", v)
}

func intValue(n int64, typ string) *yrdv1.Value {
	if typ == "DOUBLE" {
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: float64(n)}}
	}
	return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: n}}
}

// int64Of reads an integer result value (a count), for checks.
func int64Of(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
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
