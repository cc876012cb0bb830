package node_test

// Adversarial tests: a requester who tries to get more out of an owner
// node than the policy permits. Each test runs a real in-process delta
// with synthetic CSV data and proves that nothing beyond the permitted
// result leaves the owner: refusals carry the status code and the rule id,
// and return no header, row or trailer; allowed answers are compared
// exactly with the same computation done directly over the raw files.
//
// This file holds the delta, the datasets and the helpers the
// adversarial tests share.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

const (
	advHealth        = "nanjing.health.hospital-visits" // IMPORTANT, patient_id DIRECT
	advHealthPurpose = "public-health-research"
	advRegistry      = "shanghai.public-security.household-registry" // CORE
	advTrips         = "shanghai.connected-vehicles.lingang-trips"   // GENERAL, cross-border eligible
	advTripsPurpose  = "autonomous-driving-research"
	advSHElderly     = "shanghai.civil-affairs.elderly-population" // GENERAL, person_id DIRECT
	advHZElderly     = "hangzhou.civil-affairs.elderly-population"
	advNJElderly     = "nanjing.civil-affairs.elderly-population"
	advRows          = 3000
)

// advK is the policy's default group floor.
var advK = int64(policy.DefaultParams().GetDefaultMinGroupSize())

// advOptions describe an adversarial delta.
// startAdvDelta is startDelta with advRows rows per dataset.
func startAdvDelta(t *testing.T, o deltaOptions) *dataDelta {
	t.Helper()
	o.rows = advRows
	return startDelta(t, o)
}

// advCopies makes n copies of the rows of the CSV file at path for dataset
// id, cheaply: a block file of the rows repeated, linked as often as
// needed; it returns the glob that reads them all.
func advCopies(t testing.TB, dir, id, path string, n int) string {
	t.Helper()
	const perBlock = 100
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, body, ok := strings.Cut(string(data), "\r\n")
	if !ok {
		t.Fatalf("%s: no header line", path)
	}
	heavy := filepath.Join(dir, id+".copies")
	if err := os.Mkdir(heavy, 0o755); err != nil {
		t.Fatal(err)
	}
	block := filepath.Join(dir, id+".block.csv")
	if err := os.WriteFile(block, []byte(header+"\r\n"+strings.Repeat(body, perBlock)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range (n + perBlock - 1) / perBlock {
		if err := os.Symlink(block, filepath.Join(heavy, fmt.Sprintf("part-%04d.csv", i))); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(heavy, "*.csv")
}

// advAnalyst is an analyst of org at city's node.
func advAnalyst(t *testing.T, dd *dataDelta, city, org string) *grpc.ClientConn {
	t.Helper()
	return connAs(t, dd.Cluster, dd.Index(city), org, yrdv1.Role_ROLE_ANALYST)
}

// advGrant has the requester ask for an aggregates grant on dataset id and
// a CDO of the owning organisation approve it; it returns the grant id.
func advGrant(t *testing.T, dd *dataDelta, requester *grpc.ClientConn, id, purpose string) string {
	t.Helper()
	return advGrantOf(t, dd, requester, &yrdv1.RequestGrantRequest{DatasetId: id, Purpose: purpose,
		ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES})
}

// advGrantOf has the requester ask for the grant req describes (for a
// day) and a CDO of the owning organisation approve it; it returns the
// grant id.
func advGrantOf(t *testing.T, dd *dataDelta, requester *grpc.ClientConn, req *yrdv1.RequestGrantRequest) string {
	t.Helper()
	ds := dd.datasets[req.GetDatasetId()]
	req.Duration = durationpb.New(24 * time.Hour)
	resp, err := yrdv1grpc.NewGrantServiceClient(requester).RequestGrant(testCtx(t), req)
	if err != nil {
		t.Fatalf("requesting a grant on %s: %v", req.GetDatasetId(), err)
	}
	cdo := connAs(t, dd.Cluster, dd.Index(ds.GetOwnerCity()), ds.GetOwnerOrg(), yrdv1.Role_ROLE_CDO)
	if _, err := yrdv1grpc.NewGrantServiceClient(cdo).ApproveGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: resp.GetGrant().GetId()}); err != nil {
		t.Fatalf("approving grant %s: %v", resp.GetGrant().GetId(), err)
	}
	return resp.GetGrant().GetId()
}

func advQuery(ctx context.Context, conn *grpc.ClientConn, purpose, sql string) (*result, error) {
	return runQuery(ctx, conn, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sql}, Purpose: purpose})
}

// advRefused runs sql and requires it to fail with code, the message
// mentioning every want, and nothing at all returned. It returns the
// message.
func advRefused(t *testing.T, conn *grpc.ClientConn, purpose, sql string, code codes.Code, want ...string) string {
	t.Helper()
	r, err := advQuery(testCtx(t), conn, purpose, sql)
	if status.Code(err) != code {
		t.Fatalf("%s: %v, want %v", sql, err, code)
	}
	msg := status.Convert(err).Message()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("%s: %q does not mention %q", sql, msg, w)
		}
	}
	advNothing(t, sql, r)
	return msg
}

