package node_test

// Adversarial tests: a requester who tries to get more out of an owner
// node than the policy permits. Each test runs a real in-process delta
// with synthetic CSV data and proves that nothing beyond the permitted
// result leaves the owner: refusals carry the status code and the rule id,
// and return no header, row or trailer; allowed answers are compared
// exactly with the same computation done directly over the raw files.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	"github.com/yrd-exchange/yrdnode/node"
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

// TestAdversarialDifferencingOnImportantData: an analyst with an approved
// aggregates grant on IMPORTANT hospital visits tries to learn about one
// person by differencing two aggregates. Filtering on the direct
// identifier (patient_id <> 'X' and its disguises) is refused with rule
// identifier.direct and returns nothing. A pair of allowed queries whose
// filters differ by exactly one individual (one visit excluded by its
// non-identifying visit_id) on a group of more than k individuals, so that
// both pass the k floor: the second answer holds that group back (rule
// aggregate.difference, on the receipt, the trailer's summary and the
// audit record, which never name the group) and releases every other
// group; asked the other way round, the same. Every answer is noised
// (IMPORTANT data always is) and spends the organisation's budget for the
// dataset: two identical queries give different counts, and once the
// budget is spent the next query is ResourceExhausted with nothing
// returned. What the attacker learns: that some group was held back,
// never a count of k-1 or fewer people, and no exact count at all.
func TestAdversarialDifferencingOnImportantData(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	direct := newAdvDirect(t, dd)
	hv := direct.src(advHealth)
	analyst := dd.analyst(t, "hangzhou")
	grant := advGrant(t, dd, analyst, advHealth, advHealthPurpose)

	// Differencing on the direct identifier, in every disguise the
	// grammar allows: refused before any data is read.
	someone := direct.query(t, "SELECT min(patient_id) FROM "+hv)[0][0].(string)
	for _, where := range []string{
		"patient_id <> '" + someone + "'",
		"NOT (patient_id = '" + someone + "')",
		"patient_id NOT IN ('" + someone + "')",
		"age >= 0 AND patient_id > '" + someone + "'",
		"age < 200 OR patient_id IS NULL",
	} {
		advRefused(t, analyst, advHealthPurpose, "SELECT department, count(*) FROM "+advHealth+" WHERE "+where+" GROUP BY department",
			codes.PermissionDenied, policy.RuleIdentifierDirect, "patient_id")
	}

	// A department with more than k patients, one of whom has exactly one
	// visit there: excluding that visit removes exactly one individual.
	dept, visit := advLoneVisit(t, direct, hv)
	all := "SELECT department, count(*) AS visits FROM " + advHealth + " GROUP BY department"
	less := "SELECT department, count(*) AS visits FROM " + advHealth + " WHERE visit_id <> '" + visit + "' GROUP BY department"
	_, exactInd := direct.groups(t, "SELECT department, count(*), count(DISTINCT patient_id) FROM "+hv+" GROUP BY department")
	released := atLeast(exactInd, exactInd, advK)
	spent := 0.0
	for i, pair := range [][2]string{{all, less}, {less, all}} {
		// A fresh organisation per order: the difference check is kept per
		// requesting organisation and dataset.
		conn := analyst
		if i == 1 {
			conn = advAnalyst(t, dd, "hangzhou", "hangzhou-other-lab")
			advGrant(t, dd, conn, advHealth, advHealthPurpose)
		}
		r1, _ := advOK(t, conn, advHealthPurpose, pair[0])
		if got := advGroups(t, r1); len(got) != len(released) {
			t.Fatalf("order %d: first answer has groups %v, want those of at least %d individuals %v", i, got, advK, released)
		}
		r2, rc2 := advOK(t, conn, advHealthPurpose, pair[1])
		got2 := advGroups(t, r2)
		if _, ok := got2[dept]; ok || len(got2) != len(released)-1 {
			t.Fatalf("order %d: the second answer released %v; want every group but %s (%d individuals, one fewer or more than before)", i, got2, dept, exactInd[dept])
		}
		sup := r2.trailer.GetCities()[0].GetSuppressed()
		if len(sup) != 1 || sup[0].GetRuleId() != policy.RuleDifference || sup[0].GetGroups() != 1 || strings.Contains(sup[0].GetReason(), dept) {
			t.Fatalf("order %d: suppression summary %v; want one group held back by %s, unnamed", i, sup, policy.RuleDifference)
		}
		if !slices.Contains(rc2.GetRuleIds(), policy.RuleDifference) || rc2.GetGrantId() == "" || rc2.GetNoise().GetEpsilon() != policy.DefaultDefaultQueryEpsilon {
			t.Fatalf("order %d: receipt %v; want rule %s, the grant and noise of epsilon %v", i, rc2, policy.RuleDifference, policy.DefaultDefaultQueryEpsilon)
		}
		if i == 0 {
			spent += 2 * policy.DefaultDefaultQueryEpsilon
			if left := rc2.GetNoise().GetBudgetRemaining(); left != policy.DefaultParams().GetPrivacyBudget()-spent || rc2.GetNoise().GetBudgetFamily() != advHealth {
				t.Fatalf("receipt noise %v; want %v left of the budget for %s", rc2.GetNoise(), policy.DefaultParams().GetPrivacyBudget()-spent, advHealth)
			}
		}
	}
	held := false
	for _, rec := range advAudit(t, dd, "nanjing", advHealth) {
		if rec.GetRows() > 0 && slices.Contains(rec.GetRuleIds(), policy.RuleDifference) && strings.Contains(rec.GetDetail(), "held back 1 groups") {
			held = true
		}
	}
	if !held {
		t.Fatalf("no release record on nanjing's audit trail says a group was held back by %s", policy.RuleDifference)
	}

	// Noise: two identical queries give different counts; the budget runs
	// out and the next query returns nothing.
	advUpdate(t, dd, advHealth, func(d *yrdv1.Dataset) { d.NoiseEpsilon = 1 })
	const noisyQ = "SELECT department, count(*) FROM " + advHealth + " GROUP BY department"
	var answers []map[string]int64
	for budget := policy.DefaultParams().GetPrivacyBudget() - spent; budget >= 1; budget-- {
		r, rc := advOK(t, analyst, advHealthPurpose, noisyQ)
		if nz := rc.GetNoise(); nz.GetEpsilon() != 1 || nz.GetBudgetRemaining() != budget-1 || rc.GetGrantId() != grant {
			t.Fatalf("receipt noise %v, grant %s; want epsilon 1, %v left, grant %s", nz, rc.GetGrantId(), budget-1, grant)
		}
		answers = append(answers, advGroups(t, r))
	}
	if len(answers) < 2 || sameGroups(answers[0], answers[1]) {
		t.Fatalf("identical noisy queries gave the same counts %v", answers)
	}
	advRefused(t, analyst, advHealthPurpose, noisyQ, codes.ResourceExhausted, "privacy budget exhausted", "hangzhou-analytics", advHealth)
	advRefused(t, analyst, advHealthPurpose, "SELECT count(*) FROM "+advHealth, codes.ResourceExhausted, "privacy budget exhausted")
	// Both refusals are on the owner's record under the budget rule.
	recs := withRule(t, dd.Cluster, dd.Index("nanjing"), node.RuleBudgetExhausted)
	if len(recs) != 2 {
		t.Fatalf("budget refusals on Nanjing's record: %v, want 2", recs)
	}
	for _, rec := range recs {
		if rec.GetRequester().GetOrg() != "hangzhou-analytics" || rec.GetDatasetId() != advHealth || rec.GetDecision() != yrdv1.Effect_EFFECT_DENY {
			t.Fatalf("budget refusal %v", rec)
		}
	}
}

