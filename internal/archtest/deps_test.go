package archtest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func goList(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"list"}, args...)...)
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// loadGraph reads the module's packages and their imports with go list.
func loadGraph(t *testing.T) map[string]*pkg {
	t.Helper()
	out := goList(t, "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}\t{{join .TestImports \" \"}} {{join .XTestImports \" \"}}\t{{join .Deps \" \"}}", "./...")
	graph := map[string]*pkg{}
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 4 {
			t.Fatalf("go list printed %q", line)
		}
		name, ok := local(f[0])
		if !ok {
			t.Fatalf("go list ./... printed %s, outside the module", f[0])
		}
		graph[name] = &pkg{imports: strings.Fields(f[1]), testImports: strings.Fields(f[2]), deps: strings.Fields(f[3])}
	}
	return graph
}

func TestDependencyRules(t *testing.T) {
	graph := loadGraph(t)
	// The graph must be the real one for the check to prove anything: node
	// does depend on gRPC and libp2p.
	deps := graph["node"].deps
	if !slices.ContainsFunc(deps, func(d string) bool { return under(d, "google.golang.org/grpc") }) ||
		!slices.ContainsFunc(deps, func(d string) bool { return strings.HasPrefix(d, "github.com/libp2p/") }) {
		t.Fatal("go list does not show node's gRPC and libp2p dependencies; the check would prove nothing")
	}
	for _, p := range check(graph, layout) {
		t.Error(p)
	}
}

// TestRulesReportABadGraph shows that the check can fail: each change to
// the real graph below breaks a rule, and the check must name it.
func TestRulesReportABadGraph(t *testing.T) {
	graph := loadGraph(t)
	add := func(name string, imports, testImports, deps []string) {
		p := graph[name]
		if p == nil {
			p = &pkg{}
			graph[name] = p
		}
		p.imports = append(p.imports, imports...)
		p.testImports = append(p.testImports, testImports...)
		p.deps = append(p.deps, deps...)
	}
	add("internal/policy", []string{module + "/node", "os"}, nil, []string{"google.golang.org/grpc"})
	add("internal/merge", nil, []string{module + "/testnet"}, nil)
	add("internal/cli", []string{module + "/internal/pgtest"}, nil, nil)
	add("store/wal", nil, nil, []string{"go.etcd.io/bbolt"})
	add("consensus", []string{module + "/internal/policy"}, nil, []string{module + "/internal/policy"})
	add("internal/newthing", nil, nil, nil)
	delete(graph, "internal/noise")
	problems := strings.Join(check(graph, layout), "\n")
	for _, want := range []string{
		"internal/policy imports node, which its row",
		"internal/policy imports node: nothing under internal/",
		"internal/policy is pure but imports node, which is not",
		"internal/policy is pure but imports os",
		"internal/policy is pure but depends on google.golang.org/grpc",
		"internal/merge's tests import testnet, which its row",
		"internal/merge imports testnet: nothing under internal/",
		"internal/cli imports internal/pgtest, which its row",
		"internal/cli imports internal/pgtest, which only tests may import",
		"store/wal depends on go.etcd.io/bbolt",
		"consensus imports internal/policy, which its row",
		"consensus depends on " + module + "/internal/policy",
		"internal/newthing has no row",
		"a row for internal/noise, which is not a package",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("the check missed %q; it reported:\n%s", want, problems)
		}
	}
}

// The yrdnode binary links neither the in-process test harness nor any
// other test-only package. (Package testing itself comes in through
// hashicorp/raft, out of our hands.)
func TestTheBinaryLinksNoTestHarness(t *testing.T) {
	deps := strings.Fields(goList(t, "-deps", "./cmd/yrdnode"))
	if !slices.Contains(deps, module+"/devnet") {
		t.Fatal("go list -deps ./cmd/yrdnode does not show devnet, which `yrdnode dev` runs; the check would prove nothing")
	}
	for _, name := range sortedKeys(layout) {
		if layout[name].testOnly && slices.Contains(deps, module+"/"+name) {
			t.Errorf("cmd/yrdnode depends on %s, which only tests may import", name)
		}
	}
	for _, name := range []string{"testnet", "internal/pgtest"} {
		if !layout[name].testOnly {
			t.Errorf("%s is not marked testOnly in layout_test.go", name)
		}
	}
}
