package testnet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// offline runs the yrdnode binary on a data dir, as an operator does on a
// stopped node, and returns its output and error.
func offline(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// catalogState is what a restore must keep, read through the API.
type catalogState struct {
	datasets *yrdv1.ListDatasetsResponse
	grants   *yrdv1.ListGrantsResponse
	policy   *yrdv1.GetPolicyResponse
}

func readState(t *testing.T, c *procnet.ProcCluster, i int) catalogState {
	t.Helper()
	conn, err := c.Conn(i)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s catalogState
	lin := yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
	if s.datasets, err = yrdv1grpc.NewCatalogServiceClient(conn).ListDatasets(ctx, &yrdv1.ListDatasetsRequest{IncludeRetired: true, PageSize: 1000, Consistency: lin}); err != nil {
		t.Fatal(err)
	}
	if s.grants, err = yrdv1grpc.NewGrantServiceClient(conn).ListGrants(ctx, &yrdv1.ListGrantsRequest{Consistency: lin}); err != nil {
		t.Fatal(err)
	}
	if s.policy, err = yrdv1grpc.NewPolicyServiceClient(conn).GetPolicy(ctx, &yrdv1.GetPolicyRequest{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// fillCatalog publishes Shanghai's sample datasets, requests and approves
// a grant, and changes the policy.
func fillCatalog(t *testing.T, c *procnet.ProcCluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var granted *yrdv1.Dataset
	for _, d := range sample.Datasets() {
		if d.GetOwnerCity() != "shanghai" {
			continue
		}
		conn, err := c.ConnAs(0, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
		if granted == nil && len(d.GetPermittedPurposes()) > 0 {
			granted = d
		}
	}
	analyst, err := c.ConnAs(1, "hz-planning", yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		t.Fatal(err)
	}
	req, err := yrdv1grpc.NewGrantServiceClient(analyst).RequestGrant(ctx, &yrdv1.RequestGrantRequest{DatasetId: granted.GetId(),
		Purpose: granted.GetPermittedPurposes()[0], ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, Duration: durationpb.New(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cdo, err := c.ConnAs(0, granted.GetOwnerOrg(), yrdv1.Role_ROLE_CDO)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := yrdv1grpc.NewGrantServiceClient(cdo).ApproveGrant(ctx, &yrdv1.DecideGrantRequest{Id: req.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	op, _ := c.Conn(0)
	ps := yrdv1grpc.NewPolicyServiceClient(op)
	cur, err := ps.GetPolicy(ctx, &yrdv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	params := cur.GetParams()
	params.PrivacyBudget = 7.25
	if _, err := ps.UpdatePolicy(ctx, &yrdv1.UpdatePolicyRequest{Params: params, ExpectedVersion: params.GetVersion()}); err != nil {
		t.Fatal(err)
	}
}

// TestProcessBackupRestoredIntoANewCluster backs up a live 3-city cluster
// with `yrdnode backup`, loses it, seeds a new cluster with `yrdnode
// restore` as docs/operations.md says, joins two cities to it, and finds
// the catalog, the grants and the policy as they were on every city.
func TestProcessBackupRestoredIntoANewCluster(t *testing.T) {
	c := startProcs(t)
	fillCatalog(t, c)
	before := readState(t, c, 2)
	file := filepath.Join(t.TempDir(), "delta.yrdbackup")
	out := cli(t, c, 0, "", "backup", "-f", file)
	if !strings.Contains(out, "checksums verified") {
		t.Fatalf("backup said:\n%s", out)
	}
	c.Close() // the whole cluster is lost

	// A damaged copy is refused, naming what failed, and writes nothing.
	data, _ := os.ReadFile(file)
	data[len(data)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.yrdbackup")
	os.WriteFile(bad, data, 0o600)
	badDir := filepath.Join(t.TempDir(), "never")
	out, err := offline(binary(t), "restore", "--from", bad, "--data-dir", badDir)
	if err == nil || !strings.Contains(out, "backup refused, nothing written") || !strings.Contains(out, "damaged") {
		t.Fatalf("a damaged backup: err %v, output:\n%s", err, out)
	}
	if _, err := os.Stat(badDir); !os.IsNotExist(err) {
		t.Fatalf("a refused restore created %s", badDir)
	}

	hosts := procnet.LoopbackHosts(3)
	restore := func(i int, dir string) error {
		if i != 0 {
			return nil
		}
		// The operator's restore replaces what init made for the first city.
		os.RemoveAll(dir)
		out, err := offline(binary(t), "restore", "--from", file, "--data-dir", dir, "--city", "shanghai",
			"--api", hosts[0]+":7401", "--fabric", fmt.Sprintf("/ip4/%s/tcp/7411", hosts[0]))
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	restored, err := procnet.StartProcsOpts(ctx, binary(t), t.TempDir(),
		procnet.ProcOptions{Cities: []string{"shanghai", "hangzhou", "nanjing"}, Hosts: hosts, Prepare: restore})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	for i := range 3 {
		after := readState(t, restored, i)
		if !proto.Equal(before.datasets, after.datasets) || !proto.Equal(before.grants, after.grants) || !proto.Equal(before.policy, after.policy) {
			t.Fatalf("%s after the restore differs:\nbefore %v\nafter  %v", restored.Cities[i], before, after)
		}
	}
	if len(before.datasets.GetDatasets()) == 0 || len(before.grants.GetGrants()) != 1 || before.policy.GetParams().GetPrivacyBudget() != 7.25 {
		t.Fatalf("the state compared is not the one written: %v", before)
	}
	status := cli(t, restored, 1, "", "cluster", "status")
	if strings.Count(status, "VOTER") != 3 {
		t.Fatalf("the restored cluster does not have three voters:\n%s", status)
	}
}
