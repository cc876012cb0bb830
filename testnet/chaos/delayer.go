package chaos

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The delayer is the userspace stand-in for tc netem (which this kernel
// lacks; see DESIGN.md). It reads every city → city IPv4 packet from the
// hub's TUN device, holds it for that pair's one-way delay plus any delay
// spike on the sender, and writes it back, from where the hub routes it to
// the destination city.

// DelayerLogFile and DelayerStatusFile are the delayer's log and its
// status (the delay generation it has loaded, packet counts) in the dir.
const (
	DelayerLogFile    = "delayer.log"
	DelayerStatusFile = "delayer.json"
)

// Queue bounds: at most maxFlowPackets held per (src, dst) pair and
// maxQueuedBytes in all; a packet that does not fit is dropped and
// counted, as a full router queue would.
const (
	maxFlowPackets = 4096
	maxQueuedBytes = 32 << 20
	bufSize        = 2048 // pooled buffer; the TUN's MTU is 1500
)

// delayTableT maps IPv4 addresses to cities and holds each pair's delay.
type delayTableT struct {
	idx   map[[4]byte]int
	delay [][]time.Duration // [src][dst]
}

// tableFrom builds the table from a state: the distance delay of each
// pair plus the spike (State.DelayMs) on the sender.
func tableFrom(s *State) *delayTableT {
	t := &delayTableT{idx: map[[4]byte]int{}}
	for i, c := range s.Cities {
		var a [4]byte
		var ok bool
		if a, ok = parseIPv4(c.IP); ok {
			t.idx[a] = i
		}
		row := make([]time.Duration, len(s.Cities))
		for j := range s.Cities {
			if j != i && j < len(c.DelayMs) {
				row[j] = time.Duration((c.DelayMs[j] + float64(s.DelayMs[i])) * float64(time.Millisecond))
			}
		}
		t.delay = append(t.delay, row)
	}
	return t
}

func parseIPv4(s string) ([4]byte, bool) {
	var a [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return a, false
	}
	for k, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return a, false
		}
		a[k] = byte(v)
	}
	return a, true
}

// pair says which cities an IPv4 packet goes between.
func (t *delayTableT) pair(pkt []byte) (src, dst int, ok bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return 0, 0, false
	}
	src, ok1 := t.idx[[4]byte(pkt[12:16])]
	dst, ok2 := t.idx[[4]byte(pkt[16:20])]
	return src, dst, ok1 && ok2
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

type packet struct {
	buf  *[]byte // pooled, or nil when data was too big for the pool
	data []byte
	due  time.Time
}

func (p *packet) release() {
	if p.buf != nil {
		bufPool.Put(p.buf)
	}
	p.buf, p.data = nil, nil
}

// flow is one (src, dst) pair's FIFO. Its delay is constant between
// table changes, and a packet is never due before the one ahead of it,
// so the FIFO's head is always the pair's next packet out.
type flow struct {
	q       []packet
	lastDue time.Time
	hidx    int // index in the heap, -1 when empty
}

// flowHeap orders the non-empty flows by their head packet's due time.
type flowHeap []*flow

func (h flowHeap) Len() int           { return len(h) }
func (h flowHeap) Less(a, b int) bool { return h[a].q[0].due.Before(h[b].q[0].due) }
func (h flowHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a]; h[a].hidx = a; h[b].hidx = b }
func (h *flowHeap) Push(x any)        { f := x.(*flow); f.hidx = len(*h); *h = append(*h, f) }
func (h *flowHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	f.hidx = -1
	return f
}

// DelayerStats are the delayer's counters.
type DelayerStats struct {
	Packets   uint64 `json:"packets"`      // delayed and written back
	Dropped   uint64 `json:"dropped_full"` // queue full
	Other     uint64 `json:"dropped_other"`
	WriteErrs uint64 `json:"write_errors"`
	Queued    int    `json:"queued"`
	MaxQueued int    `json:"max_queued"`
}

// Delayer holds packets read from dev for their pair's delay and writes
// them back to dev.
type Delayer struct {
	dev io.ReadWriteCloser
	log *slog.Logger

	tab atomic.Pointer[delayTableT]

	mu        sync.Mutex
	flows     map[[2]int]*flow
	h         flowHeap
	bytes     int
	queued    int
	maxQueued int
	wake      chan struct{}

	packets, dropped, other, writeErrs atomic.Uint64
}

func newDelayer(dev io.ReadWriteCloser, log *slog.Logger) *Delayer {
	return &Delayer{dev: dev, log: log, flows: map[[2]int]*flow{}, wake: make(chan struct{}, 1)}
}

// setTable changes the delays; packets already held keep their due time.
func (d *Delayer) setTable(t *delayTableT) { d.tab.Store(t) }

// Stats returns the counters.
func (d *Delayer) Stats() DelayerStats {
	d.mu.Lock()
	q, mq := d.queued, d.maxQueued
	d.mu.Unlock()
	return DelayerStats{Packets: d.packets.Load(), Dropped: d.dropped.Load(), Other: d.other.Load(),
		WriteErrs: d.writeErrs.Load(), Queued: q, MaxQueued: mq}
}

