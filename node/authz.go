package node

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Who may call what on the client API. A method missing from the table is
// refused: default deny. Public methods need no credentials: health and
// reflection (so probes and grpcurl work), Join, which carries its own
// proof (a single-use join token signed by the joiner's key), and
// Membership, which a removed node asks and which signs its answer.
var (
	anyRole = []yrdv1.Role{yrdv1.Role_ROLE_OPERATOR, yrdv1.Role_ROLE_PUBLISHER, yrdv1.Role_ROLE_CDO,
		yrdv1.Role_ROLE_ANALYST, yrdv1.Role_ROLE_AUDITOR}
	operator  = []yrdv1.Role{yrdv1.Role_ROLE_OPERATOR}
	publisher = []yrdv1.Role{yrdv1.Role_ROLE_PUBLISHER}

	publicMethods = map[string]bool{
		"/grpc.health.v1.Health/Check":                                   true,
		"/grpc.health.v1.Health/Watch":                                   true,
		"/grpc.health.v1.Health/List":                                    true,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      true,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": true,
		"/yrd.v1.ClusterService/Join":                                    true,
		"/yrd.v1.ClusterService/Membership":                              true,
	}
	methodRoles = map[string][]yrdv1.Role{
		"/yrd.v1.CatalogService/PublishDataset": publisher,
		"/yrd.v1.CatalogService/UpdateDataset":  publisher,
		"/yrd.v1.CatalogService/RetireDataset":  publisher,
		"/yrd.v1.CatalogService/GetDataset":     anyRole,
		"/yrd.v1.CatalogService/ListDatasets":   anyRole,

		"/yrd.v1.ClusterService/Status":             anyRole,
		"/yrd.v1.ClusterService/IssueJoinToken":     operator,
		"/yrd.v1.ClusterService/Remove":             operator,
		"/yrd.v1.ClusterService/TransferLeadership": operator,
		"/yrd.v1.ClusterService/Backup":             operator,

		"/yrd.v1.AuthService/CreateAPIKey":      operator,
		"/yrd.v1.AuthService/RevokeAPIKey":      operator,
		"/yrd.v1.AuthService/ListAPIKeys":       operator,
		"/yrd.v1.AuthService/IssueCertificate":  operator,
		"/yrd.v1.AuthService/RevokeCertificate": operator,
		"/yrd.v1.AuthService/ListCertificates":  operator,
		"/yrd.v1.AuthService/WhoAmI":            anyRole,

		"/yrd.v1.GrantService/RequestGrant": {yrdv1.Role_ROLE_ANALYST, yrdv1.Role_ROLE_CDO},
		"/yrd.v1.GrantService/ApproveGrant": {yrdv1.Role_ROLE_CDO},
		"/yrd.v1.GrantService/RejectGrant":  {yrdv1.Role_ROLE_CDO},
		"/yrd.v1.GrantService/RevokeGrant":  {yrdv1.Role_ROLE_CDO},
		"/yrd.v1.GrantService/GetGrant":     anyRole,
		"/yrd.v1.GrantService/ListGrants":   anyRole,

		"/yrd.v1.PolicyService/GetPolicy":    anyRole,
		"/yrd.v1.PolicyService/UpdatePolicy": operator,
		// Every role may ask; the policy itself denies non-analysts, and
		// the denial is on record.
		"/yrd.v1.PolicyService/Decide": anyRole,
		// Operators and auditors see every organisation's usage, CDOs and
		// analysts their own (GetUsage narrows it); publishers spend none.
		"/yrd.v1.PolicyService/GetUsage": {yrdv1.Role_ROLE_OPERATOR, yrdv1.Role_ROLE_AUDITOR, yrdv1.Role_ROLE_CDO, yrdv1.Role_ROLE_ANALYST},

		// As with Decide, the owner's policy denies non-analysts, on record.
		"/yrd.v1.QueryService/Query": anyRole,

		"/yrd.v1.AuditService/ListAudit":   {yrdv1.Role_ROLE_AUDITOR},
		"/yrd.v1.AuditService/ExportAudit": {yrdv1.Role_ROLE_AUDITOR},
		"/yrd.v1.AuditService/VerifyAudit": {yrdv1.Role_ROLE_AUDITOR},
	}
)

type principalKey struct{}

// principal returns the authenticated caller of a client API request.
func principal(ctx context.Context) *yrdv1.Principal {
	p, _ := ctx.Value(principalKey{}).(*yrdv1.Principal)
	return p
}

type methodKey struct{}

func authMethod(ctx context.Context) string {
	m, _ := ctx.Value(methodKey{}).(string)
	return m
}

