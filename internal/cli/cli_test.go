package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/backupfile"
	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
	"github.com/yrd-exchange/yrdnode/testnet"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, Env{Args: args, Stdout: &out, Stderr: &errb, Version: "test",
		Getenv: func(k string) string { return env[k] }})
	return result{code, out.String(), errb.String()}
}

// envAs is the environment of a client acting at node i as a principal of
// org with role ("" org and operator: the node's bootstrap operator).
func envAs(t *testing.T, c *testnet.Cluster, i int, org string, role yrdv1.Role) map[string]string {
	t.Helper()
	key, err := c.Key(i, org, role)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"YRDNODE_NODE": c.Config(i).APIAddr, "YRDNODE_CA": node.CAPath(c.Config(i).DataDir), "YRDNODE_KEY": key}
}

func startCluster(t *testing.T) *testnet.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testnet.Start(ctx, testnet.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDatasetCommandsRoundTrip(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 0, "sh-transport", yrdv1.Role_ROLE_PUBLISHER)
	nanjing := envAs(t, c, 2, "", yrdv1.Role_ROLE_OPERATOR)
	dir := t.TempDir()

	yamlFile := filepath.Join(dir, "ds.yaml")
	os.WriteFile(yamlFile, []byte(`
id: wuxi.transport.bus-ridership
owner_city: shanghai
owner_org: sh-transport
title: 公交客流 Bus ridership
sector: transport
level: GENERAL
tags: [bus, 交通]
data_rights: {holder: Shanghai Transport Commission}
schema:
  columns:
    - {name: route, type: varchar, personal_info: NONE}
    - {name: riders, type: integer, personal_info: NONE}
`), 0o600)
	r := run(t, env, "dataset", "publish", "-f", yamlFile)
	if r.code != 0 || !strings.Contains(r.stdout, "published wuxi.transport.bus-ridership (version 1)") {
		t.Fatalf("publish: %+v", r)
	}
	// What get -o json prints, publish -f and update -f accept back.
	r = run(t, nanjing, "dataset", "get", "wuxi.transport.bus-ridership", "-o", "json")
	if r.code != 0 {
		t.Fatalf("get: %+v", r)
	}
	jsonFile := filepath.Join(dir, "ds.json")
	edited := strings.Replace(r.stdout, "Bus ridership", "Bus ridership, daily", 1)
	os.WriteFile(jsonFile, []byte(edited), 0o600)
	r = run(t, env, "dataset", "update", "-f", jsonFile)
	if r.code != 0 || !strings.Contains(r.stdout, "(version 2)") {
		t.Fatalf("update: %+v", r)
	}
	// The same file again is now stale.
	r = run(t, env, "dataset", "update", "-f", jsonFile)
	if r.code == 0 || !strings.Contains(r.stderr, "expected_version") {
		t.Fatalf("stale update: %+v", r)
	}
	r = run(t, env, "dataset", "list", "--sector", "transport")
	if r.code != 0 || !strings.Contains(r.stdout, "wuxi.transport.bus-ridership") || !strings.Contains(r.stdout, "Bus ridership, daily") {
		t.Fatalf("list: %+v", r)
	}
	r = run(t, env, "dataset", "list", "-o", "json", "--level", "core")
	if r.code != 0 || strings.Contains(r.stdout, "wuxi") {
		t.Fatalf("list core: %+v", r)
	}
	r = run(t, env, "dataset", "retire", "wuxi.transport.bus-ridership")
	if r.code != 0 || !strings.Contains(r.stdout, "retired") {
		t.Fatalf("retire: %+v", r)
	}
}

func TestPublishSampleJSONFromGet(t *testing.T) {
	// A dataset printed as JSON by the CLI decodes to the same message.
	d := sample.Datasets()[0]
	data, err := jsonOut.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(f, data, 0o600)
	got, err := readDatasetFile(f)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := protojson.Marshal(d)
	have, _ := protojson.Marshal(got)
	if !bytes.Equal(want, have) {
		t.Fatalf("round trip changed the dataset:\n%s\n%s", want, have)
	}
}