// advLoneVisit finds a department with more than k patients and, in it, a
// patient with exactly one visit there: the department and that visit.
func advLoneVisit(t *testing.T, direct *advDirect, hv string) (dept, visit string) {
	t.Helper()
	found := direct.query(t, `SELECT department, min(visit_id) FROM (
		SELECT department, patient_id, min(visit_id) AS visit_id FROM `+hv+` WHERE department IS NOT NULL
		GROUP BY department, patient_id HAVING count(*) = 1) GROUP BY department
		HAVING department IN (SELECT department FROM `+hv+` GROUP BY department HAVING count(DISTINCT patient_id) > ?)
		ORDER BY department LIMIT 1`, advK)
	if len(found) == 0 {
		t.Fatalf("the data has no department of more than %d patients with a one-visit patient", advK)
	}
	return found[0][0].(string), found[0][1].(string)
}

// TestAdversarialDirectIdentifierNeverFiltersGroupsOrOrders: filtering,
// grouping or ordering on a direct identifier, in rows or aggregates, is
// refused with PermissionDenied naming rule identifier.direct and the
// column, on GENERAL (person_id) and on IMPORTANT data under an approved
// grant (patient_id), forwarded from another city; nothing is returned and
// every refusal is on the owner's audit record as a denial.
func TestAdversarialDirectIdentifierNeverFiltersGroupsOrOrders(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	direct := newAdvDirect(t, dd)
	analyst := dd.analyst(t, "hangzhou")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)
	for _, c := range []struct {
		id, purpose, key string
		queries          []string
	}{
		{advSHElderly, elderlyPurpose, "person_id", []string{
			"SELECT district, count(*) FROM %[1]s WHERE %[2]s = '%[3]s' GROUP BY district",
			"SELECT district, age FROM %[1]s WHERE %[2]s <> '%[3]s'",
			"SELECT district FROM %[1]s WHERE %[2]s IN ('%[3]s')",
			"SELECT count(*) FROM %[1]s WHERE %[2]s BETWEEN '%[3]s' AND '%[3]s'",
			"SELECT %[2]s, count(*) FROM %[1]s GROUP BY %[2]s",
			"SELECT %[2]s, district FROM %[1]s ORDER BY %[2]s LIMIT 1",
			"SELECT district FROM %[1]s ORDER BY %[2]s DESC LIMIT 1",
		}},
		{advHealth, advHealthPurpose, "patient_id", []string{
			"SELECT department, count(*) FROM %[1]s WHERE %[2]s = '%[3]s' GROUP BY department",
			"SELECT count(*) FROM %[1]s WHERE NOT (%[2]s <> '%[3]s')",
			"SELECT sum(cost) FROM %[1]s WHERE %[2]s >= '%[3]s' AND age > 0",
			"SELECT %[2]s, count(*) FROM %[1]s GROUP BY %[2]s",
			"SELECT department, %[2]s, count(*) FROM %[1]s GROUP BY department, %[2]s ORDER BY 3 LIMIT 1",
			"SELECT count(DISTINCT department) FROM %[1]s WHERE %[2]s IS NOT NULL",
		}},
	} {
		someone := direct.query(t, "SELECT min("+c.key+") FROM "+direct.src(c.id))[0][0].(string)
		for _, q := range c.queries {
			advRefused(t, analyst, c.purpose, fmt.Sprintf(q, c.id, c.key, someone), codes.PermissionDenied, policy.RuleIdentifierDirect, c.key)
		}
		owner := dd.datasets[c.id].GetOwnerCity()
		denied := 0
		for _, rec := range advAudit(t, dd, owner, c.id) {
			if slices.Contains(rec.GetRuleIds(), policy.RuleIdentifierDirect) {
				if rec.GetDecision() != yrdv1.Effect_EFFECT_DENY || rec.GetRequester().GetCity() != "hangzhou" || rec.GetRows() != 0 {
					t.Fatalf("%s: audit record %v", c.id, rec)
				}
				denied++
			}
		}
		if denied != len(c.queries) {
			t.Fatalf("%s: %d denials on the owner's record, want %d", c.id, denied, len(c.queries))
		}
	}
}

