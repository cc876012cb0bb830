package node_test

// Adversarial tests of who may ask at all: CORE data, a cross-border
// partner (adversarial_crossborder_test.go), a revoked grant, the limits,
// and a member forging a requester's city (see
// adversarial_helpers_test.go).

import (
	"context"
	"fmt"
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
	familyWithACoreMember(t, dd, direct)
}

// familyWithACoreMember is TestAdversarialCoreDataNeverAnswers' family
// queries: Hangzhou's CORE member is reported DENIED, nothing of it
// returned, and the merged result is exactly Shanghai's and Nanjing's.
func familyWithACoreMember(t *testing.T, dd *dataDelta, direct *advDirect) {
	t.Helper()
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

// limitsMaxResultBytes is TestAdversarialLimitsHold's result size cap.
const limitsMaxResultBytes = 16 << 10

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
	dd := startAdvDelta(t, deltaOptions{noiseOff: true,
		// 120,000 links to one file of 3,000 rows: 360 million rows, a
		// minute or more of scanning if nothing stops it. The owner
		// verifies the person key unique in the background, so the setup
		// does not wait for that scan.
		copies: map[string]int{advSHElderly: 120000},
		configure: func(_ int, cfg *node.Config) {
			cfg.MaxQueriesPerRequester = 1
			cfg.MaxResultBytes = limitsMaxResultBytes
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

	heavyQueryHoldsItsSlotUntilCancelled(t, dd, analyst, other, smallOK)
	// The size cap, forwarded to Hangzhou's owner node.
	resultSizeCapHolds(t, dd, analyst, total)
}

// heavyQueryHoldsItsSlotUntilCancelled is TestAdversarialLimitsHold's
// concurrency limit and deadline: while analyst's heavy query runs, its
// second query is refused and other's is answered (smallOK); the heavy
// query ends at its deadline and the slot is free again soon after.
func heavyQueryHoldsItsSlotUntilCancelled(t *testing.T, dd *dataDelta, analyst, other *grpc.ClientConn, smallOK func(*grpc.ClientConn) error) {
	t.Helper()
	const small = "SELECT count(*) FROM " + advHZElderly
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
}

// resultSizeCapHolds is TestAdversarialLimitsHold's size cap: a result
// over it is ResourceExhausted without trailer or receipt, and without
// any row when the first batch is already too large; total is the rows
// of Hangzhou's elderly dataset.
func resultSizeCapHolds(t *testing.T, dd *dataDelta, analyst *grpc.ClientConn, total int64) {
	t.Helper()
	const rowsQ = "SELECT person_id, district, age, living_alone FROM " + advHZElderly
	// The header (columns and plan, no data) precedes the first batch,
	// which is already over the cap: no row and no receipt leave.
	r, err := advQuery(testCtx(t), analyst, elderlyPurpose, rowsQ)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), fmt.Sprintf("%d-byte size cap", limitsMaxResultBytes)) ||
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

// fabricClientAs stops city's node and calls owner's PeerService over the
// fabric with city's identity key, as a member node would.
func fabricClientAs(t *testing.T, dd *dataDelta, city, ownerCity string) yrdv1grpc.PeerServiceClient {
	t.Helper()
	i := dd.Index(city)
	dataDir := dd.Config(i).DataDir
	if err := dd.Stop(i); err != nil {
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
	owner := dd.Node(dd.Index(ownerCity))
	if err := h.SetPeerAddrs(owner.PeerID(), owner.FabricAddrs()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+owner.PeerID().String(), grpc.WithContextDialer(h.Dialer(fabric.ProtocolRPC)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return yrdv1grpc.NewPeerServiceClient(conn)
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

	peerClient := fabricClientAs(t, dd, "suzhou-js", "nanjing")
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
