package node_test

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

const familyCount = "SELECT gender, count(*) AS n FROM family:yrd.elderly-population.v1 GROUP BY gender"

// A family query from hangzhou fans out to shanghai: both nodes' admin
// listeners show the counters moving (the API call, the owner's call over
// the fabric, the decisions, the engine, raft), and the client's request
// id is in both nodes' log lines and audit records.
func TestFannedOutQueryMovesMetricsAndCarriesRequestID(t *testing.T) {
	cities := []string{"shanghai", "hangzhou"}
	logs := []*syncBuffer{{}, {}}
	dd := startDelta(t, deltaOptions{cities: cities, rows: 500, noiseOff: true, configure: func(i int, cfg *node.Config) {
		cfg.AdminAddr = "127.0.0.1:0"
		cfg.EnablePprof = i == 0
		cfg.Logger = slog.New(slog.NewJSONHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	sh, hz := dd.Index("shanghai"), dd.Index("hangzhou")
	clients := []*http.Client{adminClient(t, dd.Config(sh).DataDir), adminClient(t, dd.Config(hz).DataDir)}
	scrape := func(i int) string {
		t.Helper()
		code, body := adminGet(t, clients[i], dd.Node(i).AdminAddr(), "/metrics")
		if code != http.StatusOK {
			t.Fatalf("%s /metrics: %d %s", cities[i], code, body)
		}
		return body
	}
	before := []string{scrape(sh), scrape(hz)}

	const id = "obs-test-0042"
	ctx := metadata.AppendToOutgoingContext(testCtx(t), node.RequestIDHeader, id)
	var header metadata.MD
	st, err := yrdv1grpc.NewQueryServiceClient(dd.analyst(t, "hangzhou")).Query(ctx, &yrdv1.QueryRequest{
		Question: &yrdv1.QueryRequest_Sql{Sql: familyCount}, Purpose: elderlyPurpose}, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	r, err := collect(st)
	if err != nil || r.trailer.GetPartial() || len(r.trailer.GetCities()) != 2 {
		t.Fatalf("query: %v, trailer %v", err, r.trailer)
	}
	if got := header.Get(node.RequestIDHeader); len(got) != 1 || got[0] != id {
		t.Errorf("response header %s: %v, want %s", node.RequestIDHeader, got, id)
	}
	after := []string{scrape(sh), scrape(hz)}

	moved := func(i int, name string, labels ...string) float64 {
		return metricValue(after[i], name, labels...) - metricValue(before[i], name, labels...)
	}
	if d := moved(hz, "yrd_grpc_requests_total", `server="api"`, `method="/yrd.v1.QueryService/Query"`, `code="OK"`); d != 1 {
		t.Errorf("hangzhou's API query calls moved by %v, want 1", d)
	}
	if d := moved(sh, "yrd_grpc_requests_total", `server="fabric"`, `method="/yrd.v1.PeerService/Execute"`, `code="OK"`); d != 1 {
		t.Errorf("shanghai's owner calls over the fabric moved by %v, want 1", d)
	}
	for i, city := range cities {
		if d := moved(i, "yrd_queries_total", `decision="allow_aggregates"`, `requester_city="hangzhou"`); d != 1 {
			t.Errorf("%s's allowed queries moved by %v, want 1", city, d)
		}
		if d := moved(i, "yrd_connector_query_duration_seconds_count"); d < 1 {
			t.Errorf("%s's connector queries moved by %v", city, d)
		}
		if d := moved(i, "yrd_raft_applied_index"); d <= 0 {
			t.Errorf("%s's raft applied index did not move (the budget spent goes through raft)", city)
		}
		if v := metricValue(after[i], "yrd_raft_state", `state="leader"`) + metricValue(after[i], "yrd_raft_state", `state="follower"`); v != 1 {
			t.Errorf("%s: raft state gauges sum to %v, want 1", city, v)
		}
		if metricValue(after[i], "yrd_audit_chain_length") <= metricValue(before[i], "yrd_audit_chain_length") {
			t.Errorf("%s's audit chain did not grow", city)
		}
	}
	if d := moved(sh, "yrd_privacy_budget_spent_epsilon_total", `requester_city="hangzhou"`); d <= 0 {
		t.Errorf("budget spent by hangzhou at shanghai moved by %v", d)
	}

	for i, city := range cities {
		if !strings.Contains(logs[i].String(), `"request_id":"`+id+`"`) {
			t.Errorf("%s's log has no line with request id %s:\n%s", city, id, logs[i].String())
		}
		recs := auditRecords(t, dd.Cluster, i, &yrdv1.ListAuditRequest{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY})
		n := 0
		for _, rec := range recs {
			if rec.GetRequestId() == id {
				n++
			}
		}
		if n < 2 { // the decision and the release
			t.Errorf("%s has %d audit records with request id %s, want its decision and release", city, n, id)
		}
		auditor := yrdv1grpc.NewAuditServiceClient(connAs(t, dd.Cluster, i, city+"-audit", yrdv1.Role_ROLE_AUDITOR))
		if v, err := auditor.VerifyAudit(testCtx(t), &yrdv1.VerifyAuditRequest{}); err != nil || !v.GetOk() {
			t.Errorf("%s's audit chain with request ids does not verify: %v %v", city, v, err)
		}
	}
	checkDenialCounted(t, dd, clients[sh])
	checkRequestIDEdge(t, dd)
	checkAdminRoutes(t, dd, clients)
}

// checkDenialCounted: a query forwarded from hangzhou that shanghai's
// policy denies moves shanghai's denials under the rule that fired.
func checkDenialCounted(t *testing.T, dd *dataDelta, client *http.Client) {
	t.Helper()
	sh := dd.Index("shanghai")
	var id string
	for _, d := range dd.datasets {
		if d.GetOwnerCity() == "shanghai" && strings.HasSuffix(d.GetId(), ".elderly-population") {
			id = d.GetId()
		}
	}
	rule := `rule="` + policy.RuleGeneralHiddenPredicate + `"`
	before := metricValueAt(t, client, dd.Node(sh).AdminAddr(), "yrd_denials_total", rule)
	_, err := runQuery(testCtx(t), dd.analyst(t, "hangzhou"), &yrdv1.QueryRequest{Purpose: elderlyPurpose,
		Question: &yrdv1.QueryRequest_Sql{Sql: "SELECT district FROM " + id + " WHERE care_level >= 5"}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("query with a hidden predicate: %v", err)
	}
	if d := metricValueAt(t, client, dd.Node(sh).AdminAddr(), "yrd_denials_total", rule) - before; d != 1 {
		t.Errorf("shanghai's denials under %s moved by %v, want 1", rule, d)
	}
}

// checkRequestIDEdge: without an id the node makes one up and answers
// with it; a malformed one is refused, naming the header.
func checkRequestIDEdge(t *testing.T, dd *dataDelta) {
	t.Helper()
	conn := dd.analyst(t, "hangzhou")
	var header metadata.MD
	if _, err := yrdv1grpc.NewAuthServiceClient(conn).WhoAmI(testCtx(t), &yrdv1.WhoAmIRequest{}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get(node.RequestIDHeader); len(got) != 1 || len(got[0]) < 8 {
		t.Errorf("made-up request id: %v", got)
	}
	for _, bad := range []string{"has space", strings.Repeat("x", 65)} {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), node.RequestIDHeader, bad)
		_, err := yrdv1grpc.NewAuthServiceClient(conn).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), node.RequestIDHeader) {
			t.Errorf("request id %q: %v, want InvalidArgument naming %s", bad, err, node.RequestIDHeader)
		}
	}
}

// checkAdminRoutes: /healthz answers SERVING; pprof is there only on the
// node that enabled it (shanghai).
func checkAdminRoutes(t *testing.T, dd *dataDelta, clients []*http.Client) {
	t.Helper()
	for i := range clients {
		if code, body := adminGet(t, clients[i], dd.Node(i).AdminAddr(), "/healthz"); code != http.StatusOK || !strings.Contains(body, "SERVING") {
			t.Errorf("%s /healthz: %d %q", dd.Config(i).City, code, body)
		}
	}
	sh, hz := dd.Index("shanghai"), dd.Index("hangzhou")
	if code, _ := adminGet(t, clients[hz], dd.Node(hz).AdminAddr(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof without EnablePprof: %d, want 404", code)
	}
	if code, body := adminGet(t, clients[sh], dd.Node(sh).AdminAddr(), "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof with EnablePprof: %d", code)
	}
}

// With every voter cut off from the others the cluster has no leader:
// health (gRPC and /healthz) turns NOT_SERVING on every node, and SERVING
// again once they can reach each other. One node also exports
// hashicorp/raft's own metrics; a second node of the process may not.
func TestHealthFollowsQuorumAndRaftLibraryMetrics(t *testing.T) {
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai", "hangzhou", "nanjing"}, Configure: func(i int, cfg *node.Config) {
		cfg.AdminAddr = "127.0.0.1:0"
		cfg.RaftLibraryMetrics = i == 0
	}})
	clients := make([]*http.Client, 3)
	for i := range clients {
		clients[i] = adminClient(t, c.Config(i).DataDir)
		waitHealth(t, c, i, healthpb.HealthCheckResponse_SERVING)
	}
	if _, body := adminGet(t, clients[0], c.Node(0).AdminAddr(), "/metrics"); !strings.Contains(body, "\nraft_") {
		t.Errorf("no hashicorp/raft metric (raft_*) on the node that asked for them")
	}
	if _, body := adminGet(t, clients[1], c.Node(1).AdminAddr(), "/metrics"); strings.Contains(body, "\nraft_") {
		t.Errorf("hashicorp/raft metrics on a node that did not ask for them")
	}
	checkSecondRaftLibraryNodeRefused(t)

	c.Partition([]int{0}, []int{1}, []int{2})
	for i := range clients {
		waitHealth(t, c, i, healthpb.HealthCheckResponse_NOT_SERVING)
		if code, body := adminGet(t, clients[i], c.Node(i).AdminAddr(), "/healthz"); code != http.StatusServiceUnavailable {
			t.Errorf("%s /healthz without quorum: %d %q", c.Config(i).City, code, body)
		}
	}
	waitMetric(t, clients[0], c.Node(0).AdminAddr(), "yrd_raft_has_leader", 0)
	c.Heal()
	for i := range clients {
		waitHealth(t, c, i, healthpb.HealthCheckResponse_SERVING)
		if code, _ := adminGet(t, clients[i], c.Node(i).AdminAddr(), "/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz after quorum returned: %d", c.Config(i).City, code)
		}
	}
	waitMetric(t, clients[0], c.Node(0).AdminAddr(), "yrd_raft_has_leader", 1)
	if v := metricValueAt(t, clients[0], c.Node(0).AdminAddr(), "yrd_raft_leader_changes_total"); v < 2 {
		t.Errorf("leader changes: %v, want the first election, the loss and the new one", v)
	}
}

// checkSecondRaftLibraryNodeRefused: raft's metrics are process-wide, so
// a second node asking for them fails to start, saying why.
func checkSecondRaftLibraryNodeRefused(t *testing.T) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.City = filepath.Join(t.TempDir(), "suzhou-js"), "suzhou-js"
	cfg.APIAddr, cfg.FabricAddrs = "127.0.0.1:0", []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Raft, cfg.Logger, cfg.RaftLibraryMetrics = testnet.FastRaft(), slog.New(slog.DiscardHandler), true
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(testCtx(t)); err == nil || !strings.Contains(err.Error(), "RaftLibraryMetrics") {
		n.Close()
		t.Fatalf("second node with RaftLibraryMetrics: %v", err)
	}
}

func metricValueAt(t *testing.T, client *http.Client, addr, name string, labels ...string) float64 {
	t.Helper()
	_, body := adminGet(t, client, addr, "/metrics")
	return metricValue(body, name, labels...)
}

// waitMetric polls until the metric has value want.
func waitMetric(t *testing.T, client *http.Client, addr, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := metricValueAt(t, client, addr, name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", name, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
