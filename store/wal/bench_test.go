package wal

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkStoreLogs is the WAL's append, fsync on: one write and one
// fdatasync per batch. fsyncs/op counts the syncs the WAL made. Compare
// with store's BenchmarkLogStoreStoreLogs (bbolt).
func BenchmarkStoreLogs(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			w, err := Open(filepath.Join(b.TempDir(), "wal"), Options{}) // fsync on
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			syncs := w.syncs.Load()
			benchStoreLogs(b, w, n)
			b.ReportMetric(float64(w.syncs.Load()-syncs)/float64(b.N), "fsyncs/op")
		})
	}
}

// benchStoreLogs appends batches of n 256-byte commands, as raft does.
func benchStoreLogs(b *testing.B, s raft.LogStore, n int) {
	data := make([]byte, 256)
	batch := make([]*raft.Log, n)
	next := uint64(1)
	lat := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			batch[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
			next++
		}
		start := time.Now()
		if err := s.StoreLogs(batch); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "logs/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