func TestErrorsHelp(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 2, "nj", yrdv1.Role_ROLE_PUBLISHER)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("id: nanjing.x.y\nowner_city: nanjing\nowner_org: nj\ntitle: t\nsector: transport\nlevel: GENERAL\ndata_rights: {holder: h}\nschema: {columns: [{name: a, type: BLOB, personal_info: NONE}]}\n"), 0o600)
	r := run(t, env, "dataset", "publish", "-f", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "schema.columns[0].type") {
		t.Fatalf("bad dataset: %+v", r)
	}
	unknownField := filepath.Join(t.TempDir(), "unknown.yaml")
	os.WriteFile(unknownField, []byte("id: a.b\ncolour: red\n"), 0o600)
	r = run(t, env, "dataset", "publish", "-f", unknownField)
	if r.code != 1 || !strings.Contains(r.stderr, "colour") {
		t.Fatalf("unknown field: %+v", r)
	}
	r = run(t, map[string]string{"YRDNODE_CA": env["YRDNODE_CA"]}, "dataset", "list", "--node", "127.0.0.1:1", "--timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Fatalf("unreachable node: %+v", r)
	}
	r = run(t, env, "dataset", "get", "nanjing.not.there")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("missing dataset: %+v", r)
	}
	r = run(t, env, "dataset", "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, "frobnicate") {
		t.Fatalf("unknown command: %+v", r)
	}
	r = run(t, env, "version")
	if r.code != 0 || r.stdout != "yrdnode test\n" {
		t.Fatalf("version: %+v", r)
	}
}

func TestClusterCommands(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 2, "", yrdv1.Role_ROLE_OPERATOR)
	for _, d := range sample.Datasets() {
		f := filepath.Join(t.TempDir(), "d.json")
		data, _ := jsonOut.Marshal(d)
		os.WriteFile(f, data, 0o600)
		if r := run(t, envAs(t, c, c.Index(d.GetOwnerCity()), d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER), "dataset", "publish", "-f", f); r.code != 0 {
			t.Fatalf("publish: %+v", r)
		}
	}
	r := run(t, env, "cluster", "status")
	if r.code != 0 || strings.Count(r.stdout, "VOTER") != 3 || !strings.Contains(r.stdout, "Leader") {
		t.Fatalf("status: %+v", r)
	}
	r = run(t, env, "cluster", "join-token", "--city", "hefei", "--ttl", "5m")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "yrdjoin_") {
		t.Fatalf("join-token: %+v", r)
	}
	r = run(t, env, "cluster", "transfer-leader")
	if r.code != 0 || !strings.Contains(r.stdout, "leader is now") {
		t.Fatalf("transfer-leader: %+v", r)
	}
	backup := filepath.Join(t.TempDir(), "catalog.bak")
	r = run(t, env, "backup", "-f", backup)
	if r.code != 0 {
		t.Fatalf("backup: %+v", r)
	}
	// The backup's catalog is a catalog database holding every
	// acknowledged write.
	b, err := backupfile.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	section, err := b.Section(backupfile.SectionCatalog)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(section)
	catalogFile := filepath.Join(t.TempDir(), "catalog.db")
	os.WriteFile(catalogFile, data, 0o600)
	restored, err := store.OpenCatalog(catalogFile, store.Options{})
	if err != nil {
		t.Fatalf("backup is not a catalog: %v", err)
	}
	defer restored.Close()
	if n := restored.DatasetCount(); n != len(sample.Datasets()) {
		t.Fatalf("backup holds %d datasets, want %d", n, len(sample.Datasets()))
	}
	if len(restored.Members()) != 3 {
		t.Fatalf("backup holds %d members, want 3", len(restored.Members()))
	}
}

