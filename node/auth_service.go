package node

import (
	"context"
	"errors"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
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

func (s *authService) CreateAPIKey(ctx context.Context, req *yrdv1.CreateAPIKeyRequest) (*yrdv1.CreateAPIKeyResponse, error) {
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