// TestAdversarialMinMaxOfPersonalColumnsRefused: min or max would release
// one person's value, so over a PERSONAL or SENSITIVE column it is refused
// (rule aggregate.no-minmax-personal, naming the call) on GENERAL and on
// IMPORTANT data, grouped or not; min/max over a non-personal column is
// allowed where the owner releases exact aggregates (min and max carry no
// noise) and equals the direct computation over groups of at least k.
func TestAdversarialMinMaxOfPersonalColumnsRefused(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{adjust: func(d *yrdv1.Dataset) {
		if d.GetId() == advSHElderly {
			d.ExactAggregates = true
		}
	}})
	direct := newAdvDirect(t, dd)
	analyst := dd.analyst(t, "nanjing")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)
	for _, c := range []struct{ purpose, sql, call string }{
		{elderlyPurpose, "SELECT district, min(age) FROM " + advSHElderly + " GROUP BY district", "min(age)"},
		{elderlyPurpose, "SELECT max(care_level) FROM " + advSHElderly, "max(care_level)"},
		{elderlyPurpose, "SELECT gender, max(age), count(*) FROM " + advSHElderly + " GROUP BY gender", "max(age)"},
		{elderlyPurpose, "SELECT district, max(person_id) FROM " + advSHElderly + " GROUP BY district", "max(person_id)"},
		{advHealthPurpose, "SELECT department, max(cost) FROM " + advHealth + " GROUP BY department", "max(cost)"},
		{advHealthPurpose, "SELECT min(visit_date) FROM " + advHealth + " WHERE department = '内科'", "min(visit_date)"},
		{advHealthPurpose, "SELECT department, min(diagnosis) FROM " + advHealth + " GROUP BY department", "min(diagnosis)"},
	} {
		advRefused(t, analyst, c.purpose, c.sql, codes.PermissionDenied, policy.RuleNoMinMaxPersonal, c.call)
	}

	// district is not personal information: its min and max per gender
	// are released, over groups of at least k only.
	r, _ := advOK(t, analyst, elderlyPurpose, "SELECT gender, min(district), max(district) FROM "+advSHElderly+" GROUP BY gender")
	want := map[string][2]string{}
	for _, row := range direct.query(t, "SELECT gender, min(district), max(district) FROM "+direct.src(advSHElderly)+
		" GROUP BY gender HAVING count(DISTINCT person_id) >= ?", advK) {
		want[advKey(row[0])] = [2]string{row[1].(string), row[2].(string)}
	}
	if len(r.rows) != len(want) {
		t.Fatalf("%d groups, want %d", len(r.rows), len(want))
	}
	for _, row := range r.rows {
		v := row.GetValues()
		if w := want[advKey(cell(v[0]))]; cell(v[1]) != w[0] || cell(v[2]) != w[1] {
			t.Fatalf("gender %v: min/max %v %v, want %v", cell(v[0]), cell(v[1]), cell(v[2]), w)
		}
	}
}

// TestAdversarialFilterShrinkingGroupBelowKIsSuppressed: an allowed
// aggregate whose filter leaves some groups with fewer than k individuals
// (checked directly on the CSV: they exist, with 1 to k-1 individuals)
// returns exactly the groups of at least k and none of the shrunk ones.
// A dataset's min_group_size raises k: groups that the default k would
// release but the dataset's k does not are absent, and the plan and the
// receipt carry the dataset's k. Rows cannot be filtered on a column the
// result withholds or pseudonymises (general.hidden-predicate), while a
// filter on a non-personal column the rows do not show gives exactly the
// matching rows.
func TestAdversarialFilterShrinkingGroupBelowKIsSuppressed(t *testing.T) {
	const datasetK = 40
	dd := startAdvDelta(t, deltaOptions{noiseOff: true, adjust: func(d *yrdv1.Dataset) {
		if d.GetId() == advHZElderly {
			d.MinGroupSize = datasetK
		}
	}})
	direct := newAdvDirect(t, dd)
	for _, c := range []struct {
		id, from string
		k        int64
		lo       int64 // groups with lo ≤ individuals < k must exist and be hidden
	}{
		{advSHElderly, "hangzhou", advK, 1},
		{advHZElderly, "shanghai", datasetK, advK},
	} {
		src := direct.src(c.id)
		const q = "SELECT district, count(*), count(DISTINCT person_id) FROM %s WHERE age >= ? GROUP BY district"
		// The lowest age floor that leaves a hidden group and a shown one.
		var floor int64 = -1
		var rows, ind map[string]int64
		for a := int64(60); a < 110 && floor < 0; a++ {
			rows, ind = direct.groups(t, fmt.Sprintf(q, src), a)
			var hidden, shown bool
			for _, n := range ind {
				hidden = hidden || (n >= c.lo && n < c.k)
				shown = shown || n >= c.k
			}
			if hidden && shown {
				floor = a
			}
		}
		if floor < 0 {
			t.Fatalf("%s: no age floor leaves groups of %d to %d individuals next to larger ones", c.id, c.lo, c.k-1)
		}
		r, rc := advOK(t, dd.analyst(t, c.from), elderlyPurpose,
			fmt.Sprintf("SELECT district, count(*) AS n FROM %s WHERE age >= %d GROUP BY district ORDER BY n", c.id, floor))
		got, want := advGroups(t, r), atLeast(rows, ind, c.k)
		if !sameGroups(got, want) {
			t.Fatalf("%s, age >= %d: released %v, want exactly the groups of at least %d individuals %v (all: %v)", c.id, floor, got, c.k, want, ind)
		}
		for g, n := range ind {
			if _, ok := got[g]; ok && n < c.k {
				t.Fatalf("%s: group %s of %d individuals released", c.id, g, n)
			}
		}
		if rc.GetMinGroupSize() != uint32(c.k) || r.header.GetPlans()[0].GetDecision().GetMinGroupSize() != uint32(c.k) {
			t.Fatalf("%s: receipt k %d, plan k %d, want %d", c.id, rc.GetMinGroupSize(), r.header.GetPlans()[0].GetDecision().GetMinGroupSize(), c.k)
		}
	}

	analyst := dd.analyst(t, "nanjing")
	for _, sql := range []string{
		"SELECT district FROM " + advSHElderly + " WHERE care_level >= 5", // withheld
		"SELECT district FROM " + advSHElderly + " WHERE age > 95",        // pseudonymised
		"SELECT district, gender FROM " + advSHElderly + " WHERE gender = 'F' AND district = '浦东新区'",
	} {
		advRefused(t, analyst, elderlyPurpose, sql, codes.PermissionDenied, policy.RuleGeneralHiddenPredicate)
	}
	district := direct.query(t, "SELECT min(district) FROM "+direct.src(advSHElderly))[0][0].(string)
	want := direct.query(t, "SELECT count(*) FROM "+direct.src(advSHElderly)+" WHERE district = ?", district)[0][0].(int64)
	r, _ := advOK(t, analyst, elderlyPurpose, "SELECT age, living_alone FROM "+advSHElderly+" WHERE district = '"+district+"'")
	if int64(len(r.rows)) != want {
		t.Fatalf("rows in %s: %d, want %d", district, len(r.rows), want)
	}
	for _, col := range r.header.GetColumns() {
		if col.GetTreatment() == yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
			t.Fatalf("personal column %s left raw", col.GetName())
		}
	}
}

