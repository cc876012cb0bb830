package node_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// benchCluster is a 3-voter loopback cluster with production raft timing
// and fsync on, as the performance targets are stated for.
func benchCluster(b *testing.B) *testnet.Cluster {
	return startCluster(b, testnet.Options{Raft: defaultRaft()})
}

// latencies collects per-operation durations from many goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration, unit string) {
	slices.Sort(l.all)
	pct := func(p float64) float64 {
		if len(l.all) == 0 {
			return 0
		}
		return float64(l.all[int(p*float64(len(l.all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), unit)
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runConcurrent splits b.N operations over workers and reports throughput
// and latency percentiles.
func runConcurrent(b *testing.B, workers int, unit string, op func(worker, i int) error) {
	var next atomic.Int64
	var lat latencies
	var failed atomic.Value
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/workers+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				t0 := time.Now()
				if err := op(w, i); err != nil {
					failed.Store(err)
					return
				}
				local = append(local, time.Since(t0))
			}
			lat.add(local)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	lat.report(b, elapsed, unit)
	// CPU time of the whole process (all nodes and the clients) per
	// operation: steadier than throughput on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
}

// BenchmarkCatalogWrites measures acknowledged writes sent to the leader.
func BenchmarkCatalogWrites(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			c := benchCluster(b)
			leader, _ := leaderAndFollower(b, c)
			cl := publisherClient(b, c, leader)
			ctx := context.Background()
			runConcurrent(b, writers, "writes/s", func(_, i int) error {
				_, err := cl.PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, leader, i)})
				return err
			})
		})
	}
}

// BenchmarkCatalogWritesViaFollower measures writes that a follower
// forwards to the leader over the fabric.
func BenchmarkCatalogWritesViaFollower(b *testing.B) {
	c := benchCluster(b)
	_, follower := leaderAndFollower(b, c)
	cl := publisherClient(b, c, follower)
	ctx := context.Background()
	runConcurrent(b, 64, "writes/s", func(_, i int) error {
		_, err := cl.PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, follower, i)})
		return err
	})
}

// BenchmarkLinearizableReads measures GetDataset with the default
// (linearizable) consistency from 64 readers spread over all nodes.
func BenchmarkLinearizableReads(b *testing.B) {
	c := benchCluster(b)
	for i := 0; i < 100; i++ {
		publishAt(b, c, 0, i)
	}
	ctx := context.Background()
	runConcurrent(b, 64, "reads/s", func(w, i int) error {
		_, err := catalogClient(c, w%c.Len()).GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: dsAt(c, 0, i%100).GetId()})
		return err
	})
}
