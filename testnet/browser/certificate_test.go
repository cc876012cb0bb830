package browser_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// issueCert has Shanghai's operator issue a client certificate to an
// auditor and returns it with its private key, as `cert issue` would.
func issueCert(t *testing.T, c *consoleCluster) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	conn, err := c.Dial(0, c.key(t, 0, "", yrdv1.Role_ROLE_OPERATOR))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := yrdv1grpc.NewAuthServiceClient(conn).IssueCertificate(apiCtx(t), &yrdv1.IssueCertificateRequest{
		Org: "shanghai-audit", Role: yrdv1.Role_ROLE_AUDITOR, Name: "cert-auditor", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(resp.GetCertificate().GetPem()))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(resp.GetCaPem()))
	return tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}, pool
}

// TestCertificateSignInAndItsHeaderOnlyFromTheConsole: a client that
// presents a certificate from the city CA on the console's TLS handshake
// signs in as its principal (a real HTTPS client with the certificate:
// Chromium cannot select a client certificate headless without changing
// the machine's policy); the header the console uses to pass the
// certificate on is refused when anyone else sends it to the API.
func TestCertificateSignInAndItsHeaderOnlyFromTheConsole(t *testing.T) {
	c := startConsoleCluster(t, nil)
	cert, pool := issueCert(t, c)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}}}
	base := "https://" + c.Node(0).AdminAddr()

	page := httpGet(t, client, base+"/signin")
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if token == nil || !strings.Contains(page, `action="/signin/certificate"`) {
		t.Fatalf("the sign-in page offers no certificate sign-in:\n%s", page)
	}
	resp, err := client.PostForm(base+"/signin/certificate", url.Values{"csrf": {token[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "cert-auditor") || !strings.Contains(string(body), "delta-map") {
		t.Fatalf("certificate sign-in: %d\n%s", resp.StatusCode, body)
	}

	// The same header sent by a remote client straight to the API.
	conn, err := c.Dial(0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(apiCtx(t), auth.ConsoleCertificateHeader, base64.StdEncoding.EncodeToString(cert.Certificate[0]))
	_, err = yrdv1grpc.NewAuthServiceClient(conn).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "only from the node's own console") {
		t.Fatalf("a remote client sending the console's certificate header: %v", err)
	}
}

func httpGet(t *testing.T, client *http.Client, u string) string {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