// TestAdversarialOrderLimitTricksOnImportantData: on IMPORTANT data (an
// approved aggregates grant) ORDER BY a count ascending with LIMIT 1 gives
// the smallest group of at least k individuals, never a smaller one that
// exists under k; OFFSET and HAVING are rejected by the parser with line
// and column (InvalidArgument); a row query, however limited, is refused
// with rule important.aggregates-only. Nothing is returned when refused.
func TestAdversarialOrderLimitTricksOnImportantData(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{noiseOff: true})
	direct := newAdvDirect(t, dd)
	hv := direct.src(advHealth)
	analyst := dd.analyst(t, "shanghai")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)

	const q = "SELECT department, count(*), count(DISTINCT patient_id) FROM %s WHERE age >= ? GROUP BY department"
	var floor int64 = -1
	var rows, ind map[string]int64
	for a := int64(0); a < 110 && floor < 0; a++ {
		rows, ind = direct.groups(t, fmt.Sprintf(q, hv), a)
		var under, over bool
		for _, n := range ind {
			under = under || n < advK
			over = over || n >= advK
		}
		if under && over {
			floor = a
		}
	}
	if floor < 0 {
		t.Fatal("no age floor leaves departments under and over k")
	}
	smallest, smallestAll := int64(-1), int64(-1)
	for g, n := range rows {
		if smallestAll < 0 || n < smallestAll {
			smallestAll = n
		}
		if ind[g] >= advK && (smallest < 0 || n < smallest) {
			smallest = n
		}
	}
	if smallestAll >= smallest {
		t.Fatalf("setup: no group under k is smaller than the smallest released one")
	}
	for _, order := range []string{"n", "2", "count(*)", "n ASC"} {
		r, rc := advOK(t, analyst, advHealthPurpose, fmt.Sprintf(
			"SELECT department, count(*) AS n FROM %s WHERE age >= %d GROUP BY department ORDER BY %s LIMIT 1", advHealth, floor, order))
		got := advGroups(t, r)
		if len(got) != 1 {
			t.Fatalf("ORDER BY %s LIMIT 1: %d rows", order, len(r.rows))
		}
		for g, n := range got {
			if n != smallest || rows[g] != n || ind[g] < advK {
				t.Fatalf("ORDER BY %s LIMIT 1: %s with %d visits (%d individuals), want the smallest group of at least %d individuals, %d visits",
					order, g, n, ind[g], advK, smallest)
			}
		}
		if rc.GetRows() != 1 || rc.GetIndividuals() < uint64(advK) {
			t.Fatalf("receipt: %d rows, %d individuals", rc.GetRows(), rc.GetIndividuals())
		}
	}

	for _, c := range []struct{ sql, want string }{
		{"SELECT department, count(*) FROM " + advHealth + " GROUP BY department ORDER BY 2 LIMIT 1 OFFSET 1", "OFFSET"},
		{"SELECT department, count(*) FROM " + advHealth + " GROUP BY department HAVING count(*) < 10", "HAVING"},
		{"SELECT department, count(*) FROM " + advHealth + " GROUP BY department ORDER BY 2 OFFSET 3", "OFFSET"},
	} {
		advRefused(t, analyst, advHealthPurpose, c.sql, codes.InvalidArgument, "line 1, column", c.want)
	}
	for _, sql := range []string{
		"SELECT department, age FROM " + advHealth + " WHERE age >= 90",
		"SELECT * FROM " + advHealth + " LIMIT 1",
		"SELECT visit_id FROM " + advHealth + " ORDER BY visit_id LIMIT 1",
	} {
		advRefused(t, analyst, advHealthPurpose, sql, codes.PermissionDenied, policy.RuleImportantAggregatesOnly)
	}
}

// TestAdversarialCoreDataNeverAnswers: CORE data answers nothing, to
// anyone: row, aggregate, count(*) alone, SELECT *, explain, from another
// city or from the owning organisation itself, all PermissionDenied with
// rule level.core and nothing returned. No grant can be requested on it.
// In a family query with a CORE member (Hangzhou's elderly dataset
// re-graded CORE) that city is reported DENIED and the merged result is
// exactly the other cities' data.
func TestAdversarialCoreDataNeverAnswers(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{noiseOff: true, adjust: func(d *yrdv1.Dataset) {
		if d.GetId() == advHZElderly {
			d.Level = yrdv1.ClassificationLevel_LEVEL_CORE
		}
	}})
	direct := newAdvDirect(t, dd)
	const purpose = "population-statistics"
	requesters := map[string]*grpc.ClientConn{
		"another city":      dd.analyst(t, "nanjing"),
		"owner's own city":  dd.analyst(t, "shanghai"),
		"owning org itself": advAnalyst(t, dd, "shanghai", "sh-public-security"),
	}
	for who, conn := range requesters {
		for _, sql := range []string{
			"SELECT district, gender FROM " + advRegistry,
			"SELECT * FROM " + advRegistry + " LIMIT 1",
			"SELECT district, count(*) FROM " + advRegistry + " GROUP BY district",
			"SELECT count(*) FROM " + advRegistry,
			"SELECT count(*) FROM " + advRegistry + " WHERE district = '浦东新区'",
		} {
			advRefused(t, conn, purpose, sql, codes.PermissionDenied, policy.RuleLevelCore)
		}
		r, err := runQuery(testCtx(t), conn, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: "SELECT count(*) FROM " + advRegistry},
			Purpose: purpose, Explain: true})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), policy.RuleLevelCore) {
			t.Fatalf("%s: explain on CORE data: %v, want PermissionDenied by %s", who, err, policy.RuleLevelCore)
		}
		advNothing(t, "explain", r)
	}
	// The catalog refuses a grant on CORE data, so none can be approved.
	_, err := yrdv1grpc.NewGrantServiceClient(requesters["another city"]).RequestGrant(testCtx(t), &yrdv1.RequestGrantRequest{
		DatasetId: advRegistry, Purpose: purpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(time.Hour)})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "CORE") {
		t.Fatalf("grant request on CORE data: %v, want PermissionDenied", err)
	}
	grants, err := yrdv1grpc.NewGrantServiceClient(dd.Conn(0)).ListGrants(testCtx(t), &yrdv1.ListGrantsRequest{DatasetId: advRegistry})
	if err != nil || len(grants.GetGrants()) != 0 {
		t.Fatalf("grants on CORE data: %v %v", grants.GetGrants(), err)
	}

	// A family with a CORE member: that city is denied, the others merge.
	nj := dd.analyst(t, "nanjing")
	for _, c := range []struct {
		sql    string
		direct string
	}{
		{"SELECT district, count(*) FROM family:yrd.elderly-population.v1 GROUP BY district",
			"SELECT district, count(*) FROM %s GROUP BY district HAVING count(DISTINCT person_id) >= %d"},
		{"SELECT count(*) FROM family:yrd.elderly-population.v1",
			"SELECT 'all', count(*) FROM %s HAVING count(DISTINCT person_id) >= %d"},
	} {
		r := sqlQuery(t, nj, elderlyPurpose, c.sql)
		if !r.trailer.GetPartial() || len(r.trailer.GetCities()) != 3 {
			t.Fatalf("%s: trailer %v, want partial over 3 cities", c.sql, r.trailer)
		}
		for _, cr := range r.trailer.GetCities() {
			if cr.GetCity() == "hangzhou" {
				if cr.GetStatus() != yrdv1.CityStatus_CITY_STATUS_DENIED || !strings.Contains(cr.GetReason(), policy.RuleLevelCore) ||
					cr.GetReceipt() != nil || cr.GetRows() != 0 {
					t.Fatalf("hangzhou's part: %v", cr)
				}
			} else if cr.GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK {
				t.Fatalf("%s's part: %v", cr.GetCity(), cr)
			}
		}
		for _, p := range r.header.GetPlans() {
			if p.GetCity() == "hangzhou" {
				t.Fatalf("hangzhou's plan is in the header: %v", p)
			}
		}
		want := map[string]int64{}
		for _, id := range []string{advSHElderly, advNJElderly} {
			for _, row := range direct.query(t, fmt.Sprintf(c.direct, direct.src(id), advK)) {
				want[advKey(row[0])] += row[1].(int64)
			}
		}
		got := map[string]int64{}
		for _, row := range r.rows {
			v := row.GetValues()
			k := "all"
			if len(v) == 2 {
				k = advKey(cell(v[0]))
			}
			got[k] = cell(v[len(v)-1]).(int64)
		}
		if !sameGroups(got, want) {
			t.Fatalf("%s: merged %v, want exactly Shanghai's and Nanjing's %v", c.sql, got, want)
		}
	}
}

