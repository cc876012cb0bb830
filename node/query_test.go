package node_test

import (
	"database/sql"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

const elderlyPurpose = "elderly-care-planning"

// TestRowQueryLocalAndForwardedCarriesVerifiableReceipt: a GENERAL row
// query answered by the owner itself and forwarded from another city gives
// the same permitted rows, personal columns pseudonymised, with a receipt
// that verifies offline and matches the rows.
func TestRowQueryLocalAndForwardedCarriesVerifiableReceipt(t *testing.T) {
	dd := startDataDelta(t, []string{"shanghai", "hangzhou", "nanjing"}, 500, nil)
	district := synth.Districts("shanghai")[0]
	q := "SELECT person_id, district, age FROM shanghai.civil-affairs.elderly-population WHERE district = '" + district + "' ORDER BY district LIMIT 20"
	var got [][]any
	for _, city := range []string{"shanghai", "hangzhou"} {
		r := sqlQuery(t, dd.analyst(t, city), elderlyPurpose, q)
		if len(r.rows) == 0 || len(r.rows) > 20 {
			t.Fatalf("from %s: %d rows, want 1..20", city, len(r.rows))
		}
		if names := columnNames(r.header.GetColumns()); !slices.Equal(names, []string{"person_id", "district", "age"}) {
			t.Fatalf("columns %v", names)
		}
		if tr := r.header.GetColumns()[0].GetTreatment(); tr == yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
			t.Errorf("person_id left the node raw")
		}
		cs := r.trailer.GetCities()
		if len(cs) != 1 || cs[0].GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK || r.trailer.GetPartial() {
			t.Fatalf("trailer %v", r.trailer)
		}
		rc := cs[0].GetReceipt()
		if err := receipt.Verify(rc); err != nil {
			t.Fatalf("receipt from shanghai does not verify: %v", err)
		}
		if err := receipt.CheckRows(rc, r.rows); err != nil {
			t.Fatalf("receipt does not match the rows: %v", err)
		}
		if rc.GetNode() != dd.Node(0).PeerID().String() || rc.GetRequester().GetCity() != city {
			t.Errorf("receipt signed by %s for %v", rc.GetNode(), rc.GetRequester())
		}
		var rows [][]any
		for _, row := range r.rows {
			var vals []any
			for _, v := range row.GetValues() {
				vals = append(vals, cell(v))
			}
			if vals[1] != district {
				t.Fatalf("row %v passes a filter district = %q", vals, district)
			}
			rows = append(rows, vals[1:2])
		}
		if got == nil {
			got = rows
		} else if !slices.EqualFunc(got, rows, func(a, b []any) bool { return slices.Equal(a, b) }) {
			t.Errorf("forwarded result differs from the local one")
		}
		// Changing one released value breaks the receipt.
		r.rows[0].Values[1] = &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: "tampered"}}
		if err := receipt.CheckRows(rc, r.rows); err == nil {
			t.Errorf("CheckRows accepted a changed row")
		}
	}
}

// TestFamilyAggregateMergesCitiesExactly: a family group-by over three
// cities equals the same computation done directly over all raw files,
// with groups under k suppressed per city as each owner's policy requires.
func TestFamilyAggregateMergesCitiesExactly(t *testing.T) {
	dd := startDataDelta(t, []string{"shanghai", "hangzhou", "nanjing"}, 3000, nil)
	r := sqlQuery(t, dd.analyst(t, "hangzhou"), elderlyPurpose,
		"SELECT gender, count(*) AS n, avg(age) AS mean_age, sum(age) FROM family:yrd.elderly-population.v1 GROUP BY gender ORDER BY gender")
	if r.trailer.GetPartial() || len(r.trailer.GetCities()) != 3 {
		t.Fatalf("trailer: %v", r.trailer)
	}
	k := 0
	for _, p := range r.header.GetPlans() {
		if p.GetDecision().GetEffect() == yrdv1.Effect_EFFECT_DENY {
			t.Fatalf("%s denied: %s", p.GetCity(), p.GetDecision().GetReason())
		}
		k = int(p.GetDecision().GetMinGroupSize())
	}
	for _, c := range r.trailer.GetCities() {
		if err := receipt.Verify(c.GetReceipt()); err != nil {
			t.Errorf("%s's receipt: %v", c.GetCity(), err)
		}
	}
	// The same answer straight from the raw files.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []string
	for id, path := range dd.files {
		if strings.HasSuffix(id, ".elderly-population") {
			parts = append(parts, "SELECT gender, count(*) AS n, count(age) AS na, sum(age) AS s FROM read_csv('"+path+"', header = true) GROUP BY gender HAVING count(DISTINCT person_id) >= "+itoa(k))
		}
	}
	rows, err := db.Query("SELECT gender, sum(n), sum(s) / sum(na), sum(s) FROM (" + strings.Join(parts, " UNION ALL ") + ") GROUP BY gender ORDER BY gender NULLS LAST")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var gender sql.NullString
		var n int64
		var mean float64
		var total int64
		if err := rows.Scan(&gender, &n, &mean, &total); err != nil {
			t.Fatal(err)
		}
		if i >= len(r.rows) {
			t.Fatalf("federated result has %d groups, direct more", len(r.rows))
		}
		got := r.rows[i].GetValues()
		// Sums of a noised result are doubles (whole numbers), even with the
		// noise rounded to nothing.
		if g, _ := cell(got[0]).(string); g != gender.String || cell(got[1]) != n || math.Abs(cell(got[2]).(float64)-mean) > 1e-9 || cell(got[3]) != float64(total) {
			t.Errorf("group %d: federated %v, direct %v %d %.6f %d", i, []any{cell(got[0]), cell(got[1]), cell(got[2]), cell(got[3])}, gender.String, n, mean, total)
		}
		i++
	}
	if i != len(r.rows) {
		t.Errorf("federated result has %d groups, direct %d", len(r.rows), i)
	}
}

