package chaos

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// Options describe a testnet to bring up.
type Options struct {
	Dir    string // everything goes here; the state file too
	Binary string // the yrdnode binary
	Cities []string
	// Voters is how many of the first Cities are voters; the rest are
	// non-voters. 0 means all.
	Voters int
	Mode   Mode
	// Loss is the packet loss (percent) on every inter-city link.
	Loss int
	// Env is added to every node's environment.
	Env []string
	// Detach leaves the processes running when the caller exits.
	Detach bool
	Log    *slog.Logger
	// Out, if set, gets every fault as a line of text as it happens.
	Out io.Writer
	// SampleRows, if positive, gives every city synthetic files of that
	// many rows for the datasets it holds in the delta demo, mapped in its
	// yrdnode.toml and published to the catalog.
	SampleRows int
}

// Testnet is a running process testnet with its network.
type Testnet struct {
	State  *State
	Procs  *procnet.ProcCluster
	Faults *FaultLog
	log    *slog.Logger
}

// DefaultCities are the five voters of a default testnet. There are two
// Suzhous and two Taizhous in the delta: cities go by id.
var DefaultCities = []string{"shanghai", "hangzhou", "nanjing", "hefei", "suzhou-js"}

// AllCities is the default five followed by every other delta city.
func AllCities() []string {
	out := append([]string(nil), DefaultCities...)
	for _, id := range cities.IDs() {
		if !contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newID picks a testnet id (4 hex digits) whose names are all free.
func newID(mode Mode) (string, uint16, error) {
	for range 20 {
		var b [2]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if mode == ModeLoopback {
			return id, binary.BigEndian.Uint16(b[:]), nil
		}
		if exec.Command("ip", "link", "show", Prefix+id+"h").Run() != nil && exec.Command("ip", "netns", "pids", Prefix+"-"+id+"-hub").Run() != nil {
			return id, binary.BigEndian.Uint16(b[:]), nil
		}
	}
	return "", 0, fmt.Errorf("no free testnet id")
}

// Up builds the network and starts the cities. On error the state file
// still lists whatever was made: Down removes it.
func Up(ctx context.Context, o Options) (*Testnet, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	id, n, err := newID(o.Mode)
	if err != nil {
		return nil, err
	}
	s := &State{ID: id, Mode: o.Mode, Dir: o.Dir, Binary: o.Binary, BaseLoss: o.Loss}
	for i, city := range o.Cities {
		s.Cities = append(s.Cities, City{ID: city, Voter: o.Voters <= 0 || i < o.Voters, DataDir: filepath.Join(o.Dir, city)})
	}
	s.addressing(n)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := s.Save(); err != nil {
		return nil, err
	}
	if err := s.buildNetwork(ctx); err != nil {
		return nil, err
	}
	if s.Mode == ModeNetns {
		if err := s.startDelayer(ctx, o.Binary); err != nil {
			return nil, err
		}
	}
	t := &Testnet{State: s, log: o.Log}
	if t.Faults, err = OpenFaultLog(o.Dir, o.Out); err != nil {
		return nil, err
	}
	po := t.procOptions(o.Env, o.Detach)
	po.Voters = o.Voters
	if o.SampleRows > 0 {
		po.Prepare = func(i int, dir string) error { return writeSampleData(o.Cities[i], dir, o.SampleRows) }
	}
	t.Procs, err = procnet.StartProcsOpts(ctx, o.Binary, o.Dir, po)
	if err != nil {
		t.Faults.Close()
		return nil, err
	}
	if err := s.Save(); err != nil {
		return nil, err
	}
	if o.SampleRows > 0 {
		if err := publishSampleData(ctx, t.Procs); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

func checkOptions(o Options) error {
	if o.Dir == "" || o.Binary == "" || o.Log == nil {
		return fmt.Errorf("chaos: Dir, Binary and Log are required")
	}
	if len(o.Cities) < 1 {
		return fmt.Errorf("chaos: no cities")
	}
	for _, c := range o.Cities {
		if _, ok := cities.Lookup(c); !ok {
			return fmt.Errorf("%q is not a delta city id (known: %s)", c, strings.Join(cities.IDs(), ", "))
		}
	}
	if _, err := os.Stat(Path(o.Dir)); err == nil {
		return fmt.Errorf("%s already holds a testnet; run 'yrdnode testnet down --dir %s' first", o.Dir, o.Dir)
	}
	if o.Mode != ModeNetns && o.Mode != ModeLoopback {
		return fmt.Errorf("mode %q is not netns or loopback", o.Mode)
	}
	if o.Loss < 0 || o.Loss > 100 {
		return fmt.Errorf("loss %d%% is not a percentage", o.Loss)
	}
	return nil
}

// buildNetwork makes the namespaces and the routing through the
// delayer's TUN device (netns mode), the pair delays the delayer will
// load, and the (empty) table of fault rules.
func (s *State) buildNetwork(ctx context.Context) error {
	if s.Mode == ModeNetns {
		if err := s.setupNetns(ctx); err != nil {
			return err
		}
		s.delays()
	}
	if err := s.applyRules(ctx); err != nil {
		return err
	}
	return s.Save()
}

// Latency says how inter-city latency is emulated, for people.
func (s *State) Latency() string {
	if s.Mode != ModeNetns {
		return "none (loopback mode: no latency emulation, no delay spikes)"
	}
	lo, hi := 0.0, 0.0
	for i, c := range s.Cities {
		for j, d := range c.DelayMs {
			if i != j && (lo == 0 || d < lo) {
				lo = d
			}
			hi = max(hi, d)
		}
	}
	out := fmt.Sprintf("userspace delayer on %s in %s, one-way %.1f–%.1f ms by distance", TunName, s.Hub, lo, hi)
	if s.DelayerPid == 0 || !isDelayer(s.DelayerPid) {
		return out + "; the delayer is NOT running (inter-city traffic is cut)"
	}
	out += fmt.Sprintf(" (pid %d", s.DelayerPid)
	if st, err := ReadDelayerStatus(s.Dir); err == nil {
		out += fmt.Sprintf(", %d packets delayed, %d dropped queue-full", st.Packets, st.Dropped)
	}
	for i, ms := range s.DelayMs {
		out += fmt.Sprintf(", spike +%d ms on %s", ms, s.Cities[i].ID)
	}
	return out + ")"
}

// procOptions are the process-runner options for this testnet's cities.
func (t *Testnet) procOptions(env []string, detach bool) procnet.ProcOptions {
	s := t.State
	po := procnet.ProcOptions{Env: env, Detach: detach}
	for _, c := range s.Cities {
		po.Cities, po.Hosts = append(po.Cities, c.ID), append(po.Hosts, c.IP)
	}
	if s.Mode == ModeNetns {
		po.Wrap = func(i int, argv []string) []string {
			return append([]string{"ip", "netns", "exec", s.Cities[i].NS}, argv...)
		}
	}
	po.Started = func(i, pid int) {
		s.Cities[i].Pid = pid
		if err := s.Save(); err != nil {
			t.log.Error("saving state", "err", err)
		}
	}
	return po
}

// Open attaches to the testnet in dir, as `up` left it.
func Open(dir string, log *slog.Logger, out io.Writer) (*Testnet, error) {
	s, err := Load(dir)
	if err != nil {
		return nil, err
	}
	t := &Testnet{State: s, log: log}
	if t.Faults, err = OpenFaultLog(dir, out); err != nil {
		return nil, err
	}
	pids := make([]int, len(s.Cities))
	for i, c := range s.Cities {
		pids[i] = c.Pid
	}
	t.Procs = procnet.AttachProcs(s.Binary, dir, t.procOptions(nil, true), pids)
	return t, nil
}

// Close closes the fault log and client connections; processes go on.
func (t *Testnet) Close() {
	t.Procs.Release()
	t.Faults.Close()
}

// Down stops every city and removes everything the state file in dir
// lists. It works from the state file alone and can be run again.
func Down(ctx context.Context, dir string, log *slog.Logger) error {
	s, err := Load(dir)
	if err != nil {
		return err
	}
	pids := make([]int, len(s.Cities))
	for i, c := range s.Cities {
		pids[i] = c.Pid
	}
	procs := procnet.AttachProcs(s.Binary, dir, procnet.ProcOptions{Cities: cityIDs(s), Hosts: cityIPs(s)}, pids)
	for i := range s.Cities {
		if procs.Pid(i) != 0 {
			log.Info("stopping", "city", s.Cities[i].ID, "pid", procs.Pid(i))
		}
		procs.Kill(i)
		s.Cities[i].Pid = 0
	}
	if err := stopDelayer(s.DelayerPid, log); err != nil {
		return err
	}
	s.DelayerPid = 0
	if err := s.teardown(ctx, log); err != nil {
		return err
	}
	s.Cuts, s.Loss, s.DelayMs = nil, nil, nil
	return s.Save()
}

func cityIDs(s *State) []string {
	var out []string
	for _, c := range s.Cities {
		out = append(out, c.ID)
	}
	return out
}

func cityIPs(s *State) []string {
	var out []string
	for _, c := range s.Cities {
		out = append(out, c.IP)
	}
	return out
}

// Sweep stops every delayer and removes every namespace, link and
// nftables table whose name starts with the prefix: leftovers of
// testnets whose state is lost. It also removes those of testnets
// running now.
func Sweep(ctx context.Context, log *slog.Logger) error {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if pid, err := strconv.Atoi(filepath.Base(p)); err == nil && isDelayer(pid) && pid != os.Getpid() {
			stopDelayer(pid, log)
		}
	}
	out, _ := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], Prefix+"-") {
			log.Info("sweeping namespace", "netns", f[0])
			run(ctx, "ip", "netns", "del", f[0])
		}
	}
	out, _ = exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], Prefix) {
			name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
			log.Info("sweeping link", "link", name)
			run(ctx, "ip", "link", "del", name)
		}
	}
	out, _ = exec.CommandContext(ctx, "nft", "list", "tables").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], Prefix) {
			log.Info("sweeping nftables table", "table", f[1]+" "+f[2])
			run(ctx, "nft", "delete", "table", f[1], f[2])
		}
	}
	return nil
}

