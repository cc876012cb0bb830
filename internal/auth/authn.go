package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Methods of authentication, as WhoAmI and the audit trail report them.
const (
	MethodAPIKey      = "api-key"
	MethodCertificate = "certificate"
)

// The web console calls the node's API in-process for the person signed in
// to it. A person who signed in with a client certificate presented it to
// the console's TLS listener, not to the API, so the console passes it on
// in ConsoleCertificateHeader (base64 DER). The API accepts that header
// only on connections whose address is of ConsoleNetwork, which only the
// node's in-memory console listener makes: a remote client cannot send a
// certificate without its key.
const (
	ConsoleCertificateHeader = "x-yrd-console-certificate"
	ConsoleNetwork           = "yrd-console"
)

// Authenticate finds the caller's principal from an API key in the
// "authorization: Bearer ..." metadata or, failing that, from a client
// certificate: the one the TLS layer verified or, from the console, the
// one its TLS layer verified. Anything claimed in a request body is never
// consulted. A refusal is an *AuthError (see RefusalOf).
func (s *Store) Authenticate(ctx context.Context) (*yrdv1.Principal, string, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if vals := md.Get(ConsoleCertificateHeader); len(vals) > 0 {
			return s.consoleCertificate(ctx, vals[0])
		}
		if vals := md.Get("authorization"); len(vals) > 0 {
			token, ok := strings.CutPrefix(vals[0], "Bearer ")
			if !ok {
				return nil, "", refuse(RefusedBadKey, nil, "authorization metadata must be \"Bearer <api key>\"")
			}
			key, err := s.VerifyKey(strings.TrimSpace(token))
			if err != nil {
				return nil, "", err
			}
			return key.GetPrincipal(), MethodAPIKey, nil
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			rec, err := s.VerifyCertificate(ti.State.VerifiedChains[0][0])
			if err != nil {
				return nil, "", err
			}
			return rec.GetPrincipal(), MethodCertificate, nil
		}
	}
	return nil, "", refuse(RefusedNoCredentials, nil, "no credentials: send an API key as \"authorization: Bearer <key>\" or a client certificate from this city's CA")
}

// consoleCertificate authenticates a certificate the console passed on,
// checking it as the TLS layer would (chain to the city CA, client use)
// and then against the node's records, as for a direct client.
func (s *Store) consoleCertificate(ctx context.Context, b64 string) (*yrdv1.Principal, string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil || p.Addr.Network() != ConsoleNetwork {
		return nil, "", refuse(RefusedBadCertificate, nil, "%s is accepted only from the node's own console", ConsoleCertificateHeader)
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", refuse(RefusedBadCertificate, nil, "%s: not base64", ConsoleCertificateHeader)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", refuse(RefusedBadCertificate, nil, "%s: %v", ConsoleCertificateHeader, err)
	}
	opts := x509.VerifyOptions{Roots: s.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err != nil {
		return nil, "", refuse(RefusedBadCertificate, nil, "client certificate: %v", err)
	}
	rec, err := s.VerifyCertificate(cert)
	if err != nil {
		return nil, "", err
	}
	return rec.GetPrincipal(), MethodCertificate, nil
}
