package testnet_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// long runs the full-length load tests (60 s of writes, ten failovers).
// CI does not pass it; `go test ./testnet -run Load -long` does.
var long = flag.Bool("long", false, "run the 60 s load tests")

// cpuHog saturates every core with busy-looping processes until stop is
// called or limit passes, whichever is first; the processes die with it.
type cpuHog struct {
	cancel context.CancelFunc
	procs  []*exec.Cmd
}

func startHog(t testing.TB, limit time.Duration) *cpuHog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	h := &cpuHog{cancel: cancel}
	for range runtime.NumCPU() {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			h.stop()
			t.Fatalf("cpu hog: %v", err)
		}
		h.procs = append(h.procs, cmd)
	}
	t.Cleanup(h.stop)
	return h
}

// stop kills the hog processes and reaps them; it may be called twice.
func (h *cpuHog) stop() {
	h.cancel()
	for _, p := range h.procs {
		p.Wait()
	}
	h.procs = nil
}

// writers are publisher clients, one per city, writing that city's
// datasets.
type writers struct {
	c       *procnet.ProcCluster
	clients []yrdv1grpc.CatalogServiceClient
	seq     atomic.Int64
}

func newWriters(t testing.TB, c *procnet.ProcCluster) *writers {
	t.Helper()
	w := &writers{c: c}
	for i, city := range c.Cities {
		conn, err := c.ConnAs(i, city+"-data", yrdv1.Role_ROLE_PUBLISHER)
		if err != nil {
			t.Fatal(err)
		}
		w.clients = append(w.clients, yrdv1grpc.NewCatalogServiceClient(conn))
	}
	return w
}

// publish writes a new dataset through city i.
func (w *writers) publish(ctx context.Context, i int, timeout time.Duration) error {
	city := w.c.Cities[i]
	d := sample.Datasets()[1]
	d.Id = fmt.Sprintf("%s.load.w-%d", city, w.seq.Add(1))
	d.OwnerCity, d.OwnerOrg = city, city+"-data"
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := w.clients[i].PublishDataset(cctx, &yrdv1.PublishDatasetRequest{Dataset: d})
	return err
}

// maxTerm is the highest raft term any running city reports. With
// pre-vote a term only grows with a real election, so the difference over
// a run counts the elections in it.
func maxTerm(ctx context.Context, c *procnet.ProcCluster, running []int) (uint64, error) {
	var top uint64
	var errs []error
	for _, i := range running {
		conn, err := c.Conn(i)
		if err != nil {
			return 0, err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := yrdv1grpc.NewClusterServiceClient(conn).Status(cctx, &yrdv1.StatusRequest{})
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		top = max(top, st.GetTerm())
	}
	if len(errs) == len(running) {
		return 0, errors.Join(errs...)
	}
	return top, nil
}

// runStableUnderLoad drives a 3-voter cluster of real processes with
// writes through every city for d while a CPU hog saturates every core,
// and wants no election and no failed write.
func runStableUnderLoad(t *testing.T, d time.Duration) {
	c := startProcs(t)
	w := newWriters(t, c)
	ctx := context.Background()
	all := []int{0, 1, 2}
	if _, err := c.Leader(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := maxTerm(ctx, c, all)
	if err != nil {
		t.Fatal(err)
	}
	hog := startHog(t, d+time.Minute)
	var wg sync.WaitGroup
	var writes, failed atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	for i := range c.Cities {
		wg.Add(1)
		go func() { // owned by this test: ends at stop
			defer wg.Done()
			for time.Now().Before(stop) {
				// A healthy write takes milliseconds; 10 s is a failure,
				// not slowness.
				if err := w.publish(ctx, i, 10*time.Second); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("via %s: %v", c.Cities[i], err))
					continue
				}
				writes.Add(1)
			}
		}()
	}
	wg.Wait()
	hog.stop()
	after, err := maxTerm(ctx, c, all)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v under a %d-process CPU hog: %d writes acknowledged, %d failed, term %d → %d",
		d, runtime.NumCPU(), writes.Load(), failed.Load(), before, after)
	if after != before {
		t.Errorf("%d elections while writing under load (term %d → %d); logs:\n%s\n%s\n%s",
			after-before, before, after, c.LogTail(0), c.LogTail(1), c.LogTail(2))
	}
	if failed.Load() > 0 {
		t.Errorf("%d writes failed, first: %v", failed.Load(), firstErr.Load())
	}
	if writes.Load() == 0 {
		t.Error("no write acknowledged")
	}
}

