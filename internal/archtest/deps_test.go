package archtest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/yrd-exchange/yrdnode"

// forbidden maps a package to what it must never depend on, directly or
// through anything it imports. Storage and consensus stay free of the
// network stack and of the daemon wiring, so they can be tested and
// reasoned about alone; the raft log (store/wal) needs not even bbolt.
var forbidden = map[string][]string{
	module + "/store/wal":    {"google.golang.org/grpc", "github.com/libp2p/", "go.etcd.io/bbolt", module + "/node", module + "/consensus", module + "/internal/fabric"},
	module + "/store":        {"google.golang.org/grpc", "github.com/libp2p/", module + "/node", module + "/consensus", module + "/internal/fabric"},
	module + "/consensus":    {"google.golang.org/grpc", "github.com/libp2p/", module + "/node", module + "/internal/fabric"},
	module + "/proto/yrd/v1": {"google.golang.org/grpc"},
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

func TestDependencyDirection(t *testing.T) {
	// The check must be able to fail: node does depend on gRPC and libp2p.
	var sawGRPC, sawLibp2p bool
	for _, dep := range deps(t, module+"/node") {
		sawGRPC = sawGRPC || strings.HasPrefix(dep, "google.golang.org/grpc")
		sawLibp2p = sawLibp2p || strings.HasPrefix(dep, "github.com/libp2p/")
	}
	if !sawGRPC || !sawLibp2p {
		t.Fatal("go list -deps does not show node's gRPC and libp2p dependencies; the check would prove nothing")
	}
	for pkg, bad := range forbidden {
		for _, dep := range deps(t, pkg) {
			for _, b := range bad {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s (forbidden: %s)", pkg, dep, b)
				}
			}
		}
	}
}