// paused says whether pid is stopped (SIGSTOP).
func paused(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	k := strings.LastIndexByte(s, ')')
	return k >= 0 && k+2 < len(s) && s[k+2] == 'T'
}

// CityStatus is one city's line of `testnet status`.
type CityStatus struct {
	City, Suffrage, Role, Process, API, Netns string
	Applied                                   uint64
	Lag                                       int64 // leader's commit index minus applied; -1 unknown
}

// CityStatus asks every city for its raft status; lag is against the
// leader's commit index.
func (t *Testnet) CityStatus(ctx context.Context) []CityStatus {
	var out []CityStatus
	var leaderCommit uint64
	for i, c := range t.State.Cities {
		cs := CityStatus{City: c.ID, Suffrage: "nonvoter", Role: "-", API: c.API, Netns: c.NS, Lag: -1, Process: "stopped"}
		if c.Voter {
			cs.Suffrage = "voter"
		}
		if pid := t.Procs.Pid(i); pid != 0 {
			cs.Process = fmt.Sprintf("%d alive", pid)
			if paused(pid) {
				cs.Process = fmt.Sprintf("%d paused", pid)
			}
			if st, err := t.Procs.Status(ctx, i); err == nil {
				cs.Role, cs.Applied = st.GetRaftState(), st.GetAppliedIndex()
				if st.GetRaftState() == "Leader" {
					leaderCommit = st.GetCommitIndex()
				}
			} else {
				cs.Role = "unreachable"
			}
		}
		out = append(out, cs)
	}
	for i := range out {
		if leaderCommit > 0 && out[i].Role != "-" && out[i].Role != "unreachable" {
			out[i].Lag = int64(leaderCommit) - int64(out[i].Applied)
		}
	}
	return out
}
