package policy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// wide is the elderly dataset with n extra masked personal columns, past
// every fixed-size buffer of the decider (shown columns, reason, pack,
// column sets, the lookup map).
func wide(t testing.TB, n int) *Request {
	r := elderlyRows(t)
	for i := range n {
		r.Dataset.Schema.Columns = append(r.Dataset.Schema.Columns, &yrdv1.Column{
			Name: "extra_" + strconv.Itoa(i), Type: "INTEGER", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL, SumBound: 10,
		})
	}
	return r
}

func TestWideDataset(t *testing.T) {
	r := wide(t, 200)
	d := decide(t, r)
	if d.GetEffect() != allowRows || len(d.GetColumns()) != 206 {
		t.Fatalf("decision %v with %d columns", d.GetEffect(), len(d.GetColumns()))
	}
	got := treatments(d)
	if got["extra_0"] != masked || got["extra_199"] != masked || got["age"] != generalised || got["care_level"] != withheld {
		t.Errorf("treatments %v", got)
	}
	if !strings.Contains(d.GetReason(), `"extra_198", "extra_199"; sensitive columns withheld: "care_level"`) {
		t.Errorf("reason lost text past the buffer: ...%s", d.GetReason()[len(d.GetReason())-200:])
	}
	if want := []string{"general.rows", "general.personal.pseudonymise", "general.quasi.generalise", "general.personal.mask",
		"general.sensitive.withhold", "general.quasi.withhold"}; !slices.Equal(d.GetRuleIds(), want) {
		t.Errorf("rule ids %q", d.GetRuleIds())
	}

	// Aggregates over columns past the first 64 use the large column set.
	r.Access.ResultForm = aggs
	r.Access.GroupBy = []string{"extra_150", "district", "extra_100"}
	r.Access.Aggregates = []*yrdv1.Aggregate{count(), agg("sum", "extra_199"), agg("avg", "extra_150")}
	r.Access.Columns = []string{"extra_100", "extra_199", "extra_101"}
	r.Access.OrderBy = []string{"extra_199", "extra_150"}
	d = decide(t, r)
	if d.GetEffect() != deny || !slices.Equal(d.GetRuleIds(), []string{"aggregate.group-columns"}) ||
		!strings.HasSuffix(d.GetReason(), `these are neither: "extra_101"`) {
		t.Errorf("got %v %q: %s", d.GetEffect(), d.GetRuleIds(), d.GetReason())
	}
	if want := []string{"extra_150", "district", "extra_100", "extra_199", "extra_101"}; !slices.Equal(columnNames(d), want) {
		t.Errorf("columns %q, want %q", columnNames(d), want)
	}
	r.Access.Columns = r.Access.Columns[:2]
	if d := decide(t, r); d.GetEffect() != allowAggs {
		t.Errorf("got %v: %s", d.GetEffect(), d.GetReason())
	}
	r.Access.GroupBy = append(r.Access.GroupBy, "extra_150")
	if err := ValidateAccess(r.Dataset, r.Access); err == nil || err.Error() != `group_by[3]: duplicate column "extra_150"` {
		t.Errorf("ValidateAccess = %v", err)
	}
}

func TestMalformedRequestIsOneSentence(t *testing.T) {
	r := elderlyRows(t)
	r.Access.Columns = []string{"age", "nme"}
	r.Access.OrderBy = []string{"agee"}
	d := decide(t, r)
	want := `the request is malformed: columns[1]: unknown column "nme", order_by[0]: unknown column "agee"`
	if d.GetReason() != want || !slices.Equal(d.GetRuleIds(), []string{"request.complete"}) {
		t.Errorf("got %q %q, want %q", d.GetRuleIds(), d.GetReason(), want)
	}
	if !slices.Equal(columnNames(d), []string{"age"}) {
		t.Errorf("columns %q: want the known projected column, withheld", columnNames(d))
	}
}

// The rule id list never drops an id, even past its fixed array.
func TestManyRuleIDs(t *testing.T) {
	var e decider
	var want []string
	for i := range 20 {
		id := "rule." + strconv.Itoa(i)
		e.fire(id)
		e.say("x")
		want = append(want, id)
	}
	if !slices.Equal(e.ids(), want) {
		t.Errorf("ids %q", e.ids())
	}
	e.r = &Request{}
	if d := e.finish(); !slices.Equal(d.GetRuleIds(), want) || strings.Count(d.GetReason(), "; ") != 19 {
		t.Errorf("decision %q %q", d.GetRuleIds(), d.GetReason())
	}
}

// A long hostile value is quoted and shortened, not copied whole.
func TestLongValuesShortened(t *testing.T) {
	r := elderlyRows(t)
	r.Access.Purpose = strings.Repeat("目的", 300)
	d := decide(t, r)
	if len(d.GetReason()) > 400 || !strings.Contains(d.GetReason(), "…") {
		t.Errorf("reason of %d bytes: %s", len(d.GetReason()), d.GetReason())
	}
}
