package cli

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestFailedHopIsNotTheNode: when the node the CLI asked could not reach
// the leader, its answer quotes grpc's dial error; the CLI must print the
// hop the node names, not "cannot reach node" for a node that answered.
func TestFailedHopIsNotTheNode(t *testing.T) {
	msg := `forwarding from shanghai to the leader hangzhou (peer 12D3KooW) failed: connection error: desc = "transport: Error while dialing: fabric: dial 12D3KooW: failed to dial"`
	st, err := status.New(codes.Unavailable, msg).WithDetails(&errdetails.ErrorInfo{Domain: errorDomain, Reason: reasonNotApplied})
	if err != nil {
		t.Fatal(err)
	}
	cf := &clientFlags{node: "127.0.0.1:7443"}
	got := cf.callErr(st.Err()).Error()
	if strings.Contains(got, "cannot reach node") || !strings.Contains(got, "to the leader hangzhou") {
		t.Fatalf("hop failure printed as %q; want the hop named, not the node blamed", got)
	}
	// The node itself unreachable still says so.
	own := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7443: connect: connection refused"`)
	if got := cf.callErr(own).Error(); !strings.Contains(got, "cannot reach node at 127.0.0.1:7443") {
		t.Fatalf("own dial failure printed as %q", got)
	}
}