// TestDevRunsTheSampleDelta runs the README's first command in-process:
// three cities on the fixed dev ports, samples published, a clean stop.
func TestDevRunsTheSampleDelta(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		// Ports the kernel picks: fixed ones would collide with anything
		// else on the machine using them, another test run included.
		done <- Main(ctx, Env{Args: []string{"dev", "--ports", "any"}, Stdout: &out, Stderr: &errb, Version: "test", Getenv: func(string) string { return "" }})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops the delta") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("dev exited %d before it was up:\n%s\n%s", code, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("dev did not come up:\n%s\n%s", out.String(), errb.String())
		}
	}
	if !strings.Contains(out.String(), "8 sample datasets published") {
		t.Fatalf("dev output:\n%s", out.String())
	}
	// The printed commands work as printed (with the node it printed).
	sh := exported(t, out.String())
	r := run(t, sh, "dataset", "list")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 9 {
		t.Fatalf("dataset list against dev: %+v", r)
	}
	r = run(t, sh, "policy", "decide", "shanghai.civil-affairs.elderly-population", "--purpose", "elderly-care-planning")
	if r.code != 0 || !strings.Contains(r.stdout, "allow_rows") || !strings.Contains(r.stdout, "care_level    withheld") {
		t.Fatalf("policy decide against dev: %+v", r)
	}
	r = run(t, sh, "dataset", "get", "shanghai.civil-affairs.elderly-population", "-o", "json")
	if r.code != 0 {
		t.Fatalf("dataset get against dev: %+v", r)
	}
	if d, err := catalogspec.DecodeDataset([]byte(r.stdout)); err != nil || d.GetStandardSchemaId() != sample.ElderlyPopulationSchemaID {
		t.Fatalf("dataset get against dev printed %s (%v)", r.stdout, err)
	}
	statusArgs, queries := printedCommands(out.String())
	// The printed queries work as printed: the family aggregate over every
	// city's generated file, its explanation, and the CORE refusal.
	if len(queries) != 3 {
		t.Fatalf("dev printed %d queries:\n%s", len(queries), out.String())
	}
	r = run(t, sh, queries[0]...)
	if r.code != 0 || strings.Count(r.stdout, "\n") < 10 || strings.Count(r.stderr, " ok ") != 3 {
		t.Fatalf("%q against dev: %+v", queries[0], r)
	}
	r = run(t, sh, queries[1]...)
	if r.code != 0 || strings.Count(r.stdout, "decision: allow_aggregates") != 3 {
		t.Fatalf("%q against dev: %+v", queries[1], r)
	}
	r = run(t, sh, queries[2]...)
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("%q against dev: %+v", queries[2], r)
	}
	r = run(t, map[string]string{}, statusArgs...)
	if r.code != 0 || strings.Count(r.stdout, "VOTER") != 3 {
		t.Fatalf("cluster status against dev (%v): %+v", statusArgs, r)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev exited %d:\n%s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop after cancel")
	}
}

// printedCommands finds in dev's output the cluster status command's
// arguments and each query it prints (query --purpose P 'SQL').
func printedCommands(out string) (statusArgs []string, queries [][]string) {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[3] == "cluster" {
			statusArgs = f[3:]
		}
		if before, rest, ok := strings.Cut(line, " query "); ok && strings.Contains(before, "yrdnode") {
			flags, sql, _ := strings.Cut(rest, "'")
			sql, _, _ = strings.Cut(sql, "'")
			queries = append(queries, append(append([]string{"query"}, strings.Fields(flags)...), sql))
		}
	}
	return statusArgs, queries
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBenchIsBoundedAndReports(t *testing.T) {
	c := startCluster(t)
	env := envAs(t, c, 1, "hz-bench", yrdv1.Role_ROLE_PUBLISHER)
	r := run(t, env, "bench", "--kind", "read", "--count", "10")
	if r.code != 1 || !strings.Contains(r.stderr, "catalog is empty") {
		t.Fatalf("read bench on an empty catalog: %+v", r)
	}
	for _, kind := range []string{"write", "read", "list"} {
		r := run(t, env, "bench", "--kind", kind, "--workers", "4", "--count", "40", "--duration", "20s")
		if r.code != 0 || !strings.Contains(r.stdout, kind+": 40 ops by 4 workers") || !strings.Contains(r.stdout, "p99") {
			t.Fatalf("%s bench: %+v", kind, r)
		}
	}
	r = run(t, env, "bench", "--workers", "0")
	if r.code != 2 {
		t.Fatalf("bench with no workers: %+v", r)
	}
}

// exported reads the variables of the "export A=x B=y" line dev prints.
func exported(t *testing.T, out string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if env["YRDNODE_CA"] == "" || env["YRDNODE_KEY"] == "" {
		t.Fatalf("dev printed no export line:\n%s", out)
	}
	return env
}
