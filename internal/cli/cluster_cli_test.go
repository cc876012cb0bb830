package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// TestGlobalFlagsAnywhere: client flags before or after the command.
func TestGlobalFlagsAnywhere(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 1, "", yrdv1.Role_ROLE_OPERATOR)
	flags := []string{"--node", env["YRDNODE_NODE"], "--ca", env["YRDNODE_CA"], "--key", env["YRDNODE_KEY"], "-o", "json"}
	before := run(t, nil, append(flags, "cluster", "status")...)
	after := run(t, nil, append([]string{"cluster", "status"}, flags...)...)
	for _, r := range []result{before, after} {
		var st map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st["city"] != c.Config(1).City {
			t.Fatalf("cluster status: %+v", r)
		}
	}
	// A flag beats the environment, which beats the default.
	r := run(t, env, "whoami", "--key", "yrd_not-a-key")
	if r.code != 1 || !strings.Contains(r.stderr, "--key") {
		t.Fatalf("whoami with a bad --key over a good YRDNODE_KEY: %+v", r)
	}
}

// TestWrongCAIsNamed: a CA that did not sign the node's certificate is
// named with the node, not reported as a raw x509 error.
func TestWrongCAIsNamed(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 0, "", yrdv1.Role_ROLE_OPERATOR)
	env["YRDNODE_CA"] = writeOtherCA(t)
	for _, args := range [][]string{{"dataset", "list"}, {"cluster", "status"}, {"key", "create", "--org", "o", "--role", "analyst", "--name", "n"}} {
		r := run(t, env, args...)
		want := "node " + env["YRDNODE_NODE"] + ": its certificate is not signed by the CA in --ca " + env["YRDNODE_CA"] + " (x509: "
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("%v with another CA: %+v", args, r)
		}
	}
}

// writeOtherCA writes a CA certificate that signed nothing of the cluster.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another city CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJoinRefusalIsReadable: a refused join prints the node's reason
// with the code in words, not "rpc error: code = ... desc = ...".
func TestJoinRefusalIsReadable(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 0, "", yrdv1.Role_ROLE_OPERATOR)
	r := run(t, env, "cluster", "join-token", "--city", "suzhou-js")
	if r.code != 0 {
		t.Fatalf("join-token: %+v", r)
	}
	token := strings.TrimSpace(r.stdout)
	dir := t.TempDir()
	r = run(t, nil, "init", "--data-dir", dir, "--city", "hefei", "--api", "127.0.0.1:0", "--fabric", "/ip4/127.0.0.1/tcp/0", "-o", "json")
	var ini map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ini) != nil || ini["city"] != "hefei" || ini["peer_id"] == "" {
		t.Fatalf("init -o json: %+v", r)
	}
	r = run(t, map[string]string{"YRDNODE_JOIN_TOKEN": token}, "cluster", "join", "--data-dir", dir, "--via", env["YRDNODE_NODE"], "--log-level", "error")
	if r.code != 1 || strings.Contains(r.stderr, "rpc error") || !strings.Contains(r.stderr, "join via "+env["YRDNODE_NODE"]+": permission denied: ") {
		t.Fatalf("join with another city's token: %+v", r)
	}
}