// TestAdversarialCrossBorderPartner: a Lingang trial partner outside the
// mainland (zhoushan, joined with OutsideMainland) gets only non-personal
// columns of GENERAL, cross-border eligible data of a trial sector, within
// the owner's yearly individuals threshold. Refused, with nothing
// returned: any named personal column (shown, filtered, grouped),
// IMPORTANT data even under an approved grant (crossborder.general-only),
// a non-eligible dataset outside the trial sectors, and the trial dataset
// once its sector is taken out of the trial (crossborder.trial-sector).
// Allowed: SELECT * of the trial dataset gives only its non-personal
// columns, exactly the filtered rows, with a receipt marked cross-border
// and audit records tagged cross-border. Threshold: with the limit lowered
// to L, a flow that would pass it is refused naming crossborder.threshold,
// the counts and L; the refused flow records nothing, so a repeat of an
// already counted flow and a flow that brings the total to exactly L still
// pass, after which every flow is refused.
//
// The sample's trips dataset has no DIRECT identifier, without which the
// owner cannot count the individuals a flow carries (it then refuses every
// cross-border flow, failing closed); here its vehicle_id is the direct
// identifier, so the ledger counts vehicles.
func TestAdversarialCrossBorderPartner(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{cities: []string{"shanghai", "hangzhou", "nanjing", "zhoushan"},
		outside: map[string]bool{"zhoushan": true},
		adjust: func(d *yrdv1.Dataset) {
			if d.GetId() != advTrips {
				return
			}
			for _, c := range d.GetSchema().GetColumns() {
				if c.GetName() == "vehicle_id" {
					c.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
				}
			}
		}})
	direct := newAdvDirect(t, dd)
	trips := direct.src(advTrips)
	partner := advAnalyst(t, dd, "zhoushan", "overseas-oem")

	for _, c := range []struct{ sql, col string }{
		{"SELECT vehicle_id FROM " + advTrips, "vehicle_id"},
		{"SELECT trip_id, start_grid FROM " + advTrips + " LIMIT 5", "start_grid"},
		{"SELECT trip_id FROM " + advTrips + " WHERE end_grid = 'LG-E12N09'", "end_grid"},
		{"SELECT start_grid, count(*) FROM " + advTrips + " GROUP BY start_grid", "start_grid"},
		{"SELECT count(DISTINCT vehicle_id) FROM " + advTrips, "vehicle_id"},
		{"SELECT distance_km FROM " + advTrips + " ORDER BY start_hour LIMIT 1", "start_hour"},
	} {
		advRefused(t, partner, advTripsPurpose, c.sql, codes.PermissionDenied, policy.RuleCrossBorderNoPersonal, c.col)
	}
	// IMPORTANT data, even with the owner's approval.
	advGrant(t, dd, partner, advHealth, advHealthPurpose)
	advRefused(t, partner, advHealthPurpose, "SELECT department, count(*) FROM "+advHealth+" GROUP BY department",
		codes.PermissionDenied, policy.RuleCrossBorderGeneralOnly)
	// GENERAL data that is neither eligible nor of a trial sector.
	advRefused(t, partner, elderlyPurpose, "SELECT district, count(*) FROM "+advSHElderly+" GROUP BY district",
		codes.PermissionDenied, policy.RuleCrossBorderEligible, policy.RuleCrossBorderTrialSector)

	ps := yrdv1grpc.NewPolicyServiceClient(dd.Conn(0))
	setPolicy := func(change func(*yrdv1.PolicyParams)) {
		t.Helper()
		cur, err := ps.GetPolicy(testCtx(t), &yrdv1.GetPolicyRequest{})
		if err != nil {
			t.Fatal(err)
		}
		p := cur.GetParams()
		change(p)
		if _, err := ps.UpdatePolicy(testCtx(t), &yrdv1.UpdatePolicyRequest{Params: p, ExpectedVersion: p.GetVersion()}); err != nil {
			t.Fatal(err)
		}
	}
	// The trial dataset once its sector leaves the trial.
	setPolicy(func(p *yrdv1.PolicyParams) {
		p.TrialSectors = slices.DeleteFunc(p.TrialSectors, func(s string) bool { return s == "connected-vehicles" })
	})
	advRefused(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" LIMIT 1",
		codes.PermissionDenied, policy.RuleCrossBorderTrialSector)

	// Three flows by distance: f1 and f3 small, f2 half the trips.
	quantile := func(p float64) string {
		return strconv.FormatFloat(direct.query(t, "SELECT quantile_disc(distance_km, ?) FROM "+trips, p)[0][0].(float64), 'f', -1, 64)
	}
	q1, q2, q50 := quantile(0.01), quantile(0.02), quantile(0.5)
	f1 := "distance_km < " + q1
	f3 := "distance_km >= " + q1 + " AND distance_km < " + q2
	f2 := "distance_km >= " + q50
	vehicles := func(where string) map[string]bool {
		out := map[string]bool{}
		for _, r := range direct.query(t, "SELECT DISTINCT vehicle_id FROM "+trips+" WHERE "+where) {
			out[r[0].(string)] = true
		}
		return out
	}
	v1, v2, v3 := vehicles(f1), vehicles(f2), vehicles(f3)
	union := func(sets ...map[string]bool) uint64 {
		all := map[string]bool{}
		for _, s := range sets {
			for v := range s {
				all[v] = true
			}
		}
		return uint64(len(all))
	}
	limit := union(v1, v3)
	if len(v1) == 0 || limit == uint64(len(v1)) || union(v1, v2) <= limit {
		t.Fatalf("setup: %d, %d and %d vehicles do not make a threshold case", len(v1), len(v2), len(v3))
	}
	setPolicy(func(p *yrdv1.PolicyParams) {
		p.TrialSectors = append(p.TrialSectors, "connected-vehicles")
		p.CrossBorderIndividualsLimit = limit
	})

	// Allowed: every non-personal column of the filtered trips, nothing else.
	wantRows := map[string]bool{}
	for _, r := range direct.query(t, "SELECT trip_id, distance_km, duration_s, autonomous_share FROM "+trips+" WHERE "+f1) {
		wantRows[fmt.Sprint(r...)] = true
	}
	r, rc := advOK(t, partner, advTripsPurpose, "SELECT * FROM "+advTrips+" WHERE "+f1)
	if names := columnNames(r.header.GetColumns()); !slices.Equal(names, []string{"trip_id", "distance_km", "duration_s", "autonomous_share"}) {
		t.Fatalf("cross-border SELECT * shows %v", names)
	}
	if len(r.rows) != len(wantRows) {
		t.Fatalf("%d rows, want %d", len(r.rows), len(wantRows))
	}
	for _, row := range r.rows {
		var vals []any
		for _, v := range row.GetValues() {
			vals = append(vals, cell(v))
		}
		if !wantRows[fmt.Sprint(vals...)] {
			t.Fatalf("row %v is not one of the filtered trips", vals)
		}
	}
	if !rc.GetCrossBorder() || rc.GetRequester().GetCity() != "zhoushan" || rc.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_ROWS ||
		!slices.Contains(rc.GetRuleIds(), policy.RuleCrossBorderNoPersonal) {
		t.Fatalf("receipt %v, want cross-border rows with personal columns withheld", rc)
	}
	if !r.header.GetPlans()[0].GetDecision().GetCrossBorder() {
		t.Fatalf("decision not marked cross-border: %v", r.header.GetPlans()[0].GetDecision())
	}

	// f2 would pass the limit: refused, and it records nothing.
	advRefused(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+f2, codes.PermissionDenied,
		policy.RuleCrossBorderThreshold, fmt.Sprintf("has sent %d individuals", len(v1)),
		fmt.Sprintf("would add %d", union(v1, v2)-uint64(len(v1))), fmt.Sprintf("limit of %d", limit))
	// f1 again (its vehicles are counted already), then f3 up to exactly the limit.
	advOK(t, partner, advTripsPurpose, "SELECT trip_id, distance_km FROM "+advTrips+" WHERE "+f1)
	r3, _ := advOK(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+f3)
	if len(r3.rows) == 0 {
		t.Fatal("f3 released no rows")
	}
	// At the limit nothing more leaves, counted before or not.
	advRefused(t, partner, advTripsPurpose, "SELECT trip_id FROM "+advTrips+" WHERE "+f1, codes.PermissionDenied, policy.RuleCrossBorderThreshold)

	// The owner's record: every query of the partner tagged cross-border,
	// the threshold refusal among them.
	var released, thresholdDenials int
	for _, rec := range advAudit(t, dd, "shanghai", advTrips) {
		if rec.GetRequester().GetCity() != "zhoushan" {
			continue
		}
		if !rec.GetCrossBorder() {
			t.Fatalf("audit record not tagged cross-border: %v", rec)
		}
		if rec.GetDecision() == yrdv1.Effect_EFFECT_DENY && slices.Contains(rec.GetRuleIds(), policy.RuleCrossBorderThreshold) {
			thresholdDenials++
		}
		if rec.GetDecision() == yrdv1.Effect_EFFECT_ALLOW_ROWS && strings.HasPrefix(rec.GetDetail(), "released") {
			released++
		}
	}
	if released != 3 || thresholdDenials != 2 {
		t.Fatalf("owner's record: %d releases and %d threshold refusals, want 3 and 2", released, thresholdDenials)
	}
}

