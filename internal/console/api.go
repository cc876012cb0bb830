package console

import (
	"context"
	"encoding/base64"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// callCreds are a session's credentials, sent with every call the console
// makes for it: an API key as the CLI sends it, or the client certificate
// the browser presented, which the node accepts only on the console's
// in-process connection (auth.ConsoleCertificateHeader).
type callCreds struct {
	apiKey  string
	certDER []byte
}

// outgoing returns ctx carrying the credentials as call metadata.
func (cc callCreds) outgoing(ctx context.Context) context.Context {
	if cc.apiKey != "" {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cc.apiKey)
	}
	return metadata.AppendToOutgoingContext(ctx, auth.ConsoleCertificateHeader, base64.StdEncoding.EncodeToString(cc.certDER))
}

// apiClients are the node's services, reached over the console's
// connection. They are plain generated clients: the console calls what the
// CLI calls.
type apiClients struct {
	catalog yrdv1grpc.CatalogServiceClient
	cluster yrdv1grpc.ClusterServiceClient
	auth    yrdv1grpc.AuthServiceClient
	grants  yrdv1grpc.GrantServiceClient
	policy  yrdv1grpc.PolicyServiceClient
	audit   yrdv1grpc.AuditServiceClient
	query   yrdv1grpc.QueryServiceClient
}

func newAPIClients(conn *grpc.ClientConn) apiClients {
	return apiClients{
		catalog: yrdv1grpc.NewCatalogServiceClient(conn),
		cluster: yrdv1grpc.NewClusterServiceClient(conn),
		auth:    yrdv1grpc.NewAuthServiceClient(conn),
		grants:  yrdv1grpc.NewGrantServiceClient(conn),
		policy:  yrdv1grpc.NewPolicyServiceClient(conn),
		audit:   yrdv1grpc.NewAuditServiceClient(conn),
		query:   yrdv1grpc.NewQueryServiceClient(conn),
	}
}
