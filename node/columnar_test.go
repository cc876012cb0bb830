package node_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestColumnarMatchesRows: a query asked for with columnar set gets column
// batches, at the owner, forwarded and for a family merged at the home
// node, carrying the same header and rows as the row form (old clients
// still get rows only), with NULLs of every kind, and a receipt that
// verifies and whose digest matches the rows as received.
func TestColumnarMatchesRows(t *testing.T) {
	dd := startDataDelta(t, []string{"shanghai", "hangzhou", "nanjing"}, 400, nil)
	cases := []struct {
		name, city, purpose, sql string
		dataset, nulls           bool
	}{
		{"owner rows", "nanjing", "traffic-management", "SELECT * FROM nanjing.transport.road-traffic-flow", true, false},
		{"forwarded rows", "shanghai", "traffic-management", "SELECT * FROM nanjing.transport.road-traffic-flow", true, false},
		{"pseudonymised, bool and int NULLs", "hangzhou", elderlyPurpose, "SELECT * FROM shanghai.civil-affairs.elderly-population", true, true},
		{"aggregate", "shanghai", elderlyPurpose, "SELECT living_alone, district, count(*), avg(age), sum(age) FROM shanghai.civil-affairs.elderly-population GROUP BY living_alone, district", true, false},
		{"family merged at home", "nanjing", elderlyPurpose, "SELECT living_alone, count(*), avg(age) FROM family:yrd.elderly-population.v1 GROUP BY living_alone", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dd.analyst(t, c.city)
			var got [2]*result
			for i, columnar := range []bool{false, true} {
				r, err := runQuery(testCtx(t), conn, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: c.sql}, Purpose: c.purpose,
					BatchRows: 64, Columnar: columnar})
				if err != nil {
					t.Fatalf("columnar %v: %v", columnar, err)
				}
				if r.trailer == nil || r.trailer.GetPartial() || r.trailer.GetRows() != uint64(len(r.rows)) || len(r.rows) == 0 {
					t.Fatalf("columnar %v: %d rows, trailer %v", columnar, len(r.rows), r.trailer)
				}
				if want := 0; !columnar && r.columnBatches != want {
					t.Fatalf("a row request got %d column batches", r.columnBatches)
				}
				if columnar && (r.columnBatches == 0 || r.columnBatches != r.batches) {
					t.Fatalf("a columnar request got %d column batches of %d", r.columnBatches, r.batches)
				}
				if c.dataset {
					rc := r.trailer.GetCities()[0].GetReceipt()
					if err := receipt.Verify(rc); err != nil {
						t.Fatal(err)
					}
					if err := receipt.CheckRows(rc, r.rows); err != nil {
						t.Fatalf("columnar %v: %v", columnar, err)
					}
				}
				got[i] = r
			}
			if !slices.EqualFunc(got[0].header.GetColumns(), got[1].header.GetColumns(), func(a, b *yrdv1.ResultColumn) bool {
				return a.GetName() == b.GetName() && a.GetType() == b.GetType() && a.GetTreatment() == b.GetTreatment()
			}) {
				t.Fatalf("headers differ: %v and %v", got[0].header.GetColumns(), got[1].header.GetColumns())
			}
			// The engine's row order is not fixed: compare the rows as sets.
			keys := func(r *result) []string {
				out := make([]string, len(r.rows))
				for i, row := range r.rows {
					out[i] = prototext.Format(row)
				}
				slices.Sort(out)
				return out
			}
			rows, cols := keys(got[0]), keys(got[1])
			if !slices.Equal(rows, cols) {
				t.Fatalf("columnar rows differ from the row form's (%d and %d rows)", len(cols), len(rows))
			}
			if c.nulls {
				null := false
				for _, row := range got[1].rows {
					for _, v := range row.GetValues() {
						null = null || v.GetKind() == nil
					}
				}
				if !null {
					t.Fatal("no NULL in the result: the case tests less than it says")
				}
			}
		})
	}
}