// TestMembersByCityOrPeerID: transfer-leader --to and remove take a city
// id or a peer id alike.
func TestMembersByCityOrPeerID(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 0, "", yrdv1.Role_ROLE_OPERATOR)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	to := (leader + 1) % c.Len()
	r := run(t, env, "cluster", "transfer-leader", "--to", c.Config(to).City, "-o", "json")
	var resp map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &resp) != nil || resp["leader_peer_id"] != c.Node(to).PeerID().String() {
		t.Fatalf("transfer-leader --to %s: %+v", c.Config(to).City, r)
	}
	r = run(t, env, "cluster", "transfer-leader", "--to", c.Node(leader).PeerID().String())
	if r.code != 0 || !strings.Contains(r.stdout, "leader is now "+c.Node(leader).PeerID().String()) {
		t.Fatalf("transfer-leader --to PEER_ID: %+v", r)
	}
	r = run(t, env, "cluster", "transfer-leader", "--to", "hefei")
	if r.code != 1 || !strings.Contains(r.stderr, "no member serves hefei") {
		t.Fatalf("transfer-leader to a city not in the cluster: %+v", r)
	}
	gone := otherThan(c, 0, leader)
	r = run(t, env, "cluster", "remove", c.Config(gone).City, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"removed_city": "`+c.Config(gone).City+`"`) {
		t.Fatalf("remove %s: %+v", c.Config(gone).City, r)
	}
}

// otherThan is the index of a node that is neither a nor b.
func otherThan(c *testnet.Cluster, a, b int) int {
	for i := range c.Len() {
		if i != a && i != b {
			return i
		}
	}
	return -1
}

// TestLongWorkJSONAndQuietStderr: backup and bench print JSON for
// programs, and nothing on a standard error that is not a terminal.
func TestLongWorkJSONAndQuietStderr(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 1, "hz-bench", yrdv1.Role_ROLE_PUBLISHER)
	op := envAs(t, c, 1, "", yrdv1.Role_ROLE_OPERATOR)
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	r := runEnv(t, Env{Args: []string{"bench", "--kind", "write", "--count", "20", "--workers", "2", "-o", "json"}, Stderr: stderr, Getenv: getenv(env)})
	var b benchJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &b) != nil || b.Ops != 20 || b.Kind != "write" || b.P99MS <= 0 {
		t.Fatalf("bench -o json: %+v", r)
	}
	file := filepath.Join(t.TempDir(), "catalog.bak")
	r = runEnv(t, Env{Args: []string{"backup", "-f", file, "-o", "json"}, Stderr: stderr, Getenv: getenv(op)})
	var bk struct {
		File  string
		Bytes int64
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &bk) != nil || bk.File != file || bk.Bytes <= 0 {
		t.Fatalf("backup -o json: %+v", r)
	}
	// Restore and cluster recover work offline, on the new data dir.
	dir := filepath.Join(t.TempDir(), "restored")
	r = runEnv(t, Env{Args: []string{"restore", "--from", file, "--data-dir", dir, "--forget-releases", "-o", "json"}, Stderr: stderr, Getenv: getenv(nil)})
	var rs restoreJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rs) != nil || rs.DataDir != dir || rs.City != c.Config(1).City || !rs.Credentials || rs.Continued ||
		rs.PeerID == "" || rs.CatalogIndex == 0 || rs.Created.IsZero() || rs.RestoredAuditLog != node.RestoredAuditPath(dir, rs.FromPeerID) {
		t.Fatalf("restore -o json: %+v", r)
	}
	if _, err := os.Stat(rs.RestoredAuditLog); err != nil {
		t.Fatalf("restore -o json names an audit log that is not there: %v", err)
	}
	peers := filepath.Join(t.TempDir(), "peers.json")
	os.WriteFile(peers, []byte(`[{"id": "`+rs.PeerID+`", "voter": true}]`), 0o600)
	r = runEnv(t, Env{Args: []string{"cluster", "recover", "--peers", peers, "--data-dir", dir, "-o", "json"}, Stderr: stderr, Getenv: getenv(nil)})
	var rc recoverJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rc) != nil || rc.DataDir != dir || rc.Voters != 1 ||
		len(rc.Servers) != 1 || rc.Servers[0].ID != rs.PeerID || !rc.Servers[0].Voter {
		t.Fatalf("cluster recover -o json: %+v", r)
	}
	if data, _ := os.ReadFile(stderr.Name()); len(data) != 0 {
		t.Fatalf("bench, backup, restore or recover wrote to a non-terminal stderr: %q", data)
	}
}

// TestRestoreBringsTheNodeBackOnlyWithItsKeys: a backup holds the node's
// own state (API keys, export ledger, memory of released groups), which is
// keyed by its identity. Restore refuses to drop it silently, refuses keys
// of another node, and with the right keys brings back the node itself.
func TestRestoreBringsTheNodeBackOnlyWithItsKeys(t *testing.T) {
	c := startCluster(t)
	op := envAs(t, c, 1, "", yrdv1.Role_ROLE_OPERATOR)
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	file := filepath.Join(t.TempDir(), "node.bak")
	if r := runEnv(t, Env{Args: []string{"backup", "-f", file}, Getenv: getenv(op)}); r.code != 0 {
		t.Fatalf("backup: %+v", r)
	}
	restore := func(dir string, extra ...string) result {
		args := append([]string{"restore", "--from", file, "--data-dir", dir, "-o", "json"}, extra...)
		return runEnv(t, Env{Args: args, Getenv: getenv(nil)})
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if r := restore(dir); r.code == 0 || !strings.Contains(r.stderr, "--keys DIR") || !strings.Contains(r.stderr, "--forget-releases") {
		t.Fatalf("restore without --keys or --forget-releases: %+v", r)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %s behind", dir)
	}
	if r := restore(dir, "--keys", c.Config(0).DataDir); r.code == 0 || !strings.Contains(r.stderr, "is the key of") {
		t.Fatalf("restore with another node's keys: %+v", r)
	}
	r := restore(dir, "--keys", c.Config(1).DataDir)
	var rs restoreJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rs) != nil || !rs.Continued || !rs.Credentials ||
		rs.PeerID != rs.FromPeerID || rs.PeerID != c.Node(1).PeerID().String() || rs.RestoredAuditLog != "" {
		t.Fatalf("restore with the node's keys: %+v", r)
	}
	for _, f := range []string{"node.key", "ca/ca.pem", "ca/ca.key", "auth.db", "audit.db", "exports.db", "diffcheck.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the restored node has no %s: %v", f, err)
		}
	}
}