// TestAdversarialRevokedGrantStopsTheVeryNextQuery: two organisations,
// homed at the raft leader (Shanghai) and at a follower (Hangzhou), query
// IMPORTANT data owned by Nanjing under approved grants; Nanjing's CDO
// revokes both; the very next query of each, through its home node, is
// PermissionDenied (important.grant, naming the revocation) with nothing
// returned. Followers here learn a commit only after a long commit
// timeout (and no audit anchors trigger replication), so the owner's
// replica lags the revocation the way a distant city's may: the owner
// must bring its catalog up to date before it decides.
func TestAdversarialRevokedGrantStopsTheVeryNextQuery(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{noiseOff: true, configure: func(_ int, cfg *node.Config) {
		cfg.Raft.CommitTimeout = time.Second
		cfg.AnchorInterval = time.Hour
	}})
	leader, err := dd.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if city := dd.Config(leader).City; city != "shanghai" {
		t.Fatalf("the leader is %s; the test needs the bootstrap node shanghai to lead", city)
	}
	direct := newAdvDirect(t, dd)
	rows, ind := direct.groups(t, "SELECT department, count(*), count(DISTINCT patient_id) FROM "+direct.src(advHealth)+" GROUP BY department")
	want := atLeast(rows, ind, advK)
	const q = "SELECT department, count(*) FROM " + advHealth + " GROUP BY department"
	sh, hz := dd.analyst(t, "shanghai"), dd.analyst(t, "hangzhou")
	shGrant, hzGrant := advGrant(t, dd, sh, advHealth, advHealthPurpose), advGrant(t, dd, hz, advHealth, advHealthPurpose)
	for _, conn := range []*grpc.ClientConn{sh, hz} {
		r, _ := advOK(t, conn, advHealthPurpose, q)
		if got := advGroups(t, r); !sameGroups(got, want) {
			t.Fatalf("with the grant: %v, want %v", got, want)
		}
	}
	cdo := yrdv1grpc.NewGrantServiceClient(connAs(t, dd.Cluster, dd.Index("nanjing"), "nj-health-commission", yrdv1.Role_ROLE_CDO))
	for _, id := range []string{hzGrant, shGrant} {
		if _, err := cdo.RevokeGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, conn := range []*grpc.ClientConn{sh, hz} {
		advRefused(t, conn, advHealthPurpose, q, codes.PermissionDenied, policy.RuleImportantGrant, "revoked")
	}
}

