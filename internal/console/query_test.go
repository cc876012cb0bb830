package console

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestSQLErrorMarksTheNodesPosition: the line and column the node names
// (runes, a tab being one) are marked; a position past the line's end
// marks a space; a message without a position, or outside the text, or
// another code, marks nothing.
func TestSQLErrorMarksTheNodesPosition(t *testing.T) {
	sql := "SELECT district,\n\tcount(*) FRM 养老.x\nGROUP BY district"
	v := sqlError(sql, status.New(codes.InvalidArgument, "sql: line 2, column 11: expected FROM, found FRM"))
	if v == nil || v.Line != 2 || v.Column != 11 || len(v.Lines) != 3 {
		t.Fatalf("view %+v", v)
	}
	l := v.Lines[1]
	if !l.Err || l.Before != "\tcount(*) " || l.Mark != "F" || l.After != "RM 养老.x" || v.Lines[0].Err || v.Lines[2].Err {
		t.Fatalf("line 2 marked as %+v", l)
	}
	v = sqlError("SELECT 养老", status.New(codes.InvalidArgument, "line 1, column 10: unexpected end"))
	if v == nil || v.Lines[0].Before != "SELECT 养老" || v.Lines[0].Mark != " " {
		t.Fatalf("end of line: %+v", v)
	}
	for _, st := range []*status.Status{
		status.New(codes.InvalidArgument, "purpose: must be a slug"),
		status.New(codes.InvalidArgument, "line 4, column 1: x"),
		status.New(codes.InvalidArgument, "line 1, column 12: x"),
		status.New(codes.PermissionDenied, "line 1, column 1: x"),
	} {
		if v := sqlError("SELECT 养老", st); v != nil {
			t.Errorf("%v marked %+v", st, v)
		}
	}
}

func intRow(vals ...int64) *yrdv1.Row {
	r := &yrdv1.Row{}
	for _, v := range vals {
		r.Values = append(r.Values, &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: v}})
	}
	return r
}

// TestQueryOutcomeKeepsABoundedResult: past keptRows the session keeps
// only the rows the page draws, still counting them all, and says the
// rows cannot be downloaded.
func TestQueryOutcomeKeepsABoundedResult(t *testing.T) {
	o := newQueryOutcome(queryForm{SQL: "SELECT a FROM x.y"}, false)
	o.header = &yrdv1.ResultHeader{Columns: []*yrdv1.ResultColumn{{Name: "a", Type: "BIGINT"}}}
	batch := make([]*yrdv1.Row, 1000)
	for i := range batch {
		batch[i] = intRow(int64(i))
	}
	for range keptRows/1000 + 1 {
		if err := o.addRows(batch); err != nil {
			t.Fatal(err)
		}
	}
	if o.kept || len(o.rows) != shownRows || o.total != keptRows+1000 {
		t.Fatalf("kept %v, %d rows held, %d counted", o.kept, len(o.rows), o.total)
	}
	if err := o.addRows([]*yrdv1.Row{intRow(1, 2)}); err == nil {
		t.Fatal("a row of two values for one column was taken")
	}
}

// TestQueryCSVIsTheCLIs: the header line, CRLF, NULL as the empty field,
// quoting as RFC 4180 wants.
func TestQueryCSVIsTheCLIs(t *testing.T) {
	o := newQueryOutcome(queryForm{}, false)
	o.header = &yrdv1.ResultHeader{Columns: []*yrdv1.ResultColumn{{Name: "s"}, {Name: "d"}, {Name: "n"}}}
	row := &yrdv1.Row{Values: []*yrdv1.Value{{Kind: &yrdv1.Value_StringValue{StringValue: "a,\"b\""}},
		{Kind: &yrdv1.Value_DoubleValue{DoubleValue: 0.1}}, {}}}
	if err := o.addRows([]*yrdv1.Row{row}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := o.writeCSV(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "s,d,n\r\n\"a,\"\"b\"\"\",0.1,\r\n"; buf.String() != want {
		t.Fatalf("csv %q, want %q", buf.String(), want)
	}
	if _, err := csv.NewReader(&buf).ReadAll(); err != nil {
		t.Fatal(err)
	}
}

// TestQueryPageDraws every part of the page at once: the templates must
// execute for an error, an explain and a result.
func TestQueryPageDraws(t *testing.T) {
	p, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	dec := &yrdv1.Decision{Effect: yrdv1.Effect_EFFECT_ALLOW_AGGREGATES, RuleIds: []string{"general.aggregates"}, MinGroupSize: 10,
		Columns: []*yrdv1.ColumnDecision{{Column: "district", Treatment: yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW}}}
	o := &queryOutcome{form: queryForm{SQL: "SELECT <b>", Purpose: "p"}, kept: true,
		header: &yrdv1.ResultHeader{Columns: []*yrdv1.ResultColumn{{Name: "district"}}, Plans: []*yrdv1.CityPlan{
			{City: "shanghai", DatasetId: "shanghai.a.b", Decision: dec, Noise: &yrdv1.NoisePlan{Mechanism: "discrete-laplace", Epsilon: 0.5,
				Measurements: []*yrdv1.NoiseMeasurement{{Aggregate: "count(*)", Epsilon: 0.5}}}}, {City: "nanjing", DatasetId: "nanjing.a.b"}}},
		trailer: &yrdv1.ResultTrailer{Partial: true, Cities: []*yrdv1.CityResult{
			{City: "shanghai", DatasetId: "shanghai.a.b", Status: yrdv1.CityStatus_CITY_STATUS_OK, Receipt: &yrdv1.ResultReceipt{Node: "x"}},
			{City: "hangzhou", DatasetId: "hangzhou.a.b", Status: yrdv1.CityStatus_CITY_STATUS_DENIED, Reason: "no grant"}}},
		rows: [][]cell{{{Text: "<i>黄浦</i>"}}, {{Null: true}}}, total: 2}
	o.finish()
	v := queryView{Form: o.form, Explain: buildExplain(o, "en"), Result: buildResult(o, "zh"),
		Error: sqlError("SELECT <b>", status.New(codes.InvalidArgument, "line 1, column 8: x"))}
	d := pageData{Lang: "en", Data: v, Who: &yrdv1.Principal{Name: "a"}}
	var buf bytes.Buffer
	if err := p.byName["query"].ExecuteTemplate(&buf, "layout", d); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{`<mark class="err-mark">&lt;</mark>b&gt;`, "&lt;i&gt;黄浦&lt;/i&gt;", `data-status="denied"`,
		`data-verified="no"`, "discrete-laplace", `data-city="nanjing"`, "\nSELECT &lt;b&gt;</textarea>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
