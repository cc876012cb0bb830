package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func analyst() *yrdv1.Principal {
	return &yrdv1.Principal{City: "hangzhou", Org: "hz-health", Name: "wang.li", Role: yrdv1.Role_ROLE_ANALYST}
}

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(filepath.Join(dir, "auth.db"), ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestCAPersistsAcrossLoads(t *testing.T) {
	_, dir := openStore(t)
	a, err := LoadOrCreateCA(dir, "hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateCA(dir, "hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CertPEM()) != string(b.CertPEM()) {
		t.Fatal("loading the CA twice gave two different CAs")
	}
}

func TestAPIKeysVerifyUntilRevokedAndSurviveReopen(t *testing.T) {
	s, dir := openStore(t)
	rec, token, err := s.CreateKey(analyst(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.GetSecretHash()) != 0 {
		t.Fatal("CreateKey returned the secret hash")
	}
	if !strings.HasPrefix(token, "yrdk_"+rec.GetId()+"_") {
		t.Fatalf("token %q", token)
	}
	got, err := s.VerifyKey(token)
	if err != nil || got.GetPrincipal().GetName() != "wang.li" {
		t.Fatalf("verify: %v %v", got, err)
	}
	for _, bad := range []string{"", "yrdk_", "yrdk_" + rec.GetId() + "_AAAA", token + "x", strings.Replace(token, "yrdk_", "xxxx_", 1)} {
		_, err := s.VerifyKey(bad)
		if why, p, _ := RefusalOf(err); !errors.Is(err, ErrUnauthenticated) || why != RefusedBadKey || p != nil {
			t.Fatalf("VerifyKey(%q) = %v (reason %d, principal %v), want ErrUnauthenticated, a bad key, nobody", bad, err, why, p)
		}
	}
	// The token is not stored anywhere in the file.
	s.Close()
	ca, _ := LoadOrCreateCA(dir, "hangzhou")
	s2, err := OpenStore(filepath.Join(dir, "auth.db"), ca)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.VerifyKey(token); err != nil {
		t.Fatalf("key lost on reopen: %v", err)
	}
	if _, err := s2.RevokeKey(rec.GetId()); err != nil {
		t.Fatal(err)
	}
	_, revokedErr := s2.VerifyKey(token)
	if why, p, _ := RefusalOf(revokedErr); !errors.Is(revokedErr, ErrUnauthenticated) || why != RefusedRevokedKey || p.GetName() != "wang.li" {
		t.Fatalf("revoked key: %v (reason %d, principal %v), want a revoked key of wang.li", revokedErr, why, p)
	}
	// The caller cannot tell revoked from unknown; a wrong secret for the
	// revoked key's id is a bad key, not proof of its owner.
	_, unknownErr := s2.VerifyKey("yrdk_" + rec.GetId() + "_AAAA")
	if why, p, _ := RefusalOf(unknownErr); unknownErr.Error() != revokedErr.Error() || why != RefusedBadKey || p != nil {
		t.Fatalf("wrong secret of a revoked key: %v (reason %d, principal %v)", unknownErr, why, p)
	}
	if _, err := s2.RevokeKey("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking an unknown key: %v", err)
	}
}

func TestCreateKeyValidatesPrincipal(t *testing.T) {
	s, _ := openStore(t)
	for field, p := range map[string]*yrdv1.Principal{
		"city": {City: "atlantis", Org: "o-1", Name: "n", Role: yrdv1.Role_ROLE_ANALYST},
		"org":  {City: "hangzhou", Org: "Bad Org", Name: "n", Role: yrdv1.Role_ROLE_ANALYST},
		"name": {City: "hangzhou", Org: "o-1", Name: "", Role: yrdv1.Role_ROLE_ANALYST},
		"role": {City: "hangzhou", Org: "o-1", Name: "n"},
	} {
		if _, _, err := s.CreateKey(p, "t"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Fatalf("%s: %v", field, err)
		}
	}
}

// server runs a TLS gRPC server whose health handler is guarded by
// Authenticate, and reports the principal it saw.
func server(t *testing.T, s *Store) (addr string, seen chan *yrdv1.Principal) {
	t.Helper()
	tlsCfg, err := s.CA().ServerTLS([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	seen = make(chan *yrdv1.Principal, 10)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			p, _, err := s.Authenticate(ctx)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, err.Error())
			}
			seen <- p
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), seen
}

func dial(t *testing.T, addr string, ca *CA, cert *tls.Certificate) healthpb.HealthClient {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func TestAuthenticateOverTLSWithKeyOrCertificate(t *testing.T) {
	s, _ := openStore(t)
	addr, seen := server(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// No credentials.
	client := dial(t, addr, s.CA(), nil)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credentials: %v", err)
	}
	// API key.
	_, token, _ := s.CreateKey(analyst(), "t")
	kctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	if _, err := client.Check(kctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := <-seen; p.GetOrg() != "hz-health" || p.GetRole() != yrdv1.Role_ROLE_ANALYST {
		t.Fatalf("key principal %v", p)
	}
	// Client certificate: the key pair is made by the client.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	cdo := &yrdv1.Principal{City: "hangzhou", Org: "hz-health", Name: "chen.cdo", Role: yrdv1.Role_ROLE_CDO}
	rec, err := s.IssueCertificate(cdo, pubDER, time.Hour, "t")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(rec.GetPem()))
	certClient := dial(t, addr, s.CA(), &tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key})
	if _, err := certClient.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := <-seen; p.GetName() != "chen.cdo" || p.GetRole() != yrdv1.Role_ROLE_CDO {
		t.Fatalf("certificate principal %v", p)
	}
	// Revocation takes effect on the next call, on the open connection too.
	if _, err := s.RevokeCertificate(rec.GetSerial()); err != nil {
		t.Fatal(err)
	}
	if _, err := certClient.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("revoked certificate: %v", err)
	}
	// A certificate from another city's CA does not get through TLS.
	other, _ := openStore(t)
	foreignRec, err := other.IssueCertificate(&yrdv1.Principal{City: "hangzhou", Org: "hz-health", Name: "x", Role: yrdv1.Role_ROLE_OPERATOR}, pubDER, time.Hour, "t")
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := pem.Decode([]byte(foreignRec.GetPem()))
	foreign := dial(t, addr, s.CA(), &tls.Certificate{Certificate: [][]byte{fb.Bytes}, PrivateKey: key})
	if _, err := foreign.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"analyst", "ANALYST", "ROLE_ANALYST"} {
		if r, err := ParseRole(s); err != nil || r != yrdv1.Role_ROLE_ANALYST {
			t.Fatalf("ParseRole(%q) = %v, %v", s, r, err)
		}
	}
	if _, err := ParseRole("king"); err == nil {
		t.Fatal("ParseRole accepted king")
	}
}
