package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

func connAs(t testing.TB, c *testnet.Cluster, i int, org string, role yrdv1.Role) *grpc.ClientConn {
	t.Helper()
	conn, err := c.ConnAs(i, org, role)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// importantAt is an IMPORTANT health dataset owned by org in node's city.
func importantAt(c *testnet.Cluster, node int, org string) *yrdv1.Dataset {
	var d *yrdv1.Dataset
	for _, s := range sample.Datasets() {
		if s.GetLevel() == yrdv1.ClassificationLevel_LEVEL_IMPORTANT {
			d = s
		}
	}
	city := c.Config(node).City
	d.Id, d.OwnerCity, d.OwnerOrg = city+".health.visits", city, org
	return d
}

// TestCredentialsAndRolesAreEnforced: no credentials, a revoked API key,
// a revoked client certificate, a wrong role and a body claiming another
// organisation or city are each refused, and nothing is written on any
// node. (One scenario whose steps share their data and state, so it is
// one function beyond the usual length.)
func TestCredentialsAndRolesAreEnforced(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	existing := publishAt(t, c, 0, 1)
	cfg, err := c.TLSConfig(0)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(opts ...grpc.DialOption) yrdv1grpc.CatalogServiceClient {
		conn, err := grpc.NewClient(c.Config(0).APIAddr, append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return yrdv1grpc.NewCatalogServiceClient(conn)
	}
	expect := func(what string, err error, code codes.Code) {
		t.Helper()
		if status.Code(err) != code {
			t.Fatalf("%s: %v, want %v", what, err, code)
		}
	}

	// No credentials at all.
	_, err = dial().GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: existing.GetId()})
	expect("no credentials", err, codes.Unauthenticated)

	// A revoked API key, on a connection that worked a moment ago.
	admin := yrdv1grpc.NewAuthServiceClient(c.Conn(0))
	key, err := admin.CreateAPIKey(testCtx(t), &yrdv1.CreateAPIKeyRequest{Org: orgOf("shanghai"), Role: yrdv1.Role_ROLE_PUBLISHER, Name: "leaver"})
	if err != nil {
		t.Fatal(err)
	}
	keyed := dial(grpc.WithPerRPCCredentials(bearerToken(key.GetToken())))
	if _, err := keyed.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: existing.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeAPIKey(testCtx(t), &yrdv1.RevokeAPIKeyRequest{Id: key.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = keyed.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: existing.GetId()})
	expect("revoked key", err, codes.Unauthenticated)
	_, err = keyed.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, 0, 2)})
	expect("revoked key writing", err, codes.Unauthenticated)

	// A revoked client certificate.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	cert, err := admin.IssueCertificate(testCtx(t), &yrdv1.IssueCertificateRequest{Org: orgOf("shanghai"), Role: yrdv1.Role_ROLE_PUBLISHER, Name: "cert-user", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(cert.GetCertificate().GetPem()))
	certCfg := cfg.Clone()
	certCfg.Certificates = []tls.Certificate{{Certificate: [][]byte{block.Bytes}, PrivateKey: priv}}
	certConn, err := grpc.NewClient(c.Config(0).APIAddr, grpc.WithTransportCredentials(credentials.NewTLS(certCfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer certConn.Close()
	certClient := yrdv1grpc.NewCatalogServiceClient(certConn)
	if _, err := certClient.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: existing.GetId()}); err != nil {
		t.Fatalf("valid certificate: %v", err)
	}
	if _, err := admin.RevokeCertificate(testCtx(t), &yrdv1.RevokeCertificateRequest{Serial: cert.GetCertificate().GetSerial()}); err != nil {
		t.Fatal(err)
	}
	_, err = certClient.GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: existing.GetId()})
	expect("revoked certificate", err, codes.Unauthenticated)

	// A wrong role: an analyst may not publish, a publisher may not read the audit trail.
	analyst := yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, orgOf("shanghai"), yrdv1.Role_ROLE_ANALYST))
	_, err = analyst.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, 0, 3)})
	expect("analyst publishing", err, codes.PermissionDenied)
	_, err = yrdv1grpc.NewAuditServiceClient(connAs(t, c, 0, orgOf("shanghai"), yrdv1.Role_ROLE_PUBLISHER)).ListAudit(testCtx(t), &yrdv1.ListAuditRequest{})
	expect("publisher reading the audit trail", err, codes.PermissionDenied)

	// A body claiming another organisation, or another city.
	pub1 := publisherClient(t, c, 0)
	other := dsAt(c, 0, 4)
	other.OwnerOrg = "sh-someone-else"
	_, err = pub1.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: other})
	expect("claiming another organisation", err, codes.PermissionDenied)
	elsewhere := dsAt(c, 1, 5) // hangzhou's
	elsewhere.OwnerOrg = orgOf("shanghai")
	_, err = pub1.PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: elsewhere})
	expect("claiming another city", err, codes.PermissionDenied)

	// Nothing was written by any of it, on any node.
	for i := 0; i < c.Len(); i++ {
		if got := c.Node(i).Catalog().DatasetCount(); got != 1 {
			t.Fatalf("%s's catalog holds %d datasets, want only the first", c.Config(i).City, got)
		}
	}
}

