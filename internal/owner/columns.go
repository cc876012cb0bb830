package owner

import (
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// resultColumns describes the result Compile makes for q under dec, one
// entry per select item (SELECT * expanded as Compile does). names are the
// engine's column names, used where the requester gave no alias. With a
// sumBound, sums are clamped doubles.
func resultColumns(ds *yrdv1.Dataset, q *yrdv1.Query, dec *yrdv1.Decision, names []string, sumBound float64) []*yrdv1.ResultColumn {
	treat := map[string]yrdv1.ColumnTreatment{}
	for _, c := range dec.GetColumns() {
		treat[c.GetColumn()] = c.GetTreatment()
	}
	types := map[string]string{}
	for _, c := range ds.GetSchema().GetColumns() {
		types[c.GetName()] = c.GetType()
	}
	items := selectItems(ds, q, treat)
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
			rc.Type = resultcodec.ResultType(types[x.Column])
			rc.Treatment = treat[x.Column]
			if rc.Treatment == yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED ||
				(rc.Treatment == yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED && strings.EqualFold(types[x.Column], "VARCHAR")) {
				rc.Type = "VARCHAR"
			}
		case *yrdv1.SelectItem_Aggregate:
			rc.Type = aggregateType(x.Aggregate, types, sumBound)
		}
		out[i] = rc
	}
	return out
}

// selectItems are q's select items, SELECT * expanded into the columns
// the decision shows.
func selectItems(ds *yrdv1.Dataset, q *yrdv1.Query, treat map[string]yrdv1.ColumnTreatment) []*yrdv1.SelectItem {
	items := q.GetSelect()
	if len(items) > 0 {
		return items
	}
	for _, c := range ds.GetSchema().GetColumns() {
		if t := treat[c.GetName()]; t != yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD && t != yrdv1.ColumnTreatment_COLUMN_TREATMENT_UNSPECIFIED {
			items = append(items, &yrdv1.SelectItem{Item: &yrdv1.SelectItem_Column{Column: c.GetName()}})
		}
	}
	return items
}

// aggregateType is the result type of aggregate a over columns of types.
func aggregateType(a *yrdv1.AggregateCall, types map[string]string, sumBound float64) string {
	argType := resultcodec.ResultType(types[a.GetColumn()])
	agg, ok := querylang.AggregateOf(a.GetFunction())
	if !ok {
		return argType
	}
	return agg.ResultType(argType, sumBound > 0)
}
