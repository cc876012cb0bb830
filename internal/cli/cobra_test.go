package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// runEnv runs one command line in e, filling what e leaves out.
func runEnv(t *testing.T, e Env) result {
	t.Helper()
	var out, errb bytes.Buffer
	if e.Stdout == nil {
		e.Stdout = &out
	}
	if e.Stderr == nil {
		e.Stderr = &errb
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, e)
	return result{code, out.String(), errb.String()}
}

// commandPaths is every command of the tree, cobra's own included.
func commandPaths(c *cobra.Command, path []string) [][]string {
	out := [][]string{path}
	for _, s := range c.Commands() {
		out = append(out, commandPaths(s, append(append([]string{}, path...), s.Name()))...)
	}
	return out
}

func TestHelpShowsNoSecret(t *testing.T) {
	const marker = "SECRET-MARKER-7f3a"
	env := map[string]string{"YRDNODE_KEY": marker, "YRDNODE_CERT_KEY": marker, "YRDNODE_JOIN_TOKEN": marker}
	root := newRoot(Env{Getenv: func(string) string { return "" }})
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	paths := commandPaths(root, nil)
	if len(paths) < 40 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		r := run(t, env, append(p, "-h")...)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, marker) {
			t.Fatalf("%v -h: %+v", p, r)
		}
	}
	r := run(t, env, "dataset", "list", "-h")
	if !strings.Contains(r.stdout, "(env YRDNODE_KEY)") || !strings.Contains(r.stdout, "(env YRDNODE_CERT_KEY)") {
		t.Fatalf("help names no environment variables: %s", r.stdout)
	}
	r = run(t, env, "cluster", "join", "-h")
	if !strings.Contains(r.stdout, "(env YRDNODE_JOIN_TOKEN)") {
		t.Fatalf("join help: %s", r.stdout)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := run(t, nil, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "yrdnode") || !strings.Contains(r.stdout, "__complete") {
			t.Fatalf("completion %s: code %d, %d bytes: %.300s", shell, r.code, len(r.stdout), r.stdout)
		}
	}
	// The scripts ask the binary for the words; it offers the commands,
	// subcommands and flags, global flags before the command too.
	for args, want := range map[string][]string{
		"":                    {"dataset", "query", "cluster", "version", "completion"},
		"dataset ":            {"publish", "get", "list", "update", "retire"},
		"--node x cluster ":   {"status", "transfer-leader", "remove"},
		"dataset list --ret":  {"--retired"},
		"query -o json --pur": {"--purpose"},
	} {
		r := run(t, nil, append([]string{"__complete"}, strings.Split(args, " ")...)...)
		for _, w := range want {
			if r.code != 0 || !strings.Contains(r.stdout, w) {
				t.Fatalf("__complete %q lacks %s: %+v", args, w, r)
			}
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"dataset"},
		{"frobnicate"},
		{"dataset", "list", "--no-such-flag"},
		{"dataset", "list", "-o", "yaml"},
		{"serve", "-o", "json"},
		{"version", "-o", "csv"},
	} {
		if r := run(t, nil, args...); r.code != 2 || r.stderr == "" {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	// The flag names of before: --o and --f still work; -o=json too.
	for _, args := range [][]string{{"version", "--o", "json"}, {"version", "-o=json"}, {"--output", "json", "version"}} {
		if r := run(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, `"version": "test"`) {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	r := run(t, nil, "backup", "--f", "", "--ca", "x")
	if r.code != 2 || !strings.Contains(r.stderr, "backup needs -f FILE") {
		t.Fatalf("backup --f: %+v", r)
	}
}

func TestVersionFromLdflags(t *testing.T) {
	e := Env{Args: []string{"version"}, Version: "v1.4.0", Commit: "0b5500e", Date: "2026-11-22T08:00:00Z"}
	r := runEnv(t, e)
	if r.code != 0 || r.stdout != "yrdnode v1.4.0\ncommit 0b5500e\nbuilt 2026-11-22T08:00:00Z\n" {
		t.Fatalf("version: %+v", r)
	}
	e.Args = []string{"version", "-o", "json"}
	r = runEnv(t, e)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["version"] != "v1.4.0" || v["commit"] != "0b5500e" ||
		v["date"] != "2026-11-22T08:00:00Z" || v["modified"] != false || !strings.HasPrefix(v["go"].(string), "go") {
		t.Fatalf("version -o json: %+v (%v)", r, err)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	// The test binary's own build info: no VCS stamp, and a module
	// version of (devel) or none; whatever it holds, the shape is kept.
	r := runEnv(t, Env{Args: []string{"version", "-o", "json"}})
	var v buildInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || v.Version == "" || v.Go == "" {
		t.Fatalf("version from this binary's build info: %+v (%v)", r, err)
	}
	if bi, ok := debug.ReadBuildInfo(); ok && buildSetting(bi, "vcs.revision") != v.Commit {
		t.Fatalf("commit %q, build info says %q", v.Commit, buildSetting(bi, "vcs.revision"))
	}
	// A binary built in a checkout carries the revision, its time and
	// whether the tree was modified.
	readBuildInfo = func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "v0.9.1"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "49d0d9a1c2"}, {Key: "vcs.time", Value: "2026-10-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	defer func() { readBuildInfo = debug.ReadBuildInfo }()
	r = runEnv(t, Env{Args: []string{"version"}})
	want := "yrdnode v0.9.1\ncommit 49d0d9a1c2 (with uncommitted changes)\nbuilt 2026-10-01T10:00:00Z\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("version from build info: %+v", r)
	}
}

func TestProgressLine(t *testing.T) {
	var w bytes.Buffer
	tick := make(chan time.Time)
	n := 0
	stop := progressLine(&w, true, tick, func() string { n += 500; return "query: " + strconv.Itoa(n) + " rows so far" })
	tick <- time.Now()
	tick <- time.Now()
	stop()
	if want := "\r\033[Kquery: 500 rows so far\r\033[Kquery: 1000 rows so far\r\033[K"; w.String() != want {
		t.Fatalf("progress wrote %q, want %q", w.String(), want)
	}
	// Not a terminal: nothing, however long the work.
	w.Reset()
	progressLine(&w, false, tick, func() string { return "x" })()
	if w.Len() != 0 {
		t.Fatalf("progress wrote %q to a non-terminal", w.String())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&w) {
		t.Fatal("a file or a buffer taken for a terminal")
	}
}

// TestDaemonsRefuseJSON: a command that runs until stopped prints only
// its log, and says so (and how to get it as JSON) when asked for -o json.
func TestDaemonsRefuseJSON(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-o", "json"}, "-o json: serve runs a node and prints only its log; use --log-format json"},
		{[]string{"-o", "json", "dev"}, "-o json: dev runs a local delta of three nodes and prints only its log; use --log-format json"},
		{[]string{"cluster", "join", "--output", "json"}, "-o json: cluster join runs the joining node and prints only its log; use --log-format json"},
		{[]string{"testnet", "delayer", "-o", "json"}, "-o json: testnet delayer runs the latency emulator and prints only its log\n"},
		{[]string{"restore", "-o", "csv"}, `-o: "csv" is not table, json`},
	} {
		r := run(t, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: %+v, want %q", tc.args, r, tc.want)
		}
	}
}

// TestTestnetJSON: the testnet commands' JSON, without a testnet (up needs
// processes and, for netns, root): numbers as numbers, an unknown lag null.
func TestTestnetJSON(t *testing.T) {
	rows := []chaos.CityStatus{
		{City: "shanghai", Suffrage: "voter", Role: "leader", Process: "running", API: "127.0.0.1:7401", Applied: 1 << 60, Lag: 0},
		{City: "hefei", Suffrage: "nonvoter", Role: "-", Process: "stopped", API: "127.0.0.1:7404", Lag: -1},
	}
	up := testnetUpJSON{ID: "tn1", Mode: "loopback", StateFile: "/tmp/x/state.json", Voters: 1,
		testnetStatusJSON: testnetStatusJSON{Cities: testnetCitiesJSON(rows), Latency: "none"},
		Operator:          &testnetOperatorJSON{City: "shanghai", Node: "127.0.0.1:7401", CA: "ca.pem", KeyFile: "operator.key"}}
	var b bytes.Buffer
	if err := printValue(&b, up); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	dec := json.NewDecoder(&b)
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	cities := got["cities"].([]any)
	first, second := cities[0].(map[string]any), cities[1].(map[string]any)
	if got["id"] != "tn1" || got["latency"] != "none" || got["operator"].(map[string]any)["node"] != "127.0.0.1:7401" ||
		first["applied"] != json.Number(strconv.FormatUint(1<<60, 10)) || first["lag"] != json.Number("0") || second["lag"] != nil {
		t.Fatalf("testnet up json: %v", got)
	}
	rtt := rttOf("shanghai", "hefei", []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}, 4.5)
	if rtt.RoundTrips != 3 || rtt.MinMS != 1 || rtt.MedianMS != 2 || rtt.MaxMS != 5 || rtt.ConfiguredMS != 4.5 {
		t.Fatalf("rtt json: %+v", rtt)
	}
	b.Reset()
	printValue(&b, testnetDoneJSON{OK: true, Dir: "/tmp/x", Fault: "kill", Args: []string{"hefei"}})
	var done testnetDoneJSON
	if json.Unmarshal(b.Bytes(), &done) != nil || !done.OK || done.Fault != "kill" || done.Args[0] != "hefei" {
		t.Fatalf("fault json: %s", b.String())
	}
}