// TestFanOutWithOneCityStoppedIsPartial: five cities, one node down: the
// result is marked partial and names that city and why.
func TestFanOutWithOneCityStoppedIsPartial(t *testing.T) {
	cities := []string{"shanghai", "hangzhou", "nanjing", "suzhou-js", "hefei"}
	dd := startDataDelta(t, cities, 400, nil)
	if err := dd.Stop(dd.Index("hefei")); err != nil {
		t.Fatal(err)
	}
	r := sqlQuery(t, dd.analyst(t, "nanjing"), elderlyPurpose, "SELECT district, count(*) FROM family:yrd.elderly-population.v1 GROUP BY district")
	if !r.trailer.GetPartial() {
		t.Fatalf("result with hefei stopped is not partial: %v", r.trailer)
	}
	for _, c := range r.trailer.GetCities() {
		switch {
		case c.GetCity() == "hefei":
			if c.GetStatus() != yrdv1.CityStatus_CITY_STATUS_UNAVAILABLE || c.GetReason() == "" {
				t.Errorf("hefei: status %v reason %q, want UNAVAILABLE with a reason", c.GetStatus(), c.GetReason())
			}
		case c.GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK:
			t.Errorf("%s: %v %s", c.GetCity(), c.GetStatus(), c.GetReason())
		}
	}
	if len(r.trailer.GetCities()) != 5 || len(r.rows) == 0 {
		t.Errorf("%d cities reported, %d rows", len(r.trailer.GetCities()), len(r.rows))
	}
}

