package node

import (
	"context"
	"errors"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

// authService manages this node's client credentials. Credentials are
// node-local: each city's node vouches only for principals of its city.
type authService struct {
	yrdv1grpc.UnimplementedAuthServiceServer
	n *Node
}

func credErr(err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalid):
		return errorf(ErrInvalid, "%v", err)
	case errors.Is(err, auth.ErrNotFound):
		return errorf(ErrNotFound, "%v", err)
	}
	return err
}

func (s *authService) newPrincipal(org string, role yrdv1.Role, name string) *yrdv1.Principal {
	return &yrdv1.Principal{City: s.n.cfg.City, Org: org, Name: name, Role: role}
}

// checkOrgCity refuses a credential for an organisation that belongs to
// another city. The catalog is where organisations meet cities: an
// organisation that publishes datasets of another city and none of this
// one is that city's, and this city's node must not vouch for it. One the
// catalog does not know yet is this city's to name.
func (s *authService) checkOrgCity(ctx context.Context, org, what string) error {
	if org == "" {
		return nil
	}
	city := s.n.cfg.City
	first := func(f store.ListFilter) (*yrdv1.Dataset, error) {
		f.OwnerOrg, f.IncludeRetired, f.PageSize = org, true, 1
		ds, _, err := s.n.catalog.ListDatasets(f)
		if err != nil || len(ds) == 0 {
			return nil, err
		}
		return ds[0], nil
	}
	if here, err := first(store.ListFilter{OwnerCity: city}); err != nil || here != nil {
		return err
	}
	there, err := first(store.ListFilter{})
	if err != nil || there == nil {
		return err
	}
	p := principal(ctx)
	s.n.auditRefused(ctx, RuleCredentialOtherCity, &yrdv1.AuditRecord{Requester: p, Action: yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
		Detail: what + " for " + org + ": an organisation of " + there.GetOwnerCity()})
	return errorf(ErrPermissionDenied, "org: %s is an organisation of %s (it publishes %s); %s's node issues %s only for %s organisations, ask %s's operator",
		org, there.GetOwnerCity(), there.GetId(), city, what, city, there.GetOwnerCity())
}

func (s *authService) CreateAPIKey(ctx context.Context, req *yrdv1.CreateAPIKeyRequest) (*yrdv1.CreateAPIKeyResponse, error) {
	if err := s.checkOrgCity(ctx, req.GetOrg(), "API keys"); err != nil {
		return nil, err
	}
	key, token, err := s.n.creds.CreateKey(s.newPrincipal(req.GetOrg(), req.GetRole(), req.GetName()), auth.String(principal(ctx)))
	if err != nil {
		return nil, credErr(err)
	}
	return &yrdv1.CreateAPIKeyResponse{Key: key, Token: token}, nil
}

func (s *authService) RevokeAPIKey(_ context.Context, req *yrdv1.RevokeAPIKeyRequest) (*yrdv1.RevokeAPIKeyResponse, error) {
	key, err := s.n.creds.RevokeKey(req.GetId())
	if err != nil {
		return nil, credErr(err)
	}
	return &yrdv1.RevokeAPIKeyResponse{Key: key}, nil
}

func (s *authService) ListAPIKeys(context.Context, *yrdv1.ListAPIKeysRequest) (*yrdv1.ListAPIKeysResponse, error) {
	return &yrdv1.ListAPIKeysResponse{Keys: s.n.creds.Keys()}, nil
}

func (s *authService) IssueCertificate(ctx context.Context, req *yrdv1.IssueCertificateRequest) (*yrdv1.IssueCertificateResponse, error) {
	if err := req.GetTtl().CheckValid(); req.GetTtl() != nil && err != nil {
		return nil, errorf(ErrInvalid, "ttl: %v", err)
	}
	if err := s.checkOrgCity(ctx, req.GetOrg(), "certificates"); err != nil {
		return nil, err
	}
	cert, err := s.n.creds.IssueCertificate(s.newPrincipal(req.GetOrg(), req.GetRole(), req.GetName()), req.GetPublicKey(),
		req.GetTtl().AsDuration(), auth.String(principal(ctx)))
	if err != nil {
		return nil, credErr(err)
	}
	return &yrdv1.IssueCertificateResponse{Certificate: cert, CaPem: string(s.n.creds.CA().CertPEM())}, nil
}

func (s *authService) RevokeCertificate(_ context.Context, req *yrdv1.RevokeCertificateRequest) (*yrdv1.RevokeCertificateResponse, error) {
	cert, err := s.n.creds.RevokeCertificate(req.GetSerial())
	if err != nil {
		return nil, credErr(err)
	}
	return &yrdv1.RevokeCertificateResponse{Certificate: cert}, nil
}

func (s *authService) ListCertificates(context.Context, *yrdv1.ListCertificatesRequest) (*yrdv1.ListCertificatesResponse, error) {
	return &yrdv1.ListCertificatesResponse{Certificates: s.n.creds.Certificates()}, nil
}

func (s *authService) WhoAmI(ctx context.Context, _ *yrdv1.WhoAmIRequest) (*yrdv1.WhoAmIResponse, error) {
	return &yrdv1.WhoAmIResponse{Principal: principal(ctx), Method: authMethod(ctx)}, nil
}
