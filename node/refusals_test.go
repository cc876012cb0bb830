package node_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// auditRecords lists node i's records matching req, as its auditor.
func auditRecords(t testing.TB, c *testnet.Cluster, i int, req *yrdv1.ListAuditRequest) []*yrdv1.AuditRecord {
	t.Helper()
	req.Limit = audit.MaxLimit
	auditor := connAs(t, c, i, c.Config(i).City+"-audit", yrdv1.Role_ROLE_AUDITOR)
	resp, err := yrdv1grpc.NewAuditServiceClient(auditor).ListAudit(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetRecords()
}

// withRule lists node i's records with rule id rule.
func withRule(t testing.TB, c *testnet.Cluster, i int, rule string) []*yrdv1.AuditRecord {
	t.Helper()
	return auditRecords(t, c, i, &yrdv1.ListAuditRequest{RuleId: rule})
}

// oneRefusal requires exactly one record with rule on node i, a denial,
// and returns it.
func oneRefusal(t testing.TB, c *testnet.Cluster, i int, rule string, action yrdv1.AuditAction) *yrdv1.AuditRecord {
	t.Helper()
	recs := withRule(t, c, i, rule)
	if len(recs) != 1 {
		t.Fatalf("%s: %d records, want 1: %v", rule, len(recs), recs)
	}
	r := recs[0]
	if r.GetDecision() != yrdv1.Effect_EFFECT_DENY || r.GetAction() != action || r.GetDetail() == "" || r.GetCount() != 0 {
		t.Fatalf("%s: %v, want a %v denial with a reason", rule, r, action)
	}
	return r
}

// fromLoopback requires r to be an unauthenticated refusal from this test.
func fromLoopback(t testing.TB, r *yrdv1.AuditRecord) {
	t.Helper()
	if r.GetSource() != "127.0.0.1" {
		t.Fatalf("%v: source %q, want 127.0.0.1", r.GetRuleIds(), r.GetSource())
	}
}

// denialRules is the multiset of rule ids of node i's denials.
func denialRules(t testing.TB, c *testnet.Cluster, i int) []string {
	t.Helper()
	var rules []string
	for _, r := range auditRecords(t, c, i, &yrdv1.ListAuditRequest{Decision: yrdv1.Effect_EFFECT_DENY}) {
		rules = append(rules, strings.Join(r.GetRuleIds(), "+"))
	}
	sort.Strings(rules)
	return rules
}

func tlsClient(t testing.TB, c *testnet.Cluster, i int, adjust func(*tls.Config)) *grpc.ClientConn {
	t.Helper()
	cfg, err := c.TLSConfig(i)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(cfg)
	}
	conn, err := grpc.NewClient(c.Config(i).APIAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func keyed(t testing.TB, c *testnet.Cluster, i int, token string) yrdv1grpc.AuthServiceClient {
	t.Helper()
	conn, err := c.Dial(i, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return yrdv1grpc.NewAuthServiceClient(conn)
}

// clientCert makes a key pair and has issue certify it.
func clientCert(t testing.TB, issue func(pub []byte) (*yrdv1.Certificate, error)) tls.Certificate {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	cert, err := issue(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(cert.GetPem()))
	return tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: priv}
}

// withCert presents cert whatever CAs the server says it accepts, as an
// attacker's client would.
func withCert(cert tls.Certificate) func(*tls.Config) {
	return func(cfg *tls.Config) {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
}

// TestEveryRefusalIsOnRecord: each way a call is refused without a policy
// decision leaves exactly one DENY record with its rule id and who (or
// where from), and changes nothing: no credentials, a garbage or
// malformed API key, a revoked key, a client certificate of the node's CA
// that the node never issued, a revoked certificate, one from another CA
// (refused in the TLS handshake), a role calling a method it may not, a
// publisher changing another organisation's dataset, a CDO deciding a
// grant on another organisation's data, and a non-member peer on the
// fabric. A second refusal of the same source and rule in the minute adds
// no record: it is counted for the minute's summary.
func TestEveryRefusalIsOnRecord(t *testing.T) {
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai"}})
	ctx := testCtx(t)
	before := denialRules(t, c, 0)
	if len(before) != 0 {
		t.Fatalf("denials before the test: %v", before)
	}
	// Each step checks its own records; their order matters only for the
	// last, whose source already has a bad-certificate record this minute.
	refuseKeys(ctx, t, c)
	refuseCertificates(ctx, t, c)
	analyst := connAs(t, c, 0, "sh-analytics", yrdv1.Role_ROLE_ANALYST)
	refuseRoleAndOwnership(ctx, t, c, analyst)
	refuseOtherOrgsCDO(ctx, t, c, analyst)
	h := refuseNonMemberPeer(ctx, t, c)
	refuseOtherCA(ctx, t, c)

	// Nothing else was refused, and nothing was written: one dataset (the
	// IMPORTANT one) and the grant, still requested.
	want := []string{node.RuleBadCertificate, node.RuleBadKey, node.RuleDatasetOtherOrg, node.RuleFabricNonMember,
		node.RuleGrantOtherOrg, node.RuleGrantOtherOrg, node.RuleGrantOtherOrg, node.RuleNoCredentials,
		node.RuleRevokedCertificate, node.RuleRevokedKey, node.RuleRoleMethod}
	sort.Strings(want)
	if got := denialRules(t, c, 0); !slices.Equal(got, want) {
		t.Fatalf("denials %v, want %v", got, want)
	}
	if got := c.Node(0).Catalog().DatasetCount(); got != 1 {
		t.Fatalf("catalog holds %d datasets, want 1", got)
	}

	// The minute's summaries are written at shutdown: the malformed key and
	// the other CA's certificate (at least one handshake) are counted there.
	path := filepath.Join(c.Config(0).DataDir, "audit.db")
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	all := readLog(t, path)
	if got := standsFor(all, "127.0.0.1", node.RuleBadKey); got != 2 {
		t.Fatalf("bad-key records stand for %d refusals, want 2", got)
	}
	if got := standsFor(all, "127.0.0.1", node.RuleBadCertificate); got < 2 {
		t.Fatalf("bad-certificate records stand for %d refusals, want the forgery and at least one handshake", got)
	}
	if got := standsFor(all, h.ID().String(), node.RuleFabricNonMember); got < 2 {
		t.Fatalf("fabric records stand for %d refusals, want at least the two dials", got)
	}
}

// wantUnauthenticated fails t unless err is Unauthenticated.
func wantUnauthenticated(t testing.TB, what string, err error) {
	t.Helper()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("%s: %v, want Unauthenticated", what, err)
	}
}

// refuseKeys: no credentials, a garbage key, a malformed header (counted,
// not recorded: the garbage key's record covers it) and a revoked key,
// which names its owner.
func refuseKeys(ctx context.Context, t *testing.T, c *testnet.Cluster) {
	t.Helper()
	admin := yrdv1grpc.NewAuthServiceClient(c.Conn(0))
	// No credentials.
	_, err := yrdv1grpc.NewAuthServiceClient(tlsClient(t, c, 0, nil)).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	wantUnauthenticated(t, "no credentials", err)
	r := oneRefusal(t, c, 0, node.RuleNoCredentials, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE)
	fromLoopback(t, r)
	if r.GetRequester() != nil || !strings.Contains(r.GetDetail(), "/yrd.v1.AuthService/WhoAmI") {
		t.Fatalf("no credentials: %v, want no requester and the method named", r)
	}

	// A garbage key, then a malformed header: the second is counted.
	_, err = keyed(t, c, 0, "yrdk_garbage_AAAA").WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	wantUnauthenticated(t, "garbage key", err)
	fromLoopback(t, oneRefusal(t, c, 0, node.RuleBadKey, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE))
	_, err = keyed(t, c, 0, "not-a-key").WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	wantUnauthenticated(t, "malformed key", err)
	oneRefusal(t, c, 0, node.RuleBadKey, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE)

	// A revoked key names its owner.
	key, err := admin.CreateAPIKey(ctx, &yrdv1.CreateAPIKeyRequest{Org: "sh-leavers", Role: yrdv1.Role_ROLE_ANALYST, Name: "leaver"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeAPIKey(ctx, &yrdv1.RevokeAPIKeyRequest{Id: key.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = keyed(t, c, 0, key.GetToken()).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	wantUnauthenticated(t, "revoked key", err)
	r = oneRefusal(t, c, 0, node.RuleRevokedKey, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE)
	fromLoopback(t, r)
	if r.GetRequester().GetName() != "leaver" || r.GetRequester().GetOrg() != "sh-leavers" {
		t.Fatalf("revoked key: requester %v, want the key's owner", r.GetRequester())
	}
}

// refuseCertificates: a certificate signed by the node's CA that the node
// never issued, and a revoked certificate, which names its owner.
func refuseCertificates(ctx context.Context, t *testing.T, c *testnet.Cluster) {
	t.Helper()
	admin := yrdv1grpc.NewAuthServiceClient(c.Conn(0))
	// A certificate signed by the node's CA that the node never issued:
	// another credential store with a copy of the CA made it.
	ca, err := auth.LoadOrCreateCA(filepath.Join(c.Config(0).DataDir, "ca"), "shanghai")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := auth.OpenStore(filepath.Join(t.TempDir(), "rogue.db"), ca)
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	forged := clientCert(t, func(pub []byte) (*yrdv1.Certificate, error) {
		return rogue.IssueCertificate(&yrdv1.Principal{City: "shanghai", Org: "sh-ops", Name: "mallory", Role: yrdv1.Role_ROLE_OPERATOR}, pub, time.Hour, "rogue")
	})
	_, err = yrdv1grpc.NewAuthServiceClient(tlsClient(t, c, 0, withCert(forged))).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	wantUnauthenticated(t, "unknown certificate", err)
	r := oneRefusal(t, c, 0, node.RuleBadCertificate, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE)
	fromLoopback(t, r)
	if r.GetRequester() != nil {
		t.Fatalf("unknown certificate: requester %v, want none (nobody is proven)", r.GetRequester())
	}

	// A revoked certificate names its owner.
	var issued *yrdv1.Certificate
	revoked := clientCert(t, func(pub []byte) (*yrdv1.Certificate, error) {
		resp, err := admin.IssueCertificate(ctx, &yrdv1.IssueCertificateRequest{Org: "sh-leavers", Role: yrdv1.Role_ROLE_ANALYST, Name: "cert-leaver", PublicKey: pub})
		issued = resp.GetCertificate()
		return issued, err
	})
	if _, err := admin.RevokeCertificate(ctx, &yrdv1.RevokeCertificateRequest{Serial: issued.GetSerial()}); err != nil {
		t.Fatal(err)
	}
	_, err = yrdv1grpc.NewAuthServiceClient(tlsClient(t, c, 0, withCert(revoked))).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	wantUnauthenticated(t, "revoked certificate", err)
	if r = oneRefusal(t, c, 0, node.RuleRevokedCertificate, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE); r.GetRequester().GetName() != "cert-leaver" {
		t.Fatalf("revoked certificate: requester %v, want its owner", r.GetRequester())
	}
}

// refuseRoleAndOwnership: an analyst calling a publisher's method, and a
// publisher claiming a dataset of another organisation.
func refuseRoleAndOwnership(ctx context.Context, t *testing.T, c *testnet.Cluster, analyst *grpc.ClientConn) {
	t.Helper()
	// A wrong role, and a publisher's claim on another organisation.
	_, err := yrdv1grpc.NewCatalogServiceClient(analyst).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, 0, 1)})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("analyst publishing: %v", err)
	}
	r := oneRefusal(t, c, 0, node.RuleRoleMethod, yrdv1.AuditAction_AUDIT_ACTION_ADMIN)
	if r.GetRequester().GetOrg() != "sh-analytics" || !strings.Contains(r.GetDetail(), "PublishDataset") {
		t.Fatalf("role refusal: %v", r)
	}
	other := dsAt(c, 0, 2)
	other.OwnerOrg = "sh-someone-else"
	if _, err := publisherClient(t, c, 0).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: other}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("claiming another organisation: %v", err)
	}
	if r = oneRefusal(t, c, 0, node.RuleDatasetOtherOrg, yrdv1.AuditAction_AUDIT_ACTION_PUBLISH); r.GetDatasetId() != other.GetId() || r.GetRequester().GetOrg() != orgOf("shanghai") {
		t.Fatalf("ownership refusal: %v", r)
	}
}