// TestBadQueriesAreRefusedWithPositionOrName: bad input gets
// InvalidArgument or NotFound naming the position or the name.
func TestBadQueriesAreRefusedWithPositionOrName(t *testing.T) {
	dd := startDataDelta(t, []string{"shanghai", "hangzhou", "nanjing"}, 100, nil)
	conn := dd.analyst(t, "hangzhou")
	for _, c := range []struct {
		name, sql string
		code      codes.Code
		want      string
	}{
		{"unparseable", "SELECT district, FROM shanghai.civil-affairs.elderly-population", codes.InvalidArgument, "line 1, column"},
		{"unsupported construct", "SELECT a.district FROM shanghai.civil-affairs.elderly-population a JOIN x ON 1", codes.InvalidArgument, "line 1, column"},
		{"unknown column", "SELECT shoe_size FROM shanghai.civil-affairs.elderly-population", codes.InvalidArgument, "shoe_size"},
		{"type mismatch", "SELECT district FROM shanghai.civil-affairs.elderly-population WHERE district = 42", codes.InvalidArgument, "district"},
		{"unknown dataset", "SELECT district FROM shanghai.civil-affairs.no-such-thing", codes.NotFound, "shanghai.civil-affairs.no-such-thing"},
		{"unknown family", "SELECT count(*) FROM family:yrd.no-such-family.v1", codes.NotFound, "yrd.no-such-family.v1"},
		{"unmergeable", "SELECT count(DISTINCT district) FROM family:yrd.elderly-population.v1", codes.InvalidArgument, "select item 1"},
		// The first unknown column, and where, not a complaint about a
		// column the misspelling left ungrouped.
		{"unknown GROUP BY column", "SELECT district, count(*) FROM shanghai.civil-affairs.elderly-population GROUP BY distrct",
			codes.InvalidArgument, "unknown column distrct at line 1, column 83"},
		{"first unknown column wins", "SELECT district, count(*) FROM shanghai.civil-affairs.elderly-population\nWHERE agee > 60 GROUP BY distrct",
			codes.InvalidArgument, "unknown column agee at line 2, column 7"},
		// One clear error for a family, not a partial result per city.
		{"unknown column in a family", "SELECT district, count(*) FROM family:yrd.elderly-population.v1 GROUP BY distrct",
			codes.InvalidArgument, "unknown column distrct at line 1, column 74 (not in the schema of family yrd.elderly-population.v1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := runQuery(testCtx(t), conn, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: c.sql}, Purpose: elderlyPurpose})
			if status.Code(err) != c.code || !strings.Contains(status.Convert(err).Message(), c.want) {
				t.Fatalf("%s: %v, want %v mentioning %q", c.sql, err, c.code, c.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRowCapTruncationIsReported: a row result cut at the policy's row cap
// says so in the trailer; one that a smaller LIMIT of the requester's own
// ended does not.
func TestRowCapTruncationIsReported(t *testing.T) {
	dd := startDataDelta(t, []string{"shanghai", "hangzhou", "nanjing"}, 400, nil)
	ps := yrdv1grpc.NewPolicyServiceClient(dd.Conn(0))
	cur, err := ps.GetPolicy(testCtx(t), &yrdv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	params := proto.Clone(cur.GetParams()).(*yrdv1.PolicyParams)
	params.RowCap = 50
	if _, err := ps.UpdatePolicy(testCtx(t), &yrdv1.UpdatePolicyRequest{Params: params, ExpectedVersion: cur.GetParams().GetVersion()}); err != nil {
		t.Fatal(err)
	}
	conn := dd.analyst(t, "hangzhou")
	r := sqlQuery(t, conn, elderlyPurpose, "SELECT district FROM shanghai.civil-affairs.elderly-population")
	if len(r.rows) != 50 || !r.trailer.GetTruncated() || !r.trailer.GetCities()[0].GetTruncated() {
		t.Fatalf("uncapped query: %d rows, truncated %v/%v; want 50 and truncated", len(r.rows), r.trailer.GetTruncated(), r.trailer.GetCities()[0].GetTruncated())
	}
	r = sqlQuery(t, conn, elderlyPurpose, "SELECT district FROM shanghai.civil-affairs.elderly-population LIMIT 10")
	if len(r.rows) != 10 || r.trailer.GetTruncated() {
		t.Fatalf("LIMIT 10: %d rows, truncated %v; want 10, not truncated", len(r.rows), r.trailer.GetTruncated())
	}
}

// TestLocalDataChangedUnderARunningNodeIsRechecked: when a dataset's file
// stops matching the catalog schema the owner stops serving it (queries
// are refused naming the mismatch), and serves it again once fixed.
func TestLocalDataChangedUnderARunningNodeIsRechecked(t *testing.T) {
	dd := startDelta(t, deltaOptions{cities: []string{"shanghai", "hangzhou", "nanjing"}, rows: 100,
		configure: func(_ int, cfg *node.Config) { cfg.DataRecheckInterval = 50 * time.Millisecond }})
	const id = "shanghai.civil-affairs.elderly-population"
	path := dd.files[id]
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(string(good), "\r\n")
	bad := strings.Replace(header, "district", "area", 1) + "\r\n" + body
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	waitServing(t, dd.Node(0), id, false)
	_, err = runQuery(testCtx(t), dd.analyst(t, "hangzhou"), &yrdv1.QueryRequest{
		Question: &yrdv1.QueryRequest_Sql{Sql: "SELECT district FROM " + id + " LIMIT 1"}, Purpose: elderlyPurpose})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "district") {
		t.Fatalf("query on a mismatched file: %v, want FailedPrecondition naming the missing column", err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	waitServing(t, dd.Node(0), id, true)
	sqlQuery(t, dd.analyst(t, "hangzhou"), elderlyPurpose, "SELECT district FROM "+id+" LIMIT 1")
}

func waitServing(t *testing.T, n *node.Node, id string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Serving(id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: serving is not %v after 10 s", id, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
