package browser_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// isolatedEnv marks the test binary re-run inside its own network
// namespace.
const isolatedEnv = "YRDNODE_BROWSER_NETNS"

// TestMain runs the tests, as root, in a network namespace of their own
// with only loopback: the nodes and Chromium talk over it, and nothing
// else on the machine changes their network. Chromium aborts page loads
// and form posts with ERR_NETWORK_CHANGED whenever the machine's
// interfaces change, which they do while the chaos tests (run in parallel
// by go test) make and remove namespaces; a form post must never be sent
// twice, so the tests avoid the cause rather than retry. Without root the
// tests run as they are.
func TestMain(m *testing.M) {
	if os.Getenv(isolatedEnv) != "" || os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser tests: unshare not found (util-linux); running in the machine's network namespace")
		os.Exit(m.Run())
	}
	cmd := exec.Command(unshare, append([]string{"--net", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh", os.Args[0]}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), isolatedEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "browser tests: run in a network namespace:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
