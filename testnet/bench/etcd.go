package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Etcd is a three-member etcd cluster on loopback, with client and peer
// TLS and client certificates required, as it would be deployed; started
// from an etcd build (DIR holding etcd 3.6's `etcd` and its `benchmark`).
type Etcd struct {
	bin, dir  string
	endpoints []string
	procs     []*exec.Cmd
	tls       etcdTLS
}

// etcdTLS are the PEM files of the cluster's CA, the members' certificate
// (for client and peer use) and a client certificate.
type etcdTLS struct{ ca, cert, key, clientCert, clientKey string }

// etcdIPs are the members' addresses: a loopback subnet of their own, so
// the fixed ports meet nothing else.
var etcdIPs = []string{"127.0.99.1", "127.0.99.2", "127.0.99.3"}

// StartEtcd starts the cluster with its data in dir (emptied first) and waits until every
// member answers its health check.
func StartEtcd(ctx context.Context, bin, dir string) (*Etcd, error) {
	for _, tool := range []string{"etcd", "benchmark"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return nil, fmt.Errorf("bench: --etcd %s has no %s: %w", bin, tool, err)
		}
	}
	// A fresh cluster each run: no data of an earlier one.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &Etcd{bin: bin, dir: dir}
	var err error
	if e.tls, err = writeEtcdTLS(filepath.Join(dir, "tls")); err != nil {
		return nil, err
	}
	var peers []string
	for i, ip := range etcdIPs {
		peers = append(peers, fmt.Sprintf("m%d=https://%s:2380", i+1, ip))
		e.endpoints = append(e.endpoints, "https://"+ip+":2379")
	}
	for i := range etcdIPs {
		if err := e.start(i, strings.Join(peers, ",")); err != nil {
			e.Stop()
			return nil, err
		}
	}
	if err := e.waitHealthy(ctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// start runs member i.
func (e *Etcd) start(i int, peers string) error {
	ip, name := etcdIPs[i], "m"+strconv.Itoa(i+1)
	log, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(e.bin, "etcd"), "--name", name, "--data-dir", filepath.Join(e.dir, name),
		"--listen-client-urls", "https://"+ip+":2379", "--advertise-client-urls", "https://"+ip+":2379",
		"--listen-peer-urls", "https://"+ip+":2380", "--initial-advertise-peer-urls", "https://"+ip+":2380",
		"--listen-metrics-urls", "http://"+ip+":2381",
		"--initial-cluster", peers, "--initial-cluster-token", "yrdnode-bench", "--initial-cluster-state", "new",
		"--cert-file", e.tls.cert, "--key-file", e.tls.key, "--trusted-ca-file", e.tls.ca, "--client-cert-auth",
		"--peer-cert-file", e.tls.cert, "--peer-key-file", e.tls.key, "--peer-trusted-ca-file", e.tls.ca, "--peer-client-cert-auth")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: start etcd %s: %w", name, err)
	}
	e.procs = append(e.procs, cmd)
	return nil
}

// client is an HTTPS client with the cluster's client certificate.
func (e *Etcd) client() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(e.tls.clientCert, e.tls.clientKey)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(e.tls.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}, nil
}

// waitHealthy polls every member's /health until all say so.
func (e *Etcd) waitHealthy(ctx context.Context) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, ep := range e.endpoints {
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/health", nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("bench: etcd at %s not healthy (see %s): %w", ep, e.dir, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Put stores value under key through the JSON gateway of the first member.
func (e *Etcd) Put(ctx context.Context, key string, value []byte) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"key":%q,"value":%q}`, base64.StdEncoding.EncodeToString([]byte(key)), base64.StdEncoding.EncodeToString(value))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoints[0]+"/v3/kv/put", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: etcd put: %s", resp.Status)
	}
	return nil
}

// Benchmark runs etcd's benchmark tool against every member with args
// (e.g. "put --total=…") and parses its summary; the command is what the
// report shows.
func (e *Etcd) Benchmark(ctx context.Context, clients int, args ...string) (Point, string, error) {
	conns := min(clients, 16)
	argv := append([]string{"--endpoints=" + strings.Join(e.endpoints, ","), "--cacert=" + e.tls.ca, "--cert=" + e.tls.clientCert,
		"--key=" + e.tls.clientKey, "--conns=" + strconv.Itoa(conns), "--clients=" + strconv.Itoa(clients)}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(e.bin, "benchmark"), argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	command := "benchmark " + strings.Join(argv, " ")
	if err := cmd.Run(); err != nil {
		return Point{}, command, fmt.Errorf("bench: %s: %w: %s", command, err, tail(errb.String()))
	}
	p, err := ParseEtcdBenchmark(out.String())
	p.Clients = clients
	return p, command, err
}

// tail is the end of a command's output, for errors.
func tail(s string) string {
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// Stop ends the members and waits for them.
func (e *Etcd) Stop() {
	for _, p := range e.procs {
		p.Process.Signal(os.Interrupt)
	}
	for _, p := range e.procs {
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
	e.procs = nil
}

// writeEtcdTLS makes a CA, a member certificate for etcdIPs (server and
// client use: members are each other's clients) and a client certificate.
func writeEtcdTLS(dir string) (etcdTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return etcdTLS{}, err
	}
	t := etcdTLS{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "member.pem"), key: filepath.Join(dir, "member-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem")}
	caKey, caCert, err := issue(t.ca, "", &x509.Certificate{Subject: pkix.Name{CommonName: "yrdnode bench etcd CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}, nil, nil)
	if err != nil {
		return etcdTLS{}, err
	}
	var ips []net.IP
	for _, ip := range etcdIPs {
		ips = append(ips, net.ParseIP(ip))
	}
	member := &x509.Certificate{Subject: pkix.Name{CommonName: "etcd member"}, IPAddresses: ips, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if _, _, err := issue(t.cert, t.key, member, caCert, caKey); err != nil {
		return etcdTLS{}, err
	}
	client := &x509.Certificate{Subject: pkix.Name{CommonName: "bench client"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	_, _, err = issue(t.clientCert, t.clientKey, client, caCert, caKey)
	return t, err
}

// issue makes a key and a certificate from tmpl signed by parent (itself
// when parent is nil) and writes them as PEM (the key only if keyPath).
func issue(certPath, keyPath string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, nil, err
	}
	if keyPath != "" {
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
			return nil, nil, err
		}
	}
	return key, cert, nil
}