type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearerToken) RequireTransportSecurity() bool { return true }

func decide(t *testing.T, conn *grpc.ClientConn, access *yrdv1.AccessRequest) *yrdv1.Decision {
	t.Helper()
	resp, err := yrdv1grpc.NewPolicyServiceClient(conn).Decide(testCtx(t), &yrdv1.DecideRequest{Access: access})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDecision()
}

// TestGrantLifecycleAcrossTheDelta: requested at Hangzhou, approved by
// Shanghai's CDO, visible on every node, revoked, and the next decision
// refused on every node.
func TestGrantLifecycleAcrossTheDelta(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	d := importantAt(c, 0, "sh-health")
	if _, err := yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, "sh-health", yrdv1.Role_ROLE_PUBLISHER)).PublishDataset(testCtx(t),
		&yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
		t.Fatal(err)
	}
	purpose := d.GetPermittedPurposes()[0]
	access := &yrdv1.AccessRequest{DatasetId: d.GetId(), Purpose: purpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES,
		Aggregates: []*yrdv1.Aggregate{{Function: "count"}}}
	hzAnalyst := connAs(t, c, 1, "hz-health", yrdv1.Role_ROLE_ANALYST)
	if got := decide(t, hzAnalyst, access); got.GetEffect() != yrdv1.Effect_EFFECT_DENY || !slices.Contains(got.GetRuleIds(), "important.grant") {
		t.Fatalf("before any grant: %v", got)
	}

	req, err := yrdv1grpc.NewGrantServiceClient(hzAnalyst).RequestGrant(testCtx(t), &yrdv1.RequestGrantRequest{DatasetId: d.GetId(),
		Purpose: purpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id := req.GetGrant().GetId()
	// Hangzhou's CDO does not own the data; Shanghai's CDO of sh-health does.
	_, err = yrdv1grpc.NewGrantServiceClient(connAs(t, c, 1, "hz-health", yrdv1.Role_ROLE_CDO)).ApproveGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: id})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("approval by a CDO of another organisation: %v", err)
	}
	shCDO := yrdv1grpc.NewGrantServiceClient(connAs(t, c, 0, "sh-health", yrdv1.Role_ROLE_CDO))
	if _, err := shCDO.ApproveGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: id, Note: "approved for planning"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c.Len(); i++ {
		g, err := yrdv1grpc.NewGrantServiceClient(c.Conn(i)).GetGrant(testCtx(t), &yrdv1.GetGrantRequest{Id: id})
		if err != nil || g.GetGrant().GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED {
			t.Fatalf("grant on %s: %v %v", c.Config(i).City, g, err)
		}
	}
	got := decide(t, hzAnalyst, access)
	if got.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES || got.GetGrantId() != id || got.GetMinGroupSize() < 10 {
		t.Fatalf("with the grant: %v", got)
	}

	if _, err := shCDO.RevokeGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	// The very next decision is refused, whichever node the requester's
	// organisation asks through.
	for i := 0; i < c.Len(); i++ {
		conn := hzAnalyst
		if i != 1 {
			conn = connAs(t, c, i, "hz-health", yrdv1.Role_ROLE_ANALYST) // same org name, another city's principal
		}
		got := decide(t, conn, access)
		if got.GetEffect() != yrdv1.Effect_EFFECT_DENY || !strings.Contains(got.GetReason(), "revoked") && i == 1 {
			t.Fatalf("after revocation, asking through %s: %v", c.Config(i).City, got)
		}
	}
}