// TestAdversarialLimitsHold: with one query per principal per node, a
// principal running a heavy query gets ResourceExhausted for a second one
// (nothing returned) while another principal is answered; a client
// deadline shorter than the heavy query gives DeadlineExceeded, and the
// owner's DuckDB query is interrupted, not left running: the principal's
// slot, which the owner frees only when the engine call returns, is free
// again within 5 s of the deadline (it takes milliseconds), where the
// uncancelled query (a minute or more of scanning) would hold it twelve
// times as long, and the node answers. A result over MaxResultBytes is
// ResourceExhausted without a trailer or receipt, and without any row when
// the first batch is already too large.
func TestAdversarialLimitsHold(t *testing.T) {
	const maxBytes = 16 << 10
	dd := startAdvDelta(t, deltaOptions{noiseOff: true,
		// 120,000 links to one file of 3,000 rows: 360 million rows, a
		// minute or more of scanning if nothing stops it. The owner
		// verifies the person key unique in the background, so the setup
		// does not wait for that scan.
		copies: map[string]int{advSHElderly: 120000},
		configure: func(_ int, cfg *node.Config) {
			cfg.MaxQueriesPerRequester = 1
			cfg.MaxResultBytes = maxBytes
		}})
	direct := newAdvDirect(t, dd)
	total := direct.query(t, "SELECT count(*) FROM "+direct.src(advHZElderly))[0][0].(int64)
	analyst, other := dd.analyst(t, "shanghai"), advAnalyst(t, dd, "shanghai", "shanghai-planning")
	const small = "SELECT count(*) FROM " + advHZElderly
	smallOK := func(conn *grpc.ClientConn) error {
		r, err := advQuery(testCtx(t), conn, elderlyPurpose, small)
		if err != nil {
			return err
		}
		if len(r.rows) != 1 || cell(r.rows[0].GetValues()[0]) != total {
			t.Fatalf("%s: %v, want %d", small, r.rows, total)
		}
		return nil
	}

	const deadline = 1500 * time.Millisecond
	type outcome struct {
		r    *result
		err  error
		took time.Duration
	}
	heavy := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		r, err := advQuery(ctx, analyst, elderlyPurpose, "SELECT district, count(*) FROM "+advSHElderly+" GROUP BY district")
		heavy <- outcome{r, err, time.Since(start)}
	}()
	// The decision is on the owner's record before its engine runs, and
	// the slot is held from before the decision until the engine returns.
	for running := false; !running; {
		for _, rec := range advAudit(t, dd, "shanghai", advSHElderly) {
			running = running || rec.GetRequester().GetOrg() == "shanghai-analytics"
		}
		select {
		case h := <-heavy:
			t.Fatalf("the heavy query ended before it was seen running: %v after %v", h.err, h.took)
		case <-time.After(10 * time.Millisecond):
		}
	}
	advRefused(t, analyst, elderlyPurpose, small, codes.ResourceExhausted, "already has 1 queries running")
	// On the home node's record, which refused it before any decision.
	if recs := withRule(t, dd.Cluster, dd.Index("shanghai"), node.RuleConcurrentQuery); len(recs) != 1 ||
		recs[0].GetRequester().GetOrg() != "shanghai-analytics" || recs[0].GetDatasetId() != advHZElderly ||
		recs[0].GetDecision() != yrdv1.Effect_EFFECT_DENY || recs[0].GetAction() != yrdv1.AuditAction_AUDIT_ACTION_QUERY {
		t.Fatalf("concurrency refusal records: %v, want one denial of shanghai-analytics on %s", recs, advHZElderly)
	}
	// Another principal is not held up by the first one's limit.
	if err := smallOK(other); err != nil {
		t.Fatalf("another principal during the heavy query: %v", err)
	}
	h := <-heavy
	// Ending takes milliseconds past the deadline; the uncancelled query
	// would run 15 s or more.
	if status.Code(h.err) != codes.DeadlineExceeded || h.took > deadline+5*time.Second {
		t.Fatalf("heavy query: %v after %v, want DeadlineExceeded at about %v", h.err, h.took, deadline)
	}
	if h.r != nil && (len(h.r.rows) > 0 || h.r.trailer != nil) {
		t.Fatalf("the cancelled query returned %d rows, trailer %v", len(h.r.rows), h.r.trailer)
	}
	cancelled := time.Now()
	for {
		err := smallOK(analyst)
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("after the deadline: %v", err)
		}
		if time.Since(cancelled) > 5*time.Second {
			t.Fatalf("the principal's slot is still taken %v after its deadline: the owner's query runs on", time.Since(cancelled))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The size cap, forwarded to Hangzhou's owner node.
	const rowsQ = "SELECT person_id, district, age, living_alone FROM " + advHZElderly
	// The header (columns and plan, no data) precedes the first batch,
	// which is already over the cap: no row and no receipt leave.
	r, err := advQuery(testCtx(t), analyst, elderlyPurpose, rowsQ)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), fmt.Sprintf("%d-byte size cap", maxBytes)) ||
		len(r.rows) != 0 || r.trailer != nil {
		t.Fatalf("over the size cap: %v, %d rows, trailer %v; want ResourceExhausted naming the cap, nothing else", err, len(r.rows), r.trailer)
	}
	r, err = runQuery(testCtx(t), analyst, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: rowsQ}, Purpose: elderlyPurpose, BatchRows: 20})
	if status.Code(err) != codes.ResourceExhausted || r.trailer != nil || len(r.rows) == 0 || len(r.rows) >= int(total) {
		t.Fatalf("in batches: %v, %d rows, trailer %v; want ResourceExhausted after some rows, no trailer", err, len(r.rows), r.trailer)
	}
	// Both cut results are on the owner's record, after its decisions.
	recs := withRule(t, dd.Cluster, dd.Index("hangzhou"), node.RuleResultSize)
	if len(recs) != 2 {
		t.Fatalf("size cap refusals on Hangzhou's record: %v, want 2", recs)
	}
	for _, rec := range recs {
		if rec.GetRequester().GetCity() != "shanghai" || rec.GetRequester().GetOrg() != "shanghai-analytics" || rec.GetDatasetId() != advHZElderly ||
			rec.GetDecision() != yrdv1.Effect_EFFECT_DENY || !strings.Contains(rec.GetDetail(), "size cap") {
			t.Fatalf("size cap refusal %v", rec)
		}
	}
	r20, rc := advOK(t, analyst, elderlyPurpose, rowsQ+" LIMIT 20")
	if len(r20.rows) != 20 || rc.GetRows() != 20 {
		t.Fatalf("under the cap: %d rows", len(r20.rows))
	}
}