// Run moves packets until ctx ends or dev fails; it closes dev.
func (d *Delayer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); <-ctx.Done(); d.dev.Close() }() // owned here: unblocks readLoop
	go func() { defer wg.Done(); d.writeLoop(ctx) }()            // owned here: ends with ctx
	err := d.readLoop()
	stopped := ctx.Err() != nil
	cancel()
	wg.Wait()
	d.mu.Lock()
	for _, f := range d.flows {
		for k := range f.q {
			f.q[k].release()
		}
	}
	d.flows, d.h, d.queued, d.bytes = map[[2]int]*flow{}, nil, 0, 0
	d.mu.Unlock()
	if stopped {
		return nil
	}
	return err
}

func (d *Delayer) readLoop() error {
	scratch := make([]byte, 1<<16)
	for {
		n, err := d.dev.Read(scratch)
		if err != nil {
			return err
		}
		now := time.Now()
		src, dst, ok := d.tab.Load().pair(scratch[:n])
		if !ok {
			d.other.Add(1) // not city → city IPv4: nothing routes it here
			continue
		}
		p := packet{}
		if n <= bufSize {
			p.buf = bufPool.Get().(*[]byte)
			p.data = (*p.buf)[:n]
		} else {
			p.data = make([]byte, n)
		}
		copy(p.data, scratch[:n])
		d.enqueue(src, dst, p, now.Add(d.tab.Load().delay[src][dst]))
	}
}

// enqueue holds p until due (or after the pair's previous packet, to keep
// the pair in order when its delay went down), or drops it if the queue
// is full.
func (d *Delayer) enqueue(src, dst int, p packet, due time.Time) {
	d.mu.Lock()
	key := [2]int{src, dst}
	f := d.flows[key]
	if f == nil {
		f = &flow{hidx: -1}
		d.flows[key] = f
	}
	if len(f.q) >= maxFlowPackets || d.bytes+len(p.data) > maxQueuedBytes {
		d.mu.Unlock()
		p.release()
		d.dropped.Add(1)
		return
	}
	if due.Before(f.lastDue) {
		due = f.lastDue
	}
	p.due, f.lastDue = due, due
	f.q = append(f.q, p)
	d.bytes += len(p.data)
	d.queued++
	d.maxQueued = max(d.maxQueued, d.queued)
	first := f.hidx < 0
	if first {
		heap.Push(&d.h, f)
	}
	d.mu.Unlock()
	if first {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// due pops up to len(out) packets that are due at now; next is the due
// time of the next packet held (zero if none).
func (d *Delayer) due(now time.Time, out []packet) (n int, next time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n < len(out) && len(d.h) > 0 {
		f := d.h[0]
		if f.q[0].due.After(now) {
			break
		}
		out[n] = f.q[0]
		n++
		f.q[0] = packet{}
		f.q = f.q[1:]
		d.bytes -= len(out[n-1].data)
		d.queued--
		if len(f.q) == 0 {
			heap.Pop(&d.h)
			f.q = nil // let the backing array go
		} else {
			heap.Fix(&d.h, 0)
		}
	}
	if len(d.h) > 0 {
		next = d.h[0].q[0].due
	}
	return n, next
}

func (d *Delayer) writeLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	batch := make([]packet, 64)
	for {
		n, next := d.due(time.Now(), batch)
		for k := range n {
			if _, err := d.dev.Write(batch[k].data); err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				d.writeErrs.Add(1)
			} else {
				d.packets.Add(1)
			}
			batch[k].release()
		}
		if n == len(batch) {
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// DelayerStatus is what the delayer reports in delayer.json.
type DelayerStatus struct {
	Pid     int       `json:"pid"`
	Gen     uint64    `json:"gen"`
	Updated time.Time `json:"updated"`
	DelayerStats
}

// ReadDelayerStatus reads the delayer's status file in dir.
func ReadDelayerStatus(dir string) (DelayerStatus, error) {
	var st DelayerStatus
	data, err := os.ReadFile(filepath.Join(dir, DelayerStatusFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}

func writeDelayerStatus(dir string, st DelayerStatus) error {
	data, _ := json.Marshal(st)
	tmp := filepath.Join(dir, DelayerStatusFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, DelayerStatusFile))
}

// RunDelayer is `yrdnode testnet delayer`: it attaches to the hub's TUN
// device of the testnet in dir and delays packets until SIGTERM or
// SIGINT, or until its testnet is gone (state file, hub namespace) or
// names another delayer. SIGHUP reloads the delays from the state file.
func RunDelayer(ctx context.Context, dir string, log *slog.Logger) error {
	s, err := Load(dir)
	if err != nil {
		return err
	}
	if s.Hub == "" {
		return fmt.Errorf("the testnet in %s is in %s mode: no hub to delay packets in", dir, s.Mode)
	}
	dev, err := openTun(nsPath(s.Hub), TunName)
	if err != nil {
		return err
	}
	d := newDelayer(dev, log)
	d.setTable(tableFrom(s))
	gen := s.DelayGen
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	me := os.Getpid()
	status := func() {
		if err := writeDelayerStatus(dir, DelayerStatus{Pid: me, Gen: gen, Updated: time.Now(), DelayerStats: d.Stats()}); err != nil {
			log.Warn("writing status", "err", err)
		}
	}
	status()
	log.Info("delaying", "hub", s.Hub, "tun", TunName, "cities", len(s.Cities), "gen", gen)
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }() // owned here: waited for below
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			status()
			log.Info("stopped", "stats", fmt.Sprintf("%+v", d.Stats()), "err", err)
			return err
		case <-hup:
			ns, err := Load(dir)
			if err != nil {
				log.Warn("reload", "err", err)
				continue
			}
			d.setTable(tableFrom(ns))
			gen = ns.DelayGen
			log.Info("reloaded", "gen", gen, "spikes", fmt.Sprint(ns.DelayMs))
			status()
		case <-tick.C:
			status()
			ns, err := Load(dir)
			_, nserr := os.Stat(nsPath(s.Hub))
			if err != nil || nserr != nil || (ns.DelayerPid != 0 && ns.DelayerPid != me) || ns.Hub != s.Hub {
				log.Info("testnet gone or handed to another delayer: stopping")
				stop()
			}
		}
	}
}

// startDelayer starts `BINARY testnet delayer --dir DIR` in its own
// session, logging to delayer.log, records its pid and waits until it has
// attached to the TUN device.
func (s *State) startDelayer(ctx context.Context, binary string) error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, DelayerLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	os.Remove(filepath.Join(s.Dir, DelayerStatusFile))
	cmd := exec.Command(binary, "testnet", "delayer", "--dir", s.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return err
	}
	go cmd.Wait() // owned by the process: reaps it when it exits (if this one still runs)
	s.DelayerPid = cmd.Process.Pid
	if err := s.Save(); err != nil {
		return err
	}
	return s.waitDelayer(ctx, 10*time.Second)
}

