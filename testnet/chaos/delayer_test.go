package chaos

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeTun is an in-memory TUN device: tests put packets in, the delayer
// reads them, and what it writes back comes out with the time.
type fakeTun struct {
	in        chan []byte
	out       chan sent
	closeOnce sync.Once
	closed    chan struct{}
}

type sent struct {
	data []byte
	at   time.Time
}

func newFakeTun() *fakeTun {
	return &fakeTun{in: make(chan []byte, 1<<16), out: make(chan sent, 1<<16), closed: make(chan struct{})}
}

func (f *fakeTun) Read(p []byte) (int, error) {
	select {
	case b := <-f.in:
		return copy(p, b), nil
	case <-f.closed:
		return 0, os.ErrClosed
	}
}

func (f *fakeTun) Write(p []byte) (int, error) {
	select {
	case <-f.closed:
		return 0, os.ErrClosed
	default:
	}
	f.out <- sent{append([]byte(nil), p...), time.Now()}
	return len(p), nil
}

func (f *fakeTun) Close() error { f.closeOnce.Do(func() { close(f.closed) }); return nil }

// ipPacket is a minimal IPv4 packet from city src to city dst (10.0.0.x)
// carrying seq.
func ipPacket(src, dst int, seq uint32) []byte {
	p := make([]byte, 24)
	p[0] = 0x45
	copy(p[12:], []byte{10, 0, 0, byte(src + 1)})
	copy(p[16:], []byte{10, 0, 0, byte(dst + 1)})
	binary.BigEndian.PutUint32(p[20:], seq)
	return p
}

func testState(delays [][]float64) *State {
	s := &State{Mode: ModeNetns}
	for i, row := range delays {
		s.Cities = append(s.Cities, City{ID: string(rune('a' + i)), IP: "10.0.0." + string(rune('1'+i)), DelayMs: row})
	}
	return s
}

func startDelayer(t *testing.T, dev io.ReadWriteCloser, s *State) *Delayer {
	t.Helper()
	d := newDelayer(dev, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.setTable(tableFrom(s))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the delayer did not stop")
		}
	})
	return d
}

// TestDelayerHoldsPairsForTheirDelay: each pair's packets come out no
// sooner than that pair's delay (plus a spike on the sender), in order,
// and packets between unknown addresses are dropped.
func TestDelayerHoldsPairsForTheirDelay(t *testing.T) {
	s := testState([][]float64{{0, 20, 5}, {20, 0, 10}, {5, 10, 0}})
	dev := newFakeTun()
	d := startDelayer(t, dev, s)
	want := map[[2]int]time.Duration{{0, 1}: 20 * time.Millisecond, {0, 2}: 5 * time.Millisecond, {2, 1}: 10 * time.Millisecond}
	start := map[uint32]time.Time{}
	var seq uint32
	for range 50 {
		for pair := range want {
			seq++
			start[seq] = time.Now()
			dev.in <- ipPacket(pair[0], pair[1], seq)
		}
	}
	junk := ipPacket(0, 1, 0)
	junk[19] = 99 // 10.0.0.99 is no city
	dev.in <- junk
	last := map[[2]int]uint32{}
	for range seq {
		var got sent
		select {
		case got = <-dev.out:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d packets came out", len(last))
		}
		src, dst := int(got.data[15])-1, int(got.data[19])-1
		n := binary.BigEndian.Uint32(got.data[20:])
		if held := got.at.Sub(start[n]); held < want[[2]int{src, dst}] {
			t.Errorf("packet %d→%d held %v, less than %v", src, dst, held, want[[2]int{src, dst}])
		}
		if n < last[[2]int{src, dst}] {
			t.Errorf("pair %d→%d out of order: %d after %d", src, dst, n, last[[2]int{src, dst}])
		}
		last[[2]int{src, dst}] = n
	}
	// The delayer counts a packet once the device's Write has returned,
	// which is just after the test has read it: wait for the count.
	if st := statsAfter(d, func(st DelayerStats) bool { return st.Packets == uint64(seq) }); st.Other != 1 || st.Packets != uint64(seq) || st.Queued != 0 {
		t.Errorf("stats %+v: want 1 other, %d packets, none queued", st, seq)
	}

	// A spike on city 0 adds to its pairs only; lowering it again keeps
	// the pair in order (a packet never overtakes the one before it).
	s.DelayMs = map[int]int{0: 30}
	d.setTable(tableFrom(s))
	t0 := time.Now()
	dev.in <- ipPacket(0, 2, 1000)
	dev.in <- ipPacket(2, 1, 1001)
	s.DelayMs = nil
	// The table changes once the reader has taken both.
	taken := func() uint64 { st := d.Stats(); return st.Packets + uint64(st.Queued) } // written back or held
	for deadline := time.Now().Add(10 * time.Second); taken() < uint64(seq)+2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the delayer took %d packets, want %d", taken(), seq+2)
		}
	}
	d.setTable(tableFrom(s))
	dev.in <- ipPacket(0, 2, 1002)
	var order []uint32
	for range 3 {
		got := <-dev.out
		n := binary.BigEndian.Uint32(got.data[20:])
		order = append(order, n)
		if n == 1000 && got.at.Sub(t0) < 35*time.Millisecond {
			t.Errorf("spiked packet held only %v, want ≥ 35ms", got.at.Sub(t0))
		}
	}
	if order[0] != 1001 || order[1] != 1000 || order[2] != 1002 {
		t.Errorf("order %v, want [1001 1000 1002]", order)
	}
}

// TestDelayerBoundsItsQueue: a pair's FIFO holds maxFlowPackets; the
// rest are dropped and counted.
func TestDelayerBoundsItsQueue(t *testing.T) {
	s := testState([][]float64{{0, 1000}, {1000, 0}})
	dev := newFakeTun()
	d := startDelayer(t, dev, s)
	for k := range maxFlowPackets + 100 {
		dev.in <- ipPacket(0, 1, uint32(k))
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats().Dropped < 100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := d.Stats(); st.Dropped != 100 || st.Queued != maxFlowPackets {
		t.Errorf("stats %+v: want 100 dropped, %d queued", st, maxFlowPackets)
	}
}

// statsAfter returns the delayer's stats once done holds for them, or the
// last ones after 5 s, for the caller to report.
func statsAfter(d *Delayer, done func(DelayerStats) bool) DelayerStats {
	deadline := time.Now().Add(5 * time.Second)
	st := d.Stats()
	for !done(st) && time.Now().Before(deadline) {
		runtime.Gosched()
		st = d.Stats()
	}
	return st
}