// TestAdversarialForgedRequesterCity: a member node that calls an owner's
// PeerService.Execute over the fabric cannot speak for another city. The
// test takes Suzhou's node down and uses its identity key, a registered
// member's, to claim a Shanghai principal whose organisation holds an
// approved grant on Nanjing's IMPORTANT data: Nanjing decides for a Suzhou
// principal and refuses (important.grant), nothing returned, while the
// real Shanghai principal is answered. On GENERAL data the forged claim is
// answered as Suzhou's: the receipt and Nanjing's audit record name
// Suzhou. A dataset the callee does not own is refused.
func TestAdversarialForgedRequesterCity(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{cities: []string{"shanghai", "hangzhou", "nanjing", "suzhou-js"}})
	sh := dd.analyst(t, "shanghai")
	advGrant(t, dd, sh, advHealth, advHealthPurpose)
	const aggQ = "SELECT department, count(*) FROM " + advHealth + " GROUP BY department"
	if r, _ := advOK(t, sh, advHealthPurpose, aggQ); len(r.rows) == 0 {
		t.Fatal("the real Shanghai principal got no rows")
	}

	sz := dd.Index("suzhou-js")
	dataDir := dd.Config(sz).DataDir
	if err := dd.Stop(sz); err != nil {
		t.Fatal(err)
	}
	key, err := fabric.LoadKey(node.KeyPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	h, err := fabric.New(fabric.Config{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Gate: fabric.GateFunc(func(peer.ID) bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	owner := dd.Node(dd.Index("nanjing"))
	if err := h.SetPeerAddrs(owner.PeerID(), owner.FabricAddrs()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+owner.PeerID().String(), grpc.WithContextDialer(h.Dialer(fabric.ProtocolRPC)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	peerClient := yrdv1grpc.NewPeerServiceClient(conn)
	claimed := &yrdv1.Principal{City: "shanghai", Org: "shanghai-analytics", Name: "testnet-analyst", Role: yrdv1.Role_ROLE_ANALYST}
	execute := func(id, purpose, sql string) (*result, error) {
		t.Helper()
		q, err := sqlq.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		st, err := peerClient.Execute(testCtx(t), &yrdv1.ExecuteRequest{Query: q, Purpose: purpose, Requester: proto.Clone(claimed).(*yrdv1.Principal)})
		if err != nil {
			return nil, err
		}
		return collect(st)
	}

	r, err := execute(advHealth, advHealthPurpose, aggQ)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), policy.RuleImportantGrant) {
		t.Fatalf("forged Shanghai requester on IMPORTANT data: %v, want PermissionDenied by %s", err, policy.RuleImportantGrant)
	}
	advNothing(t, "forged requester", r)

	r, err = execute(advNJElderly, elderlyPurpose, "SELECT district, count(*) FROM "+advNJElderly+" GROUP BY district")
	if err != nil || r.trailer == nil || len(r.trailer.GetCities()) != 1 {
		t.Fatalf("forged requester on GENERAL data: %v %v", err, r)
	}
	rc := r.trailer.GetCities()[0].GetReceipt()
	if err := receipt.Verify(rc); err != nil {
		t.Fatal(err)
	}
	if rc.GetRequester().GetCity() != "suzhou-js" {
		t.Fatalf("the owner answered for %v, want the calling member's city suzhou-js", rc.GetRequester())
	}
	// Nanjing's record names the calling member's city for both calls.
	var denied, allowed int
	for _, rec := range advAudit(t, dd, "nanjing", "") {
		p := rec.GetRequester()
		if p.GetOrg() != "shanghai-analytics" || p.GetCity() == "shanghai" {
			continue
		}
		if p.GetCity() != "suzhou-js" {
			t.Fatalf("audit record for %v", p)
		}
		switch {
		case rec.GetDatasetId() == advHealth && rec.GetDecision() == yrdv1.Effect_EFFECT_DENY:
			denied++
		case rec.GetDatasetId() == advNJElderly && rec.GetDecision() == yrdv1.Effect_EFFECT_ALLOW_AGGREGATES:
			allowed++
		}
	}
	if denied != 1 || allowed != 2 { // the decision and the release
		t.Fatalf("nanjing's audit: %d denials and %d allowed records as suzhou-js, want 1 and 2", denied, allowed)
	}

	_, err = execute(advSHElderly, elderlyPurpose, "SELECT district, count(*) FROM "+advSHElderly+" GROUP BY district")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "owned by shanghai") {
		t.Fatalf("a dataset nanjing does not own: %v", err)
	}
}