// advNothing requires that a failed query returned no part of a result.
func advNothing(t *testing.T, what string, r *result) {
	t.Helper()
	if r != nil && (r.header != nil || len(r.rows) > 0 || r.trailer != nil) {
		t.Fatalf("%s: refused, yet returned header %v, %d rows, trailer %v", what, r.header, len(r.rows), r.trailer)
	}
}

// advOK runs sql, which must succeed with one owner's verified receipt
// that matches the rows; it returns the result and the receipt.
func advOK(t *testing.T, conn *grpc.ClientConn, purpose, sql string) (*result, *yrdv1.ResultReceipt) {
	t.Helper()
	r := sqlQuery(t, conn, purpose, sql)
	cs := r.trailer.GetCities()
	if len(cs) != 1 || cs[0].GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK || r.trailer.GetPartial() {
		t.Fatalf("%s: trailer %v", sql, r.trailer)
	}
	rc := cs[0].GetReceipt()
	if err := receipt.Verify(rc); err != nil {
		t.Fatalf("%s: receipt does not verify: %v", sql, err)
	}
	if err := receipt.CheckRows(rc, r.rows); err != nil {
		t.Fatalf("%s: receipt does not match the rows: %v", sql, err)
	}
	return r, rc
}

// advKey renders a group key: a string, or <NULL>.
func advKey(v any) string {
	if v == nil {
		return "<NULL>"
	}
	return fmt.Sprint(v)
}

// advGroups turns a (group, count) result into a map.
func advGroups(t *testing.T, r *result) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, row := range r.rows {
		vs := row.GetValues()
		if len(vs) != 2 {
			t.Fatalf("row %v: want (group, count)", row)
		}
		n, ok := cell(vs[1]).(int64)
		if !ok {
			t.Fatalf("row %v: count is not an integer", row)
		}
		k := advKey(cell(vs[0]))
		if _, dup := out[k]; dup {
			t.Fatalf("group %s appears twice", k)
		}
		out[k] = n
	}
	return out
}

// advDirect answers questions straight from the raw CSV files.
type advDirect struct {
	db *sql.DB
	dd *dataDelta
}

func newAdvDirect(t *testing.T, dd *dataDelta) *advDirect {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &advDirect{db: db, dd: dd}
}

// src is dataset id's raw file as a DuckDB table expression.
func (d *advDirect) src(id string) string {
	return "read_csv('" + d.dd.files[id] + "', header = true)"
}

func (d *advDirect) query(t *testing.T, q string, args ...any) [][]any {
	t.Helper()
	rows, err := d.db.Query(q, args...)
	if err != nil {
		t.Fatalf("direct %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// groups runs a direct (group, rows, individuals) query and returns the
// rows and the individuals per group.
func (d *advDirect) groups(t *testing.T, q string, args ...any) (rows, individuals map[string]int64) {
	t.Helper()
	rows, individuals = map[string]int64{}, map[string]int64{}
	for _, r := range d.query(t, q, args...) {
		k := advKey(r[0])
		rows[k], individuals[k] = r[1].(int64), r[2].(int64)
	}
	return rows, individuals
}

// atLeast keeps the groups with at least k individuals.
func atLeast(rows, individuals map[string]int64, k int64) map[string]int64 {
	out := map[string]int64{}
	for g, n := range rows {
		if individuals[g] >= k {
			out[g] = n
		}
	}
	return out
}

func sameGroups(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// advAudit lists the query records about dataset id on city's node.
func advAudit(t *testing.T, dd *dataDelta, city, id string) []*yrdv1.AuditRecord {
	t.Helper()
	auditor := connAs(t, dd.Cluster, dd.Index(city), city+"-audit", yrdv1.Role_ROLE_AUDITOR)
	resp, err := yrdv1grpc.NewAuditServiceClient(auditor).ListAudit(testCtx(t), &yrdv1.ListAuditRequest{DatasetId: id,
		Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetRecords()
}

// advUpdate changes dataset id in the catalog as its publisher and waits
// until its owner has applied the change and serves it again.
func advUpdate(t *testing.T, dd *dataDelta, id string, change func(*yrdv1.Dataset)) {
	t.Helper()
	ds := dd.datasets[id]
	owner := dd.Index(ds.GetOwnerCity())
	conn, err := dd.PublisherConn(ds)
	if err != nil {
		t.Fatal(err)
	}
	pub := yrdv1grpc.NewCatalogServiceClient(conn)
	cur, err := pub.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	d := cur.GetDataset()
	change(d)
	up, err := pub.UpdateDataset(testCtx(t), &yrdv1.UpdateDatasetRequest{Dataset: d, ExpectedVersion: d.GetVersion()})
	if err != nil {
		t.Fatalf("updating %s: %v", id, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, ok := dd.Node(owner).Catalog().GetDataset(id)
		if ok && got.GetVersion() >= up.GetDataset().GetVersion() && dd.Node(owner).Serving(id) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the owner does not serve version %d", id, up.GetDataset().GetVersion())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