// TestLeaderStableUnderLoad: 10 s of writes with every core saturated
// change the leader 0 times.
func TestLeaderStableUnderLoad(t *testing.T) { runStableUnderLoad(t, 10*time.Second) }

// TestLeaderStableUnderLoadLong is the 60 s version (-long).
func TestLeaderStableUnderLoadLong(t *testing.T) {
	if !*long {
		t.Skip("60 s of load; run with -long")
	}
	runStableUnderLoad(t, 60*time.Second)
}

// failoverUnderLoad SIGKILLs the leader n times with every core saturated
// and returns, per kill, the time to the first write acknowledged by a
// survivor. The killed city is restarted (and caught up) between rounds.
func failoverUnderLoad(t testing.TB, n int) []time.Duration {
	c := startProcs(t)
	w := newWriters(t, c)
	ctx := context.Background()
	hog := startHog(t, time.Duration(n)*2*time.Minute)
	defer hog.stop()
	var times []time.Duration
	for round := 0; round < n; round++ {
		leader, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		survivors := []int{(leader + 1) % 3, (leader + 2) % 3}
		if err := c.Kill(leader); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		elected := watchElection(ctx, c, survivors)
		var lastErr error
		for try := 0; ; try++ {
			// Short per-try timeouts, alternating survivors, as a client
			// with a deadline would: the write that lands first counts.
			if lastErr = w.publish(ctx, survivors[try%2], 250*time.Millisecond); lastErr == nil {
				break
			}
			// A failover takes about a second; ten is broken.
			if time.Since(killed) > 10*time.Second {
				t.Fatalf("round %d: no write acknowledged 10 s after killing the leader: %v", round, lastErr)
			}
		}
		times = append(times, time.Since(killed))
		if at, ok := <-elected; ok {
			t.Logf("round %d: new leader %v after the kill, first write %v", round, at.Sub(killed).Round(time.Millisecond), times[round].Round(time.Millisecond))
		}
		if err := c.Start(leader); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = c.WaitServing(wctx, leader)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return times
}

// watchElection polls the survivors' status until one of them leads, and
// sends the time it first saw that; it gives up (closing the channel
// empty) after 10 s.
func watchElection(ctx context.Context, c *procnet.ProcCluster, survivors []int) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() { // owned by the round: ends when a survivor leads or after 10 s
		defer close(out)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, i := range survivors {
				conn, err := c.Conn(i)
				if err != nil {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				st, err := yrdv1grpc.NewClusterServiceClient(conn).Status(cctx, &yrdv1.StatusRequest{})
				cancel()
				if err == nil && st.GetRaftState() == "Leader" {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

func reportFailovers(t testing.TB, times []time.Duration) (p50, top time.Duration) {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	p50, top = sorted[len(sorted)/2], sorted[len(sorted)-1]
	t.Logf("failover under a %d-process CPU hog, %d kills: p50 %v, max %v, all %v",
		runtime.NumCPU(), len(times), p50.Round(time.Millisecond), top.Round(time.Millisecond), times)
	return p50, top
}

// TestFailoverUnderLoad: with every core saturated, a SIGKILLed leader is
// still replaced and writes go on (each within 10 s; typically ~1 s).
func TestFailoverUnderLoad(t *testing.T) {
	n := 2
	if *long {
		n = 10
	}
	reportFailovers(t, failoverUnderLoad(t, n))
}

// BenchmarkFailoverUnderLoad reports p50 and max failover (SIGKILL of the
// leader to the first acknowledged write) with every core saturated.
func BenchmarkFailoverUnderLoad(b *testing.B) {
	times := failoverUnderLoad(b, b.N)
	p50, top := reportFailovers(b, times)
	b.ReportMetric(float64(p50.Milliseconds()), "p50-failover-ms")
	b.ReportMetric(float64(top.Milliseconds()), "max-failover-ms")
}