// waitDelayer waits until the delayer reports the state's delay
// generation.
func (s *State) waitDelayer(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := ReadDelayerStatus(s.Dir)
		if err == nil && st.Pid == s.DelayerPid && st.Gen >= s.DelayGen {
			return nil
		}
		if !isDelayer(s.DelayerPid) {
			return fmt.Errorf("the delayer (pid %d) is not running: see %s", s.DelayerPid, filepath.Join(s.Dir, DelayerLogFile))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the delayer (pid %d) did not load delay generation %d in %v: see %s", s.DelayerPid, s.DelayGen, timeout, filepath.Join(s.Dir, DelayerLogFile))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reloadDelayer saves the state with a new delay generation, signals the
// delayer and waits until it has loaded it.
func (s *State) reloadDelayer(ctx context.Context) error {
	if s.DelayerPid == 0 {
		return fmt.Errorf("no latency emulation in %s mode", s.Mode)
	}
	s.DelayGen++
	if err := s.Save(); err != nil {
		return err
	}
	if !isDelayer(s.DelayerPid) {
		return fmt.Errorf("the delayer (pid %d) is not running: see %s", s.DelayerPid, filepath.Join(s.Dir, DelayerLogFile))
	}
	if err := syscall.Kill(s.DelayerPid, syscall.SIGHUP); err != nil {
		return err
	}
	return s.waitDelayer(ctx, 5*time.Second)
}

// procArgs is a live (not zombie) process's command line, nil if none.
func procArgs(pid int) []string {
	if pid <= 0 {
		return nil
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	if k := strings.LastIndexByte(string(stat), ')'); k < 0 || k+2 >= len(stat) || stat[k+2] == 'Z' {
		return nil
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// isDelayerArgs says whether a command line is `... testnet delayer ...`.
func isDelayerArgs(args []string) bool {
	for k := 0; k+1 < len(args); k++ {
		if args[k] == "testnet" && args[k+1] == "delayer" {
			return true
		}
	}
	return false
}

// isDelayer says whether pid is a live delayer (not a reused pid).
func isDelayer(pid int) bool { return isDelayerArgs(procArgs(pid)) }

// stopDelayer ends the delayer pid: SIGTERM, then SIGKILL after 5s.
func stopDelayer(pid int, log *slog.Logger) error {
	if !isDelayer(pid) {
		return nil
	}
	log.Info("stopping delayer", "pid", pid)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		for range 100 {
			if !isDelayer(pid) {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("the delayer (pid %d) does not exit", pid)
}

// CPUTime is a process's user plus system CPU time (from /proc/PID/stat,
// in clock ticks of 10 ms).
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	k := strings.LastIndexByte(s, ')')
	if k < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[k+1:]) // f[0] is the state (field 3); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
