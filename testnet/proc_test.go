package testnet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// binary builds cmd/yrdnode once per test run.
func binary(t testing.TB) string {
	t.Helper()
	bin, err := procnet.BuildBinaryOnce("..")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func startProcs(t testing.TB) *procnet.ProcCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := procnet.StartProcs(ctx, binary(t), t.TempDir(), []string{"shanghai", "hangzhou", "nanjing"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cli runs the yrdnode binary as city i's operator would, or with the key
// given in env.
func cli(t testing.TB, c *procnet.ProcCluster, i int, key string, args ...string) string {
	t.Helper()
	if key == "" {
		var err error
		if key, err = c.OperatorKey(i); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(c.Binary, args...)
	cmd.Env = append(os.Environ(), "YRDNODE_NODE="+c.API[i], "YRDNODE_CA="+c.CA(i), "YRDNODE_KEY="+key)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("yrdnode %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestProcessClusterSurvivesKilledLeader runs real yrdnode binaries set up
// with init / serve / cluster join, drives them with the CLI, SIGKILLs the
// leader, and brings it back from its data dir alone.
func TestProcessClusterSurvivesKilledLeader(t *testing.T) {
	c := startProcs(t)
	f := filepath.Join(t.TempDir(), "d.json")
	id := "hangzhou.test.proc-dataset"
	os.WriteFile(f, []byte(fmt.Sprintf(`{"id":%q,"owner_city":"hangzhou","owner_org":"hz-data","title":"t","sector":"civil-affairs","level":"GENERAL","data_rights":{"holder":"h"},"schema":{"columns":[{"name":"a","type":"INTEGER","personal_info":"NONE"}]}}`, id)), 0o600)
	publisherKey := strings.TrimSpace(cli(t, c, 1, "", "key", "create", "--org", "hz-data", "--role", "publisher", "--name", "etl"))
	cli(t, c, 1, publisherKey, "dataset", "publish", "-f", f)
	status := cli(t, c, 2, "", "cluster", "status")
	if strings.Count(status, "VOTER") != 3 {
		t.Fatalf("cluster status does not show three voters:\n%s", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	survivor := (leader + 1) % 3
	out := cli(t, c, survivor, "", "dataset", "get", id, "--timeout", "20s")
	if !strings.Contains(out, id) {
		t.Fatalf("survivor lost the dataset:\n%s", out)
	}
	// The killed node restarts with nothing but its data dir (and rebuilds
	// its catalog, which it did not close cleanly).
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(ctx, leader); err != nil {
		t.Fatal(err)
	}
	out = cli(t, c, leader, "", "dataset", "get", id)
	if !strings.Contains(out, "version:          1") {
		t.Fatalf("restarted node serves:\n%s", out)
	}
	if !strings.Contains(c.LogTail(leader), "rebuilding") {
		t.Fatalf("the killed node did not rebuild its catalog; log:\n%s", c.LogTail(leader))
	}
}

// BenchmarkFailover measures the time from SIGKILL of the leader process to
// the first acknowledged write on a survivor, on real binaries with the
// default raft timing.
func BenchmarkFailover(b *testing.B) {
	c := startProcs(b)
	ctx := context.Background()
	writers := make([]yrdv1grpc.CatalogServiceClient, len(c.Cities))
	for i, city := range c.Cities {
		conn, err := c.ConnAs(i, city+"-data", yrdv1.Role_ROLE_PUBLISHER)
		if err != nil {
			b.Fatal(err)
		}
		writers[i] = yrdv1grpc.NewCatalogServiceClient(conn)
	}
	var times []time.Duration
	for n := 0; n < b.N; n++ {
		leader, err := c.Leader(ctx)
		if err != nil {
			b.Fatal(err)
		}
		survivors := []int{(leader + 1) % 3, (leader + 2) % 3}
		if err := c.Kill(leader); err != nil {
			b.Fatal(err)
		}
		killed := time.Now()
		for try := 0; ; try++ {
			city := c.Cities[survivors[try%2]]
			d := sample.Datasets()[1]
			d.Id = fmt.Sprintf("%s.failover.run-%d-%d", city, n, try)
			d.OwnerCity, d.OwnerOrg = city, city+"-data"
			cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err := writers[survivors[try%2]].PublishDataset(cctx, &yrdv1.PublishDatasetRequest{Dataset: d})
			cancel()
			if err == nil {
				break
			}
			if time.Since(killed) > 30*time.Second {
				b.Fatalf("no write acknowledged 30s after killing the leader: %v", err)
			}
		}
		times = append(times, time.Since(killed))
		b.StopTimer()
		if err := c.Start(leader); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = c.WaitServing(wctx, leader)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "p50-failover-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-failover-ms")
}