// authorize authenticates the caller of method and checks its role.
func (n *Node) authorize(ctx context.Context, method string) (context.Context, error) {
	if publicMethods[method] {
		return ctx, nil
	}
	roles, known := methodRoles[method]
	if !known {
		return nil, errorf(ErrPermissionDenied, "%s: not open to clients", method)
	}
	p, how, err := n.creds.Authenticate(ctx)
	if err != nil {
		n.noteAuthRefusal(ctx, method, err)
		return nil, errorf(ErrUnauthenticated, "%v", err)
	}
	for _, r := range roles {
		if p.GetRole() == r {
			ctx = context.WithValue(ctx, principalKey{}, p)
			return context.WithValue(ctx, methodKey{}, how), nil
		}
	}
	n.auditRefused(ctx, RuleRoleMethod, &yrdv1.AuditRecord{Requester: p, Action: yrdv1.AuditAction_AUDIT_ACTION_ADMIN,
		Detail: method + ": role " + auth.RoleName(p.GetRole()) + " may not call it"})
	return nil, errorf(ErrPermissionDenied, "%s: role %s may not call it (allowed: %s)", method, auth.RoleName(p.GetRole()), roleList(roles))
}

func roleList(roles []yrdv1.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = auth.RoleName(r)
	}
	return strings.Join(names, ", ")
}

func (n *Node) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := n.authorize(ctx, info.FullMethod)
	if err == nil {
		err = n.checkOwnership(ctx, req)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	ctx = n.withPreviousLevel(ctx, req)
	resp, err := h(ctx, req)
	if err == nil {
		err = n.auditCall(ctx, info.FullMethod, resp)
	}
	return resp, toStatus(err)
}

// checkOwnership lets a publisher change only its own organisation's
// datasets. The catalog checks the city again from the command's origin.
func (n *Node) checkOwnership(ctx context.Context, req any) error {
	p := principal(ctx)
	var claimed, existing *yrdv1.Dataset
	switch r := req.(type) {
	case *yrdv1.PublishDatasetRequest:
		claimed = r.GetDataset()
	case *yrdv1.UpdateDatasetRequest:
		claimed = r.GetDataset()
		existing, _ = n.catalog.GetDataset(r.GetDataset().GetId())
	case *yrdv1.RetireDatasetRequest:
		existing, _ = n.catalog.GetDataset(r.GetId())
	default:
		return nil
	}
	if err := ownerFieldErrors(claimed); err != nil {
		return err
	}
	for _, d := range []*yrdv1.Dataset{claimed, existing} {
		if d != nil && (d.GetOwnerCity() != p.GetCity() || d.GetOwnerOrg() != p.GetOrg()) {
			n.auditRefused(ctx, RuleDatasetOtherOrg, &yrdv1.AuditRecord{Requester: p, Action: publishAction(req), DatasetId: d.GetId(),
				Detail: "dataset " + d.GetId() + ": not the publisher's organisation"})
			return errorf(ErrPermissionDenied, "dataset.owner_org: %s publishes only %s/%s datasets, not %s/%s",
				p.GetName(), p.GetCity(), p.GetOrg(), d.GetOwnerCity(), d.GetOwnerOrg())
		}
	}
	return nil
}

// ownerFieldErrors reports a claimed dataset's owner_city and owner_org
// problems before ownership is checked against them: a publisher who left
// owner_org out or misspelt owner_city made a mistake in the file, and
// "permission denied" would send them looking at their key instead.
func ownerFieldErrors(d *yrdv1.Dataset) error {
	if d == nil {
		return nil
	}
	var errs catalogspec.Errors
	all, _ := catalogspec.Validate(proto.Clone(d).(*yrdv1.Dataset)).(catalogspec.Errors)
	for _, e := range all {
		if e.Field == "owner_city" || e.Field == "owner_org" {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errorf(ErrInvalid, "%v", errs)
}

// publishAction is the audit action of a catalog change request.
func publishAction(req any) yrdv1.AuditAction {
	switch req.(type) {
	case *yrdv1.UpdateDatasetRequest:
		return yrdv1.AuditAction_AUDIT_ACTION_UPDATE
	case *yrdv1.RetireDatasetRequest:
		return yrdv1.AuditAction_AUDIT_ACTION_RETIRE
	}
	return yrdv1.AuditAction_AUDIT_ACTION_PUBLISH
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authedStream) Context() context.Context { return s.ctx }

func (n *Node) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := n.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return toStatus(err)
	}
	return toStatus(h(srv, authedStream{ss, ctx}))
}