// refuseOtherOrgsCDO: a CDO of another organisation approves, rejects and
// revokes an analyst's grant request; it publishes the one dataset the
// test leaves in the catalog.
func refuseOtherOrgsCDO(ctx context.Context, t *testing.T, c *testnet.Cluster, analyst *grpc.ClientConn) {
	t.Helper()
	// A CDO of another organisation approves, rejects and revokes: three
	// refusals, and the grant is untouched.
	d := importantAt(c, 0, "sh-health")
	publish(t, yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, "sh-health", yrdv1.Role_ROLE_PUBLISHER)), d)
	g, err := yrdv1grpc.NewGrantServiceClient(analyst).RequestGrant(ctx, &yrdv1.RequestGrantRequest{DatasetId: d.GetId(),
		Purpose: d.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	stranger := yrdv1grpc.NewGrantServiceClient(connAs(t, c, 0, "sh-transport", yrdv1.Role_ROLE_CDO))
	id := g.GetGrant().GetId()
	for _, decide := range []func(context.Context, *yrdv1.DecideGrantRequest, ...grpc.CallOption) (*yrdv1.DecideGrantResponse, error){
		stranger.ApproveGrant, stranger.RejectGrant, stranger.RevokeGrant} {
		if _, err := decide(ctx, &yrdv1.DecideGrantRequest{Id: id}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("decision by another organisation's CDO: %v", err)
		}
	}
	recs := withRule(t, c, 0, node.RuleGrantOtherOrg)
	var actions []yrdv1.AuditAction
	for _, r := range recs {
		if r.GetGrantId() != id || r.GetDatasetId() != d.GetId() || r.GetRequester().GetOrg() != "sh-transport" ||
			r.GetRequester().GetRole() != yrdv1.Role_ROLE_CDO || r.GetDecision() != yrdv1.Effect_EFFECT_DENY {
			t.Fatalf("grant refusal: %v", r)
		}
		actions = append(actions, r.GetAction())
	}
	if want := []yrdv1.AuditAction{yrdv1.AuditAction_AUDIT_ACTION_GRANT_APPROVE, yrdv1.AuditAction_AUDIT_ACTION_GRANT_REJECT,
		yrdv1.AuditAction_AUDIT_ACTION_GRANT_REVOKE}; !slices.Equal(actions, want) {
		t.Fatalf("grant refusals %v, want %v", actions, want)
	}
	got, err := yrdv1grpc.NewGrantServiceClient(c.Conn(0)).GetGrant(ctx, &yrdv1.GetGrantRequest{Id: id})
	if err != nil || got.GetGrant().GetState() != yrdv1.GrantState_GRANT_STATE_REQUESTED || got.GetGrant().GetVersion() != g.GetGrant().GetVersion() {
		t.Fatalf("grant after the refusals: %v %v, want it still requested, unchanged", got, err)
	}
}

// refuseNonMemberPeer: a peer outside the cluster dials the node's fabric
// twice; it returns the peer.
func refuseNonMemberPeer(ctx context.Context, t *testing.T, c *testnet.Cluster) *fabric.Host {
	t.Helper()
	// A non-member peer on the fabric, twice.
	h := outsider(t)
	n := c.Node(0)
	if err := h.SetPeerAddrs(n.PeerID(), n.FabricAddrs()); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{string(fabric.ProtocolRaft), string(fabric.ProtocolRPC)} {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if conn, err := h.Dial(dctx, n.PeerID(), fabricProtocol(proto)); err == nil {
			conn.Close()
		}
		cancel()
	}
	r := oneRefusal(t, c, 0, node.RuleFabricNonMember, yrdv1.AuditAction_AUDIT_ACTION_PEER_CONNECT)
	if r.GetSource() != h.ID().String() || !strings.Contains(r.GetDetail(), "127.0.0.1") {
		t.Fatalf("fabric refusal: %v, want the outsider's peer id and address", r)
	}
	return h
}

// refuseOtherCA: a client certificate of another CA fails the TLS
// handshake.
func refuseOtherCA(ctx context.Context, t *testing.T, c *testnet.Cluster) {
	t.Helper()
	// A client certificate of another CA fails the TLS handshake; the
	// node's CA-signed forgery above already had this source's record of
	// the rule this minute, so this one is only counted.
	elsewhere, err := auth.LoadOrCreateCA(t.TempDir(), "hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	foreignStore, err := auth.OpenStore(filepath.Join(t.TempDir(), "foreign.db"), elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	defer foreignStore.Close()
	foreign := clientCert(t, func(pub []byte) (*yrdv1.Certificate, error) {
		return foreignStore.IssueCertificate(&yrdv1.Principal{City: "shanghai", Org: "sh-ops", Name: "eve", Role: yrdv1.Role_ROLE_OPERATOR}, pub, time.Hour, "elsewhere")
	})
	fconn := tlsClient(t, c, 0, withCert(foreign))
	if _, err := yrdv1grpc.NewAuthServiceClient(fconn).WhoAmI(ctx, &yrdv1.WhoAmIRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("certificate of another CA: %v, want the handshake to fail", err)
	}
	fconn.Close()
	oneRefusal(t, c, 0, node.RuleBadCertificate, yrdv1.AuditAction_AUDIT_ACTION_AUTHENTICATE)
}

// readLog reads every record of a stopped node's audit log.
func readLog(t testing.TB, path string) []*yrdv1.AuditRecord {
	t.Helper()
	r, err := audit.ReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*yrdv1.AuditRecord
	for rec, err := range r.Records(0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// standsFor is how many refusals of rule from source the records stand
// for: one each, a summary its count.
func standsFor(recs []*yrdv1.AuditRecord, source, rule string) uint64 {
	var n uint64
	for _, r := range recs {
		if r.GetSource() == source && slices.Contains(r.GetRuleIds(), rule) {
			n += max(r.GetCount(), 1)
		}
	}
	return n
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusalFloodIsSummarised: 5,000 calls with a garbage key from one
// client leave O(1) records (the first at once, one summary per minute,
// written at shutdown at the latest) that stand for exactly 5,000
// refusals; during the flood an authenticated caller is answered, and the
// node stops without logging an error.
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestRefusalFloodIsSummarised(t *testing.T) {
	const flood, workers = 5000, 8
	logs := &syncBuffer{}
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai"}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := testCtx(t)
	good := yrdv1grpc.NewAuthServiceClient(connAs(t, c, 0, "sh-analytics", yrdv1.Role_ROLE_ANALYST))
	whoAmI := func() time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := good.WhoAmI(ctx, &yrdv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("authenticated call: %v", err)
		}
		return time.Since(start)
	}
	var quiet []time.Duration
	for range 20 {
		quiet = append(quiet, whoAmI())
	}

	bad := keyed(t, c, 0, "yrdk_garbage_AAAA")
	started := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += workers {
				if _, err := bad.WhoAmI(ctx, &yrdv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
					errs <- fmt.Errorf("garbage key call %d: %v", i, err)
					return
				}
			}
		}()
	}
	floodDone := make(chan struct{})
	go func() { wg.Wait(); close(floodDone) }()
	var during []time.Duration
	for busy := true; busy; {
		during = append(during, whoAmI())
		select {
		case <-floodDone:
			busy = false
		default:
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(started)
	t.Logf("flood of %d in %v; authenticated calls: quiet median %v, %d during the flood, median %v, max %v",
		flood, took, median(quiet), len(during), median(during), slices.Max(during))
	// Refusals never wait for the disk, so the flood costs the others CPU
	// only: the typical authenticated call stays within 10x of quiet.
	if median(during) > 10*median(quiet) {
		t.Fatalf("authenticated calls during the flood: median %v, over 10x the quiet %v", median(during), median(quiet))
	}

	path := filepath.Join(c.Config(0).DataDir, "audit.db")
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", logs.String())
	}
	var recs []*yrdv1.AuditRecord
	for _, r := range readLog(t, path) {
		if slices.Contains(r.GetRuleIds(), node.RuleBadKey) {
			recs = append(recs, r)
		}
	}
	// One first record and one summary per minute the flood touched.
	minutes := int(took/time.Minute) + 2
	if len(recs) < 2 || len(recs) > 2*minutes {
		t.Fatalf("%d bad-key records for a flood of %v, want 2 per minute touched (at most %d): %v", len(recs), took, 2*minutes, recs)
	}
	if got := standsFor(recs, "127.0.0.1", node.RuleBadKey); got != flood {
		t.Fatalf("records stand for %d refusals, want %d: %v", got, flood, recs)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestAuditListFiltersByRuleAndOutcome: rule_id matches any of a record's
// rule ids exactly, with the decision as the outcome; bad values are
// InvalidArgument naming the field.
func TestAuditListFiltersByRuleAndOutcome(t *testing.T) {
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai"}})
	d := publishAt(t, c, 0, 1)
	analyst := connAs(t, c, 0, "sh-analytics", yrdv1.Role_ROLE_ANALYST)
	decide(t, analyst, &yrdv1.AccessRequest{DatasetId: d.GetId(), Purpose: d.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS})
	decide(t, analyst, &yrdv1.AccessRequest{DatasetId: d.GetId(), Purpose: "not-a-permitted-purpose", ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS})
	_, err := keyed(t, c, 0, "yrdk_garbage_AAAA").WhoAmI(testCtx(t), &yrdv1.WhoAmIRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatal(err)
	}

	if recs := auditRecords(t, c, 0, &yrdv1.ListAuditRequest{RuleId: "general.rows"}); len(recs) != 1 || recs[0].GetDecision() != yrdv1.Effect_EFFECT_ALLOW_ROWS {
		t.Fatalf("rule general.rows: %v", recs)
	}
	if recs := auditRecords(t, c, 0, &yrdv1.ListAuditRequest{RuleId: "purpose.permitted", Decision: yrdv1.Effect_EFFECT_DENY}); len(recs) != 1 {
		t.Fatalf("rule purpose.permitted, deny: %v", recs)
	}
	if recs := auditRecords(t, c, 0, &yrdv1.ListAuditRequest{RuleId: node.RuleBadKey, Decision: yrdv1.Effect_EFFECT_ALLOW_ROWS}); len(recs) != 0 {
		t.Fatalf("a refusal listed as allowed: %v", recs)
	}
	if recs := auditRecords(t, c, 0, &yrdv1.ListAuditRequest{RuleId: "auth.bad"}); len(recs) != 0 {
		t.Fatalf("a rule prefix matched: %v", recs)
	}
	auditor := yrdv1grpc.NewAuditServiceClient(connAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	for field, req := range map[string]*yrdv1.ListAuditRequest{
		"decision": {Decision: 42},
		"action":   {Action: 99},
		"rule_id":  {RuleId: "Auth Bad Key!"},
	} {
		_, err := auditor.ListAudit(testCtx(t), req)
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), field+":") {
			t.Fatalf("%s: %v, want InvalidArgument naming it", field, err)
		}
	}
}
