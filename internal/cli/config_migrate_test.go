package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/node"
)

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveUntilUp runs `yrdnode serve` on dir until the node answers
// `cluster status` as its operator, runs while(env) against it, stops it
// and returns what it logged.
func serveUntilUp(t *testing.T, dir, api string, while func(env map[string]string)) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, Env{Args: []string{"serve", "--data-dir", dir}, Stdout: &logs, Stderr: &logs, Version: "test", Getenv: func(string) string { return "" }})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		key, _ := os.ReadFile(node.OperatorKeyPath(dir))
		env := map[string]string{"YRDNODE_NODE": api, "YRDNODE_CA": node.CAPath(dir), "YRDNODE_KEY": strings.TrimSpace(string(key))}
		if len(key) > 0 && run(t, env, "cluster", "status").code == 0 {
			while(env)
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not come up:\n%s", logs.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs.String())
	}
	return logs.String()
}

// TestMigrateFromNodeJSON: a data dir as today's init left it (node.json,
// plus a data mapping the operator added) is served as it is, with one
// warning naming config migrate; migrate writes a yrdnode.toml that gives
// the node the same config, keeps node.json as node.json.bak, refuses a
// second time, and the node then serves from the new file, with its
// identity and data mapping.
func TestMigrateFromNodeJSON(t *testing.T) {
	dir, api := t.TempDir(), freeAddr(t)
	r := run(t, nil, "init", "--data-dir", dir, "--city", "shanghai", "--api", api, "--fabric", "/ip4/127.0.0.1/tcp/0", "-o", "json")
	var ini map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ini) != nil {
		t.Fatalf("init: %+v", r)
	}
	// What init wrote before yrdnode.toml, and what an operator added.
	os.Remove(filepath.Join(dir, configFileName))
	nf := nodeFile{City: "shanghai", APIAddr: api, FabricAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Data: &dataFile{Files: []fileSource{{Dataset: elderlyID, Paths: []string{"data/elderly.csv"}}}}}
	data, _ := json.MarshalIndent(nf, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, nodeFileName), append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeSynthCSV(filepath.Join(dir, "data", "elderly.csv"), sampleDataset(t, elderlyID), 50); err != nil {
		t.Fatal(err)
	}
	logs := serveUntilUp(t, dir, api, func(map[string]string) {})
	if n := strings.Count(logs, "config migrate"); n != 1 || !strings.Contains(logs, "dataset="+elderlyID) {
		t.Fatalf("serving from node.json: %d warnings about migrate:\n%s", n, logs)
	}

	r = run(t, nil, "config", "migrate", "--data-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "wrote "+filepath.Join(dir, configFileName)) {
		t.Fatalf("migrate: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, nodeFileName)); err == nil {
		t.Fatal("node.json is still there")
	}
	if bak, _ := os.ReadFile(filepath.Join(dir, nodeFileName+".bak")); string(bak) != string(data)+"\n" {
		t.Fatalf("node.json.bak holds %q", bak)
	}
	want, err := nodeConfig(nf, dir, slogDiscard(), "test")
	if err != nil {
		t.Fatal(err)
	}
	lc, err := readDataDirConfig(dir)
	if err != nil || lc.legacy {
		t.Fatalf("reading the migrated dir: %v (legacy %v)", err, lc != nil && lc.legacy)
	}
	got, err := lc.nodeConfig(dir, want.Logger, "test")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("migrated config differs (%v):\n got %+v\nwant %+v", err, got, want)
	}
	if r := run(t, nil, "config", "migrate", "--data-dir", dir); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second migrate: %+v", r)
	}

	logs = serveUntilUp(t, dir, api, func(env map[string]string) {
		// The same node: its identity came through.
		if s := run(t, env, "cluster", "status"); !strings.Contains(s.stdout, ini["peer_id"]) {
			t.Errorf("cluster status does not show peer %s: %+v", ini["peer_id"], s)
		}
		// The running node's catalog lacks the dataset; catalog.db is its own.
		r := run(t, env, "config", "check", "--data-dir", dir)
		if r.code != 1 || !strings.Contains(r.stdout, "catalog: the running node at "+api) ||
			!strings.Contains(r.stdout, "data.files[0]: "+elderlyID+": not in the catalog") {
			t.Errorf("check against the running node: %+v", r)
		}
		if r := run(t, nil, "config", "check", "--data-dir", dir); r.code != 1 || !strings.Contains(r.stdout, "locked by a running node") {
			t.Errorf("check of a running node's catalog.db: %+v", r)
		}
	})
	if strings.Contains(logs, "config migrate") || !strings.Contains(logs, "dataset="+elderlyID) {
		t.Fatalf("serving the migrated dir:\n%s", logs)
	}
}