// TestApprovalWithExpiresAtShortensTheGrant: a CDO approving with
// expires_at sets the grant's expiry to that time, seen on every node; a
// time later than the requested duration allows, one in the past, or an
// expiry on a rejection is refused naming expires_at, and changes nothing.
func TestApprovalWithExpiresAtShortensTheGrant(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	d := importantAt(c, 0, "sh-health")
	if _, err := yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, "sh-health", yrdv1.Role_ROLE_PUBLISHER)).PublishDataset(testCtx(t),
		&yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
		t.Fatal(err)
	}
	req, err := yrdv1grpc.NewGrantServiceClient(connAs(t, c, 1, "hz-health", yrdv1.Role_ROLE_ANALYST)).RequestGrant(testCtx(t),
		&yrdv1.RequestGrantRequest{DatasetId: d.GetId(), Purpose: d.GetPermittedPurposes()[0],
			ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id := req.GetGrant().GetId()
	shCDO := yrdv1grpc.NewGrantServiceClient(connAs(t, c, 0, "sh-health", yrdv1.Role_ROLE_CDO))
	for what, r := range map[string]*yrdv1.DecideGrantRequest{
		"later than requested": {Id: id, ExpiresAt: timestamppb.New(time.Now().Add(31 * 24 * time.Hour))},
		"in the past":          {Id: id, ExpiresAt: timestamppb.New(time.Now().Add(-time.Hour))},
	} {
		_, err := shCDO.ApproveGrant(testCtx(t), r)
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "expires_at: ") {
			t.Fatalf("approval with an expiry %s: %v", what, err)
		}
	}
	_, err = shCDO.RejectGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: id, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "expires_at") {
		t.Fatalf("a rejection with an expiry: %v", err)
	}
	expires := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	res, err := shCDO.ApproveGrant(testCtx(t), &yrdv1.DecideGrantRequest{Id: id, Note: "a week is enough", ExpiresAt: timestamppb.New(expires)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c.Len(); i++ {
		g, err := yrdv1grpc.NewGrantServiceClient(c.Conn(i)).GetGrant(testCtx(t), &yrdv1.GetGrantRequest{Id: id,
			Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		if err != nil || g.GetGrant().GetState() != yrdv1.GrantState_GRANT_STATE_APPROVED || !g.GetGrant().GetExpiresAt().AsTime().Equal(expires) ||
			g.GetGrant().GetNote() != "a week is enough" {
			t.Fatalf("grant on %s after approval until %v (answer %v): %v %v", c.Config(i).City, expires, res.GetGrant().GetExpiresAt().AsTime(), g, err)
		}
	}
}

func TestCrossBorderPartnerRules(t *testing.T) {
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai", "hangzhou", "nanjing", "zhoushan"}, Voters: 3,
		OutsideMainland: map[string]bool{"zhoushan": true}})
	var trips, credit *yrdv1.Dataset
	for _, d := range sample.Datasets() {
		switch d.GetSector() {
		case "connected-vehicles":
			trips = d
		case "civil-affairs":
			if d.GetOwnerCity() == "shanghai" {
				credit = d // a GENERAL dataset outside the trial sectors
			}
		}
	}
	important := importantAt(c, 0, "sh-health")
	for _, d := range []*yrdv1.Dataset{trips, credit, important} {
		conn := connAs(t, c, c.Index(d.GetOwnerCity()), d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)
		if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(testCtx(t), &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
	}
	partner := connAs(t, c, 3, "overseas-oem", yrdv1.Role_ROLE_ANALYST)
	cases := []struct {
		name   string
		access *yrdv1.AccessRequest
		effect yrdv1.Effect
		rule   string
	}{
		{"IMPORTANT data", &yrdv1.AccessRequest{DatasetId: important.GetId(), Purpose: important.GetPermittedPurposes()[0],
			ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Aggregates: []*yrdv1.Aggregate{{Function: "count"}}}, yrdv1.Effect_EFFECT_DENY, "crossborder.general-only"},
		// A dataset outside the trial sectors cannot be marked cross-border
		// eligible (catalogspec), so eligibility is what refuses it.
		{"non-trial sector", &yrdv1.AccessRequest{DatasetId: credit.GetId(), Purpose: credit.GetPermittedPurposes()[0],
			ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS, Columns: []string{"district"}}, yrdv1.Effect_EFFECT_DENY, "crossborder.eligible"},
		{"personal column", &yrdv1.AccessRequest{DatasetId: trips.GetId(), Purpose: trips.GetPermittedPurposes()[0],
			ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS, Columns: []string{personalColumn(trips)}}, yrdv1.Effect_EFFECT_DENY, "crossborder.no-personal"},
		{"non-personal columns of trial data", &yrdv1.AccessRequest{DatasetId: trips.GetId(), Purpose: trips.GetPermittedPurposes()[0],
			ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS, Columns: []string{plainColumn(trips)}}, yrdv1.Effect_EFFECT_ALLOW_ROWS, "general.rows"},
	}
	for _, tc := range cases {
		got := decide(t, partner, tc.access)
		if got.GetEffect() != tc.effect || !slices.ContainsFunc(got.GetRuleIds(), func(r string) bool { return strings.HasPrefix(r, tc.rule) }) || !got.GetCrossBorder() {
			t.Fatalf("%s: %v, want %v by %s, marked cross-border", tc.name, got, tc.effect, tc.rule)
		}
	}
	// Every one of those decisions is on the partner's node's record, tagged cross-border.
	recs, err := yrdv1grpc.NewAuditServiceClient(connAs(t, c, 3, "zs-audit", yrdv1.Role_ROLE_AUDITOR)).ListAudit(testCtx(t),
		&yrdv1.ListAuditRequest{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs.GetRecords()) != len(cases) || !recs.GetRecords()[0].GetCrossBorder() {
		t.Fatalf("audit holds %d query records (%v), want %d tagged cross-border", len(recs.GetRecords()), recs.GetRecords(), len(cases))
	}
}

func personalColumn(d *yrdv1.Dataset) string {
	for _, col := range d.GetSchema().GetColumns() {
		if col.GetPersonalInfo() != yrdv1.PersonalInfo_PERSONAL_INFO_NONE {
			return col.GetName()
		}
	}
	panic("no personal column in " + d.GetId())
}

func plainColumn(d *yrdv1.Dataset) string {
	for _, col := range d.GetSchema().GetColumns() {
		if col.GetPersonalInfo() == yrdv1.PersonalInfo_PERSONAL_INFO_NONE {
			return col.GetName()
		}
	}
	panic("no plain column in " + d.GetId())
}

// TestAuditTrailVerifiesAndTamperingIsNamed runs decisions, waits for the
// node to anchor its audit head in the catalog, then checks a copy of the
// node's audit file offline, untouched and tampered.
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestAuditTrailVerifiesAndTamperingIsNamed(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	d := publishAt(t, c, 0, 1)
	analyst := connAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)
	for i := 0; i < 10; i++ {
		decide(t, analyst, &yrdv1.AccessRequest{DatasetId: d.GetId(), Purpose: d.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS})
	}
	auditor := yrdv1grpc.NewAuditServiceClient(connAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR))
	n := c.Node(0)
	var anchors []*yrdv1.AuditAnchor
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := auditor.VerifyAudit(testCtx(t), &yrdv1.VerifyAuditRequest{})
		if err != nil || !v.GetOk() {
			t.Fatalf("verify of an untouched log: %v %v", v, err)
		}
		anchors, _ = n.Catalog().Anchors(n.PeerID().String())
		if len(anchors) > 0 && anchors[len(anchors)-1].GetSeq() >= v.GetRecords() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node never anchored its audit head")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pubKey, err := n.PeerID().ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := pubKey.Raw()
	src := filepath.Join(c.Config(0).DataDir, "audit.db")
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	last := anchors[len(anchors)-1].GetSeq()
	copyFile := func() string {
		dst := filepath.Join(t.TempDir(), "audit.db")
		in, _ := os.Open(src)
		defer in.Close()
		out, _ := os.Create(dst)
		io.Copy(out, in)
		out.Close()
		return dst
	}
	if rep := audit.VerifyFile(copyFile(), raw, anchors); !rep.OK {
		t.Fatalf("untouched copy: %v", rep)
	}
	key := func(seq uint64) []byte { return []byte{0, 0, 0, 0, 0, 0, byte(seq >> 8), byte(seq)} }
	tamper := func(f func(b *bolt.Bucket) error) audit.Report {
		t.Helper()
		path := copyFile()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return f(tx.Bucket([]byte("records"))) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return audit.VerifyFile(path, raw, anchors)
	}
	mid := last / 2
	for name, tc := range map[string]struct {
		f     func(b *bolt.Bucket) error
		first uint64
	}{
		"one byte changed": {func(b *bolt.Bucket) error {
			v := append([]byte(nil), b.Get(key(mid))...)
			v[len(v)/2] ^= 0x01
			return b.Put(key(mid), v)
		}, mid},
		"record removed": {func(b *bolt.Bucket) error { return b.Delete(key(mid)) }, mid},
		"records reordered": {func(b *bolt.Bucket) error {
			a, bb := append([]byte(nil), b.Get(key(mid))...), append([]byte(nil), b.Get(key(mid+1))...)
			if err := b.Put(key(mid), bb); err != nil {
				return err
			}
			return b.Put(key(mid+1), a)
		}, mid},
		"tail cut": {func(b *bolt.Bucket) error { return b.Delete(key(last)) }, last},
	} {
		rep := tamper(tc.f)
		if rep.OK || rep.FirstBad != tc.first || rep.Problem == "" {
			t.Fatalf("%s: %+v, want a failure naming record %d", name, rep, tc.first)
		}
	}
}

// TestPolicyChangesAreVersionedAndReachEveryNode: an operator raises k;
// every node's next decision uses the new version.
func TestPolicyChangesAreVersionedAndReachEveryNode(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	d := publishAt(t, c, 0, 1)
	ps := yrdv1grpc.NewPolicyServiceClient(c.Conn(2))
	cur, err := ps.GetPolicy(testCtx(t), &yrdv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	params := cur.GetParams()
	params.DefaultMinGroupSize = 25
	if _, err := ps.UpdatePolicy(testCtx(t), &yrdv1.UpdatePolicyRequest{Params: params, ExpectedVersion: cur.GetParams().GetVersion() + 1}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("update against a stale version: %v", err)
	}
	up, err := ps.UpdatePolicy(testCtx(t), &yrdv1.UpdatePolicyRequest{Params: params, ExpectedVersion: cur.GetParams().GetVersion()})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetParams().GetVersion() != cur.GetParams().GetVersion()+1 {
		t.Fatalf("policy version %d after an update from %d", up.GetParams().GetVersion(), cur.GetParams().GetVersion())
	}
	access := &yrdv1.AccessRequest{DatasetId: d.GetId(), Purpose: d.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES,
		GroupBy: []string{"district"}, Columns: []string{"district"}, Aggregates: []*yrdv1.Aggregate{{Function: "count"}}}
	for i := 0; i < c.Len(); i++ {
		got := decide(t, connAs(t, c, i, c.Config(i).City+"-analytics", yrdv1.Role_ROLE_ANALYST), access)
		if got.GetPolicyVersion() != up.GetParams().GetVersion() || got.GetMinGroupSize() != 25 {
			t.Fatalf("%s decided with policy v%d, k=%d; want v%d, k=25", c.Config(i).City, got.GetPolicyVersion(), got.GetMinGroupSize(), up.GetParams().GetVersion())
		}
	}
	_, err = yrdv1grpc.NewPolicyServiceClient(connAs(t, c, 2, "nanjing-analytics", yrdv1.Role_ROLE_ANALYST)).UpdatePolicy(testCtx(t),
		&yrdv1.UpdatePolicyRequest{Params: params, ExpectedVersion: up.GetParams().GetVersion()})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("an analyst changing the policy: %v", err)
	}
}

// TestRegradeIsAudited: changing a dataset's level is an ordinary catalog
// change, and it is on record as a re-grade.
func TestRegradeIsAudited(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	d := publishAt(t, c, 0, 1)
	d.Level = yrdv1.ClassificationLevel_LEVEL_IMPORTANT
	d.CrossBorderEligible = false
	if _, err := publisherClient(t, c, 0).UpdateDataset(testCtx(t), &yrdv1.UpdateDatasetRequest{Dataset: d, ExpectedVersion: d.GetVersion()}); err != nil {
		t.Fatal(err)
	}
	recs, err := yrdv1grpc.NewAuditServiceClient(connAs(t, c, 0, "shanghai-audit", yrdv1.Role_ROLE_AUDITOR)).ListAudit(testCtx(t),
		&yrdv1.ListAuditRequest{Action: yrdv1.AuditAction_AUDIT_ACTION_REGRADE})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs.GetRecords()) != 1 || recs.GetRecords()[0].GetDatasetId() != d.GetId() || !strings.Contains(recs.GetRecords()[0].GetDetail(), "LEVEL_IMPORTANT") {
		t.Fatalf("re-grade records: %v", recs.GetRecords())
	}
}

