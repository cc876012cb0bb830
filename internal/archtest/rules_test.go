package archtest

import (
	"fmt"
	"slices"
	"strings"
)

const module = "github.com/yrd-exchange/yrdnode"

// rule is one package's row in the layout table. Package lists are
// space-separated paths inside the module, so a row stays one line.
type rule struct {
	imports  string // module packages its code may import
	tests    string // further module packages its tests may import
	pure     bool   // see pureStd, pureLibraries and impure
	libs     string // third-party packages a pure package may import besides pureLibraries (full paths)
	testOnly bool   // only tests, and other test-only packages, may import it
}

// A pure package imports only the standard library (less the parts below,
// which reach files, processes, databases or the network), protocol
// buffers, pureLibraries, its row's libs and other pure module packages;
// and nothing it depends on, however indirectly, is in impure.
var (
	impureStd     = []string{"os", "net", "database/sql", "syscall"}
	pureLibraries = []string{"google.golang.org/protobuf", "go.yaml.in/yaml/v2", "sigs.k8s.io/yaml"}
	impure        = []string{
		"google.golang.org/grpc", "go.etcd.io/bbolt", "github.com/hashicorp/raft",
		"github.com/duckdb/duckdb-go", "github.com/jackc/pgx",
		"github.com/libp2p/go-libp2p/p2p", "github.com/libp2p/go-libp2p/core/host",
		"github.com/libp2p/go-libp2p/core/network", "github.com/libp2p/go-libp2p/core/transport",
	}
)

// The daemon, the deltas and the commands sit above everything under
// internal/ but the command layer itself, which nothing else may import.
var (
	commandLayer = "internal/cli"
	upperLayers  = []string{"cmd", "node", "devnet", "testnet", commandLayer}
)

// pkg is one module package as go list sees it: its direct imports (of
// its code, and of its tests beyond those) and everything its code depends
// on. Paths are full import paths.
type pkg struct {
	imports, testImports, deps []string
}

// under reports whether path is root or inside it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func underAny(path string, roots []string) bool {
	return slices.ContainsFunc(roots, func(r string) bool { return under(path, r) })
}

// local turns a module import path into its path inside the module, and
// reports whether it is one.
func local(path string) (string, bool) {
	if !strings.HasPrefix(path, module+"/") {
		return "", false
	}
	return strings.TrimPrefix(path, module+"/"), true
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// check returns every way graph (keyed by path inside the module) breaks
// the rules of table; none means the graph is allowed.
func check(graph map[string]*pkg, table map[string]rule) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, name := range sortedKeys(graph) {
		p, r := graph[name], table[name]
		if _, listed := table[name]; !listed {
			report("%s has no row in layout_test.go: give it the module packages it may import", name)
			continue
		}
		checkImports(name, p, r, table, report)
		if r.pure {
			checkPure(name, p, r, table, report)
		}
		for _, dep := range p.deps {
			for _, bad := range forbidden[name] {
				if strings.HasPrefix(dep, bad) {
					report("%s depends on %s (forbidden: %s)", name, dep, bad)
				}
			}
		}
	}
	for _, name := range sortedKeys(table) {
		if graph[name] == nil {
			report("layout_test.go has a row for %s, which is not a package of the module", name)
		}
	}
	return problems
}

// checkImports holds name's direct module imports to its row, and to the
// rules no row can lift.
func checkImports(name string, p *pkg, r rule, table map[string]rule, report func(string, ...any)) {
	allowed, forTests := strings.Fields(r.imports), strings.Fields(r.tests)
	for _, path := range p.imports {
		dep, ok := local(path)
		if !ok {
			continue
		}
		if !slices.Contains(allowed, dep) {
			report("%s imports %s, which its row in layout_test.go does not allow", name, dep)
		}
		if table[dep].testOnly && !r.testOnly {
			report("%s imports %s, which only tests may import", name, dep)
		}
		checkLayer(name, dep, report)
	}
	for _, path := range p.testImports {
		dep, ok := local(path)
		if !ok || dep == name {
			continue
		}
		if !slices.Contains(allowed, dep) && !slices.Contains(forTests, dep) {
			report("%s's tests import %s, which its row in layout_test.go does not allow", name, dep)
		}
		checkLayer(name, dep, report)
	}
}

func checkLayer(name, dep string, report func(string, ...any)) {
	if under(name, "internal") && name != commandLayer && underAny(dep, upperLayers) {
		report("%s imports %s: nothing under internal/ but %s imports the daemon, the deltas or the commands", name, dep, commandLayer)
	}
}

// checkPure holds a pure package to pureStd, pureLibraries and impure.
func checkPure(name string, p *pkg, r rule, table map[string]rule, report func(string, ...any)) {
	libs := append(slices.Clone(pureLibraries), strings.Fields(r.libs)...)
	for _, path := range p.imports {
		dep, inModule := local(path)
		switch {
		case inModule && !table[dep].pure:
			report("%s is pure but imports %s, which is not", name, dep)
		case !inModule && isStd(path) && underAny(path, impureStd):
			report("%s is pure but imports %s", name, path)
		case !inModule && !isStd(path) && !underAny(path, libs):
			report("%s is pure but imports %s, which is neither the standard library nor a pure library", name, path)
		}
	}
	for _, dep := range p.deps {
		if underAny(dep, impure) {
			report("%s is pure but depends on %s", name, dep)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
