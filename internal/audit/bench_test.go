package audit

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppendSerial is one caller appending with fsync: every append
// waits for its own commit, so this measures commit latency.
func BenchmarkAppendSerial(b *testing.B) {
	l := openLog(b, filepath.Join(b.TempDir(), "audit.db"), testKey(1), Options{})
	defer l.Close()
	rec := sampleRecord(1)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := l.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
}

// BenchmarkAppendConcurrent is 64 callers appending with fsync: group
// commit shares each fsync among the appends that queued during the last.
func BenchmarkAppendConcurrent(b *testing.B) {
	const appenders = 64
	l := openLog(b, filepath.Join(b.TempDir(), "audit.db"), testKey(1), Options{})
	defer l.Close()
	ctx := context.Background()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range appenders {
		wg.Go(func() {
			rec := sampleRecord(g)
			for left.Add(-1) >= 0 {
				if _, err := l.Append(ctx, rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
	b.ReportMetric(float64(b.N)/float64(l.commits.Load()), "appends/commit")
}