// TestListGrantsByOwner: owner_city and owner_org keep the grants on that
// owner's datasets, a CDO's own; empty keeps all.
func TestListGrantsByOwner(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	request := func(d *yrdv1.Dataset) string {
		t.Helper()
		if _, err := yrdv1grpc.NewCatalogServiceClient(connAs(t, c, 0, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)).PublishDataset(testCtx(t),
			&yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
		req, err := yrdv1grpc.NewGrantServiceClient(connAs(t, c, 1, "hz-health", yrdv1.Role_ROLE_ANALYST)).RequestGrant(testCtx(t),
			&yrdv1.RequestGrantRequest{DatasetId: d.GetId(), Purpose: d.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES})
		if err != nil {
			t.Fatal(err)
		}
		return req.GetGrant().GetId()
	}
	health := request(importantAt(c, 0, "sh-health"))
	other := importantAt(c, 0, "sh-transport")
	other.Id = "shanghai.transport.visits"
	request(other)
	list := func(city, org string) []string {
		resp, err := yrdv1grpc.NewGrantServiceClient(connAs(t, c, 2, "nj-audit", yrdv1.Role_ROLE_AUDITOR)).ListGrants(testCtx(t),
			&yrdv1.ListGrantsRequest{OwnerCity: city, OwnerOrg: org, Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, g := range resp.GetGrants() {
			ids = append(ids, g.GetId())
		}
		return ids
	}
	if got := list("shanghai", "sh-health"); len(got) != 1 || got[0] != health {
		t.Fatalf("grants on sh-health's data: %v, want [%s]", got, health)
	}
	if got := list("", "sh-health"); len(got) != 1 {
		t.Fatalf("grants on sh-health's data in any city: %v", got)
	}
	if got := list("hangzhou", "sh-health"); len(got) != 0 {
		t.Fatalf("grants on hangzhou's sh-health data: %v", got)
	}
	if got := list("", ""); len(got) != 2 {
		t.Fatalf("every grant: %v", got)
	}
}
