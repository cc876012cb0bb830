package auth

import (
	"context"
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

// Authenticate finds the caller's principal from an API key in the
// "authorization: Bearer ..." metadata or, failing that, from a client
// certificate the TLS layer verified. Anything claimed in a request body is
// never consulted. A refusal is an *AuthError (see RefusalOf).
func (s *Store) Authenticate(ctx context.Context) (*yrdv1.Principal, string, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
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
