package connector_test

import (
	"fmt"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// People aged 80 and over per district, largest first, under an
// aggregates-only decision with k = 10: districts with fewer than ten
// distinct people never reach the result.
func ExampleCompile() {
	var d *yrdv1.Dataset
	for _, ds := range synth.ForCity("shanghai") {
		if ds.GetId() == "shanghai.civil-affairs.elderly-population" {
			d = ds
		}
	}
	dec := &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_ALLOW_AGGREGATES, MinGroupSize: 10}
	for _, c := range d.GetSchema().GetColumns() {
		t := yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW
		if c.GetName() == "care_level" {
			t = yrdv1.ColumnTreatment_COLUMN_TREATMENT_WITHHELD
		}
		dec.Columns = append(dec.Columns, &yrdv1.ColumnDecision{Column: c.GetName(), Treatment: t})
	}
	q := &yrdv1.Query{
		Source: &yrdv1.Query_DatasetId{DatasetId: d.GetId()},
		Select: []*yrdv1.SelectItem{
			{Item: &yrdv1.SelectItem_Column{Column: "district"}},
			{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT}}, Alias: "people"},
		},
		Where: &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{
			Column: "age", Op: yrdv1.CompareOp_COMPARE_OP_GE,
			Value: &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: 80}}}}},
		GroupBy: []string{"district"},
		OrderBy: []*yrdv1.OrderItem{{Key: &yrdv1.OrderItem_SelectIndex{SelectIndex: 1}, Descending: true}},
		Limit:   5,
	}
	sql, args, err := connector.Compile(d, q, dec, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sql)
	fmt.Println(args...)
	// Output:
	// SELECT "district", count(*) AS "people" FROM (SELECT "district" AS "district", "person_id" AS "__yrd_person_key" FROM "shanghai.civil-affairs.elderly-population" WHERE "age" >= ?) AS "t" GROUP BY "district" HAVING count(DISTINCT "__yrd_person_key") >= ? ORDER BY 2 DESC NULLS LAST LIMIT ?
	// 80 10 5
}
