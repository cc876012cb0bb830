package devnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// Clients reach a node's API over TLS, verified with the node's city CA,
// and authenticate with API keys that the cluster creates on demand with
// the node's bootstrap operator key, as an operator would.

type clientKey struct {
	node int
	org  string
	role yrdv1.Role
}

type client struct {
	token string
	conn  *grpc.ClientConn
}

// bearer sends an API key with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// TLSConfig trusts city i's CA.
func (c *Cluster) TLSConfig(i int) (*tls.Config, error) {
	pem, err := os.ReadFile(node.CAPath(c.cfgs[i].DataDir))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("devnet: %s: bad CA file", c.cfgs[i].City)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, nil
}

// Dial connects to city i's API, authenticating with token (none if "").
func (c *Cluster) Dial(i int, token string) (*grpc.ClientConn, error) {
	cfg, err := c.TLSConfig(i)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	return grpc.NewClient(c.cfgs[i].APIAddr, opts...)
}

// OperatorKey is city i's bootstrap operator API key.
func (c *Cluster) OperatorKey(i int) (string, error) {
	data, err := os.ReadFile(node.OperatorKeyPath(c.cfgs[i].DataDir))
	return strings.TrimSpace(string(data)), err
}

// Key returns an API key for a principal of city i with org and role,
// creating it on first use.
func (c *Cluster) Key(i int, org string, role yrdv1.Role) (string, error) {
	cl, err := c.client(i, org, role)
	if err != nil {
		return "", err
	}
	return cl.token, nil
}

func (c *Cluster) client(i int, org string, role yrdv1.Role) (*client, error) {
	k := clientKey{i, org, role}
	c.mu.Lock()
	cl := c.clients[k]
	c.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	var token string
	var err error
	if role == yrdv1.Role_ROLE_OPERATOR && org == "" {
		token, err = c.OperatorKey(i)
	} else {
		var op *client
		if op, err = c.client(i, "", yrdv1.Role_ROLE_OPERATOR); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var resp *yrdv1.CreateAPIKeyResponse
		resp, err = yrdv1grpc.NewAuthServiceClient(op.conn).CreateAPIKey(ctx, &yrdv1.CreateAPIKeyRequest{
			Org: org, Role: role, Name: "testnet-" + strings.ToLower(strings.TrimPrefix(role.String(), "ROLE_"))})
		token = resp.GetToken()
	}
	if err != nil {
		return nil, fmt.Errorf("devnet: key for %s %s %v: %w", c.cfgs[i].City, org, role, err)
	}
	conn, err := c.Dial(i, token)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if existing := c.clients[k]; existing != nil {
		conn.Close()
		return existing, nil
	}
	cl = &client{token: token, conn: conn}
	c.clients[k] = cl
	return cl, nil
}

// ConnAs is a connection to city i's API as a principal of org with role.
func (c *Cluster) ConnAs(i int, org string, role yrdv1.Role) (*grpc.ClientConn, error) {
	cl, err := c.client(i, org, role)
	if err != nil {
		return nil, err
	}
	return cl.conn, nil
}

// Conn is city i's operator connection (cluster administration and
// catalog reads). It panics if the operator key cannot be read, which
// means the node never started.
func (c *Cluster) Conn(i int) *grpc.ClientConn {
	conn, err := c.ConnAs(i, "", yrdv1.Role_ROLE_OPERATOR)
	if err != nil {
		panic(err)
	}
	return conn
}

// Index returns the index of city, or -1.
func (c *Cluster) Index(city string) int {
	for i, cfg := range c.cfgs {
		if cfg.City == city {
			return i
		}
	}
	return -1
}

// PublisherConn connects as a publisher of the organisation owning d, at
// the node of d's city.
func (c *Cluster) PublisherConn(d *yrdv1.Dataset) (*grpc.ClientConn, error) {
	i := c.Index(d.GetOwnerCity())
	if i < 0 {
		return nil, fmt.Errorf("devnet: no node for %s", d.GetOwnerCity())
	}
	return c.ConnAs(i, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)
}

func (c *Cluster) closeClients() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cl := range c.clients {
		cl.conn.Close()
		delete(c.clients, k)
	}
}
