package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FaultLogFile is the JSON-lines log of faults in a testnet's dir.
const FaultLogFile = "faults.jsonl"

// Fault is one fault injected or healed.
type Fault struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"` // kill, restart, pause, resume, partition, cut, heal, loss, delay, restart-all
	Cities []string  `json:"cities,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Err    string    `json:"error,omitempty"`
}

// FaultLog records faults in the testnet's faults.jsonl, echoes them to
// Out, and keeps them for the checker's unavailability windows.
type FaultLog struct {
	mu     sync.Mutex
	f      *os.File
	out    io.Writer
	faults []Fault
}

// OpenFaultLog appends to dir/faults.jsonl.
func OpenFaultLog(dir string, out io.Writer) (*FaultLog, error) {
	f, err := os.OpenFile(filepath.Join(dir, FaultLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &FaultLog{f: f, out: out}, nil
}

func (l *FaultLog) record(ft Fault) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, ft)
	data, _ := json.Marshal(ft)
	l.f.Write(append(data, '\n'))
	if l.out != nil {
		line := fmt.Sprintf("%s fault %-11s %s %s", ft.Time.Format("15:04:05.000"), ft.Kind, strings.Join(ft.Cities, ","), ft.Detail)
		if ft.Err != "" {
			line += " error: " + ft.Err
		}
		fmt.Fprintln(l.out, strings.TrimSpace(line))
	}
}

// Faults returns the faults recorded so far by this log.
func (l *FaultLog) Faults() []Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Fault(nil), l.faults...)
}

// Close closes the log file.
func (l *FaultLog) Close() error { return l.f.Close() }

// do runs one fault and records it, with its error if any.
func (t *Testnet) do(kind string, idx []int, detail string, f func() error) error {
	ft := Fault{Time: time.Now(), Kind: kind, Detail: detail}
	for _, i := range idx {
		ft.Cities = append(ft.Cities, t.State.Cities[i].ID)
	}
	err := f()
	if err != nil {
		ft.Err = err.Error()
	}
	t.Faults.record(ft)
	return err
}

// Kill sends SIGKILL to city i.
func (t *Testnet) Kill(i int) error {
	return t.do("kill", []int{i}, "SIGKILL", func() error { return t.Procs.Kill(i) })
}

// Restart starts city i again from its data dir (killing it first if it
// is running).
func (t *Testnet) Restart(i int) error {
	return t.do("restart", []int{i}, "", func() error {
		if t.Procs.Pid(i) != 0 {
			if err := t.Procs.Kill(i); err != nil {
				return err
			}
		}
		return t.Procs.Start(i)
	})
}

// Pause freezes city i (SIGSTOP).
func (t *Testnet) Pause(i int) error {
	return t.do("pause", []int{i}, "SIGSTOP", func() error { return t.Procs.Pause(i) })
}

// Resume lets city i run again (SIGCONT).
func (t *Testnet) Resume(i int) error {
	return t.do("resume", []int{i}, "SIGCONT", func() error { return t.Procs.Resume(i) })
}

// RestartAll stops every city cleanly and starts them all again.
func (t *Testnet) RestartAll() error {
	all := make([]int, len(t.State.Cities))
	for i := range all {
		all[i] = i
	}
	return t.do("restart-all", all, "", func() error {
		for i := range all {
			if err := t.Procs.Stop(i); err != nil {
				return err
			}
		}
		for i := range all {
			if err := t.Procs.Start(i); err != nil {
				return err
			}
		}
		return nil
	})
}

// Partition cuts the cities in group off from all others, both ways.
func (t *Testnet) Partition(group []int) error {
	return t.do("partition", group, "from the rest, both ways", func() error {
		for j := range t.State.Cities {
			if contains(idxNames(group), fmt.Sprint(j)) {
				continue
			}
			for _, i := range group {
				t.State.Cuts = append(t.State.Cuts, Cut{From: i, To: j}, Cut{From: j, To: i})
			}
		}
		return t.applyFaults()
	})
}

func idxNames(idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = fmt.Sprint(i)
	}
	return out
}

// CutOneWay drops packets from city from to city to, but not back.
func (t *Testnet) CutOneWay(from, to int) error {
	return t.do("cut", []int{from, to}, "one way: first → second", func() error {
		t.State.Cuts = append(t.State.Cuts, Cut{From: from, To: to})
		return t.applyFaults()
	})
}

// Loss drops pct percent of city i's packets to other cities.
func (t *Testnet) Loss(i, pct int) error {
	return t.do("loss", []int{i}, fmt.Sprintf("%d%%", pct), func() error {
		if pct < 0 || pct > 100 {
			return fmt.Errorf("loss %d%% is not a percentage", pct)
		}
		if t.State.Loss == nil {
			t.State.Loss = map[int]int{}
		}
		t.State.Loss[i] = pct
		return t.applyFaults()
	})
}

// Delay adds ms of delay to city i's packets to other cities, on top of
// the pair's distance delay (netns mode: the delayer; loopback mode has
// no latency emulation and says so).
func (t *Testnet) Delay(i, ms int) error {
	return t.do("delay", []int{i}, fmt.Sprintf("+%dms", ms), func() error {
		if t.State.DelayerPid == 0 {
			return fmt.Errorf("no latency emulation in %s mode", t.State.Mode)
		}
		if t.State.DelayMs == nil {
			t.State.DelayMs = map[int]int{}
		}
		t.State.DelayMs[i] = ms
		return t.State.reloadDelayer(context.Background())
	})
}

// Heal removes every cut, loss and delay spike (not the base latency or
// --loss), and resumes nothing: paused cities stay paused.
func (t *Testnet) Heal() error {
	return t.do("heal", nil, "network", func() error {
		delayed := len(t.State.DelayMs) > 0
		t.State.Cuts, t.State.Loss, t.State.DelayMs = nil, nil, nil
		if err := t.applyFaults(); err != nil {
			return err
		}
		if delayed {
			return t.State.reloadDelayer(context.Background())
		}
		return nil
	})
}

func (t *Testnet) applyFaults() error {
	if err := t.State.applyRules(context.Background()); err != nil {
		return err
	}
	return t.State.Save()
}
