package diffcheck

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Benchmark stores are built once per test binary and size (go test calls
// each benchmark several times) and removed by TestMain.
var (
	benchMu     sync.Mutex
	benchDir    string
	benchStores = map[int]*Store{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range benchStores {
		s.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

const benchK = 10

// benchSize draws a group size log-uniformly from 10..100,000.
func benchSize(rng *rand.Rand) int { return logUniform(rng, 10, 100_000) }

// synthSketch returns the sketch of n fresh random persons. Large groups
// are synthesised cell by cell (counts near n/m, random XORs with the low
// bits their parity fixes), which is what Add would give, much faster.
func synthSketch(rng *rand.Rand, m, n int) *Sketch {
	s := newSketch(m)
	if n <= 4*m {
		for range n {
			s.Add(rng.Uint64())
		}
		return s
	}
	for i := range m {
		s.counts[i] = int64(n / m)
	}
	s.counts[rng.IntN(m)] += int64(n % m)
	spread := int(math.Sqrt(float64(n / m)))
	for range m {
		a, b := rng.IntN(m), rng.IntN(m)
		move := int64(rng.IntN(spread + 1))
		if s.counts[a] > move {
			s.counts[a] -= move
			s.counts[b] += move
		}
	}
	mask := uint64(m - 1)
	for i := range m {
		s.xors[i] = rng.Uint64() &^ mask
		if s.counts[i]&1 == 1 {
			s.xors[i] |= uint64(i)
		}
	}
	s.n = int64(n)
	return s
}

// benchStore returns a store holding n remembered groups of testScope.
func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if s := benchStores[n]; s != nil {
		return s
	}
	if benchDir == "" {
		dir, err := os.MkdirTemp("", "diffcheck-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
	}
	s := openAt(b, filepath.Join(benchDir, fmt.Sprintf("%d.db", n)))
	rng := rand.New(rand.NewPCG(uint64(n), 9))
	id, m := testScope.id(), CellsFor(benchK)
	for done := 0; done < n; {
		var batch []flushed
		for ; done < n && len(batch) < 10_000; done++ {
			s.seq++
			sk := synthSketch(rng, m, benchSize(rng))
			r := &record{key: makeKey(id, sk.n, s.seq), scheme: testScheme, sk: sk, time: t0.UnixNano()}
			batch = append(batch, flushed{r: r, time: r.time})
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return writeBatch(tx, batch, s.seq) }); err != nil {
			b.Fatal(err)
		}
	}
	benchStores[n] = s
	return s
}

// BenchmarkRelease releases results of 20 new groups (sizes as the
// remembered ones: log-uniform in 10..100,000, k = 10, 64 cells) into a
// scope that remembers 1,000 or 100,000 groups. After each op, outside the
// timer, the new entries are committed (flush-ns/op: the background
// commit's latency, fsync included) and deleted, so every op sees the same
// store. cpu-ns/op is the CPU time of Release's thread: on a loaded machine
// ns/op also counts waiting for a CPU.
func BenchmarkRelease(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("remembered=%d", n), func(b *testing.B) {
			runtime.LockOSThread() // cpu-ns/op reads this thread's CPU time
			defer runtime.UnlockOSThread()
			s := benchStore(b, n)
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			groups := make([]*Sketch, 20)
			t1 := t0.Add(time.Hour) // the new entries' time, to find them
			var suppressed int
			var flush time.Duration
			var cpu int64
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range groups {
					groups[i] = synthSketch(rng, CellsFor(benchK), benchSize(rng))
				}
				b.StartTimer()
				cpu0 := threadCPU()
				out, err := s.Release(testScope, testScheme, benchK, groups, t1)
				cpu += threadCPU() - cpu0
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				suppressed += out.GroupsSuppressed
				start := time.Now()
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
				flush += time.Since(start)
				deleteSince(b, s, t1)
				b.StartTimer()
			}
			b.ReportMetric(float64(suppressed)/float64(b.N), "suppressed/op")
			b.ReportMetric(float64(flush.Nanoseconds())/float64(b.N), "flush-ns/op")
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// deleteSince deletes the entries stored at or after t.
func deleteSince(b *testing.B, s *Store, t time.Time) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		entries, c := tx.Bucket(bucketEntries), tx.Bucket(bucketByTime).Cursor()
		from := binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
		for k, _ := c.Seek(from); k != nil; k, _ = c.Seek(from) {
			if err := entries.Delete(k[8:]); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCandidate is the work Release does per remembered group in the
// size range: decode (with every check) and compare with a Far group.
func BenchmarkCandidate(b *testing.B) {
	for _, n := range []int{15, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 3))
			m := CellsFor(benchK)
			v := appendEntry(nil, t0.UnixNano(), testScheme, synthSketch(rng, m, n))
			c := synthSketch(rng, m, n)
			scratch := newSketch(m)
			into := func(int) *Sketch { return scratch }
			b.ReportAllocs()
			for b.Loop() {
				e, err := decodeEntry(v, into)
				if err != nil {
					b.Fatal(err)
				}
				if v, _ := compareCells(c, e.sk, benchK, benchK); v != Far {
					b.Fatal(v)
				}
			}
		})
	}
}

// BenchmarkDecide is Release's decision alone — the read transaction and
// every comparison, nothing remembered — on the stores of
// BenchmarkRelease, so its allocations are Release's own: the background
// commit that BenchmarkRelease's timed window may overlap is absent.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("remembered=%d", n), func(b *testing.B) {
			s := benchStore(b, n)
			rng := rand.New(rand.NewPCG(2, uint64(n)))
			pool := make([][]*Sketch, 64)
			for j := range pool {
				pool[j] = make([]*Sketch, 20)
				for i := range pool[j] {
					pool[j][i] = synthSketch(rng, CellsFor(benchK), benchSize(rng))
				}
			}
			b.ReportAllocs()
			j := 0
			for b.Loop() {
				s.mu.Lock()
				tx, err := s.db.Begin(false)
				if err != nil {
					b.Fatal(err)
				}
				r := &releaser{s: s, tx: tx, id: testScope.id(), scheme: testScheme, k: benchK, now: t0.UnixNano()}
				_, err = r.decide(pool[j%len(pool)])
				tx.Rollback()
				s.mu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
				j++
			}
		})
	}
}
