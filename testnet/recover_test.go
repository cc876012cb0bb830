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

// cliErr runs the yrdnode binary as city i's client with key and returns
// its output and error, for commands expected to fail.
func cliErr(c *procnet.ProcCluster, i int, key string, args ...string) (string, error) {
	cmd := exec.Command(c.Binary, args...)
	cmd.Env = append(os.Environ(), "YRDNODE_NODE="+c.API[i], "YRDNODE_CA="+c.CA(i), "YRDNODE_KEY="+key)
	out, err := cmd.CombinedOutput()
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
// restore` and the old node's keys as docs/operations.md says, joins two
// cities to it, and finds the catalog, the grants and the policy as they
// were on every city, and Shanghai's node as it was: the same identity and
// CA, the old API keys working, its audit log going on.
func TestProcessBackupRestoredIntoANewCluster(t *testing.T) {
	c := startProcs(t)
	fillCatalog(t, c)
	before := readState(t, c, 2)
	operator, err := c.OperatorKey(0)
	if err != nil {
		t.Fatal(err)
	}
	publisher := strings.TrimSpace(cli(t, c, 0, "", "key", "create", "--org", "sh-data", "--role", "publisher", "--name", "etl"))
	auditor := strings.TrimSpace(cli(t, c, 0, "", "key", "create", "--org", "sh-data", "--role", "auditor", "--name", "audit"))
	auditBefore := auditRecords(t, cli(t, c, 0, auditor, "audit", "verify"))
	file := filepath.Join(t.TempDir(), "delta.yrdbackup")
	out := cli(t, c, 0, "", "backup", "-f", file)
	if !strings.Contains(out, "checksums verified") {
		t.Fatalf("backup said:\n%s", out)
	}
	hzFile := filepath.Join(t.TempDir(), "hangzhou.yrdbackup")
	cli(t, c, 1, "", "backup", "-f", hzFile)
	hzOperator, err := c.OperatorKey(1)
	if err != nil {
		t.Fatal(err)
	}
	oldDirs, oldCA := []string{c.Dir(0), c.Dir(1)}, readFile(t, c.CA(0))
	c.Close() // the whole cluster is lost; the machine's backups kept node.key and ca/

	checkDamagedBackupRefused(t, file)

	hosts := procnet.LoopbackHosts(3)
	restore := restoreInPlace(t, hosts, c.Cities, oldDirs, map[int][]string{0: {"--from", file}, 1: {"--from", hzFile, "--join"}})
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
	checkNodeCameBack(t, restored, oldCA, oldKeys{operator, publisher, auditor}, auditBefore)
	if out := cli(t, restored, 1, hzOperator, "cluster", "status"); !strings.Contains(out, "hangzhou") {
		t.Fatalf("Hangzhou's old operator key on its restored node:\n%s", out)
	}
}

// oldKeys are API keys created on the node before its backup.
type oldKeys struct{ operator, publisher, auditor string }

// restoreInPlace is a Prepare step for a new process delta: the
// operator's restore replaces what init made for each city in args,
// with that city's old keys. Shanghai's seeds the new cluster; Hangzhou's
// brings back its node, which then joins.
func restoreInPlace(t *testing.T, hosts, cities, oldDirs []string, args map[int][]string) func(i int, dir string) error {
	return func(i int, dir string) error {
		if args[i] == nil {
			return nil
		}
		os.RemoveAll(dir)
		out, err := offline(binary(t), append([]string{"restore", "--data-dir", dir, "--city", cities[i], "--keys", oldDirs[i],
			"--api", hosts[i] + ":7401", "--fabric", fmt.Sprintf("/ip4/%s/tcp/7411", hosts[i])}, args[i]...)...)
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
}

// checkDamagedBackupRefused: a damaged copy of file is refused, naming
// what failed, and restore writes nothing.
func checkDamagedBackupRefused(t *testing.T, file string) {
	t.Helper()
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
}

// checkNodeCameBack: the restored Shanghai node has the old CA, so clients
// keep their --ca; the old operator and publisher keys work; its audit log
// holds every record from before the backup and still verifies.
func checkNodeCameBack(t *testing.T, c *procnet.ProcCluster, oldCA string, keys oldKeys, auditBefore int) {
	t.Helper()
	if readFile(t, c.CA(0)) != oldCA {
		t.Fatal("the restored node has a new CA")
	}
	if out := cli(t, c, 0, keys.operator, "cluster", "status"); !strings.Contains(out, "shanghai") {
		t.Fatalf("the old operator key:\n%s", out)
	}
	if out := cli(t, c, 0, keys.publisher, "dataset", "list"); !strings.Contains(out, "shanghai.") {
		t.Fatalf("the old publisher key:\n%s", out)
	}
	if after := auditRecords(t, cli(t, c, 0, keys.auditor, "audit", "verify")); after <= auditBefore {
		t.Fatalf("the audit log has %d records after the restore, %d before", after, auditBefore)
	}
}

// auditRecords reads the record count from `audit verify`'s "ok: N records".
func auditRecords(t *testing.T, out string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(out, "ok: %d records", &n); err != nil {
		t.Fatalf("audit verify said:\n%s", out)
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestProcessQuorumLossRecovered kills two of three voters for good and
// brings the survivor back by the procedure of docs/operations.md: stop
// it, write the peers file, `yrdnode cluster recover`, start it, remove the
// lost members. Writes work again and nothing committed is lost.
func TestProcessQuorumLossRecovered(t *testing.T) {
	c := startProcs(t)
	f := filepath.Join(t.TempDir(), "d.json")
	dataset := func(id string) string {
		os.WriteFile(f, []byte(fmt.Sprintf(`{"id":%q,"owner_city":"shanghai","owner_org":"sh-data","title":"t","sector":"civil-affairs","level":"GENERAL","data_rights":{"holder":"h"},"schema":{"columns":[{"name":"a","type":"INTEGER","personal_info":"NONE"}]}}`, id)), 0o600)
		return f
	}
	publisher := strings.TrimSpace(cli(t, c, 0, "", "key", "create", "--org", "sh-data", "--role", "publisher", "--name", "etl"))
	cli(t, c, 0, publisher, "dataset", "publish", "-f", dataset("shanghai.test.before-loss"))
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	// Without a quorum no write commits.
	if out, err := cliErr(c, 0, publisher, "dataset", "publish", "-f", dataset("shanghai.test.no-quorum"), "--timeout", "2s"); err == nil {
		t.Fatalf("a write committed without quorum:\n%s", out)
	}

	// The procedure: stop the survivor, name it in a peers file, recover.
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile(filepath.Join(c.Dir(0), "member"))
	if err != nil {
		t.Fatal(err)
	}
	peers := filepath.Join(t.TempDir(), "peers.json")
	os.WriteFile(peers, []byte(fmt.Sprintf(`[{"id": %q, "voter": true}]`, strings.TrimSpace(string(id)))), 0o600)
	out, err := offline(c.Binary, "cluster", "recover", "--peers", peers, "--data-dir", c.Dir(0))
	if err != nil || !strings.Contains(out, "recovered") {
		t.Fatalf("cluster recover: %v\n%s", err, out)
	}
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitServing(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cli(t, c, 0, publisher, "dataset", "publish", "-f", dataset("shanghai.test.after-recovery"))
	cli(t, c, 0, "", "cluster", "remove", "--city", "hangzhou")
	cli(t, c, 0, "", "cluster", "remove", "--city", "nanjing")
	for _, id := range []string{"shanghai.test.before-loss", "shanghai.test.after-recovery"} {
		if out := cli(t, c, 0, "", "dataset", "get", id); !strings.Contains(out, id) {
			t.Fatalf("after recovery %s is missing:\n%s", id, out)
		}
	}
	if status := cli(t, c, 0, "", "cluster", "status"); strings.Count(status, "VOTER") != 1 || !strings.Contains(status, "Leader") {
		t.Fatalf("after recovery and removals:\n%s", status)
	}
}

// TestClusterRecoverRefusesABadPeersFile checks the peers file before the
// data dir is touched.
func TestClusterRecoverRefusesABadPeersFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	if out, err := offline(binary(t), "init", "--data-dir", dir, "--city", "shanghai"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// A peer id of another node, from what init prints.
	out, err := offline(binary(t), "init", "--data-dir", filepath.Join(t.TempDir(), "other"), "--city", "hangzhou")
	_, other, _ := strings.Cut(out, "peer id: ")
	other, _, _ = strings.Cut(other, "\n")
	if err != nil || other == "" {
		t.Fatalf("%v\n%s", err, out)
	}
	cases := map[string]string{
		`[{"id": "12D3KooWnotapeerid", "voter": true}]`:                "entry 1: id \"12D3KooWnotapeerid\" is not a peer id",
		`[{"id": "` + other + `"}]`:                                    "\"voter\" is required",
		`{"id": "x"}`:                                                  "not a list of",
		`[{"id": "` + other + `", "voter": true, "non_voter": false}]`: "unknown field \"non_voter\"",
		`[{"id": "` + other + `", "voter": false}]`:                    "no voter listed",
	}
	before, _ := os.ReadDir(dir)
	for content, want := range cases {
		peers := filepath.Join(t.TempDir(), "peers.json")
		os.WriteFile(peers, []byte(content), 0o600)
		out, err := offline(binary(t), "cluster", "recover", "--peers", peers, "--data-dir", dir)
		if err == nil || !strings.Contains(out, "peers file refused, nothing changed") || !strings.Contains(out, want) {
			t.Errorf("peers file %s: err %v, output:\n%s", content, err, out)
		}
	}
	peers := filepath.Join(t.TempDir(), "peers.json")
	os.WriteFile(peers, []byte(`[{"id": "`+other+`", "voter": true}]`), 0o600)
	if out, err := offline(binary(t), "cluster", "recover", "--peers", peers, "--data-dir", dir); err == nil || !strings.Contains(out, "this node (shanghai") {
		t.Errorf("a peers file without this node: err %v, output:\n%s", err, out)
	}
	if after, _ := os.ReadDir(dir); len(after) != len(before) {
		t.Errorf("a refused recovery changed the data dir: %v, then %v", before, after)
	}
}
