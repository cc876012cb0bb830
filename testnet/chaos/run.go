package chaos

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet/checker"
)

// Workload is the checker's workload during a chaos run.
type Workload struct {
	Clients     int
	KeysPerCity int
	MaxOps      int // per client
	OpTimeout   time.Duration
}

// Result is a checked chaos run.
type Result struct {
	Report  checker.Report           `json:"report"`
	Faults  []Fault                  `json:"faults"`
	Windows []checker.Unavailability `json:"unavailability"`
}

// Nodes makes API keys for the checker's clients at every city.
func (t *Testnet) Nodes() ([]checker.Node, error) {
	var out []checker.Node
	for i, c := range t.State.Cities {
		n := checker.Node{City: c.ID}
		var err error
		if n.Publisher, err = t.Procs.ConnAs(i, checker.Org(c.ID), yrdv1.Role_ROLE_PUBLISHER); err != nil {
			return nil, fmt.Errorf("%s: %w", c.ID, err)
		}
		if n.CDO, err = t.Procs.ConnAs(i, checker.Org(c.ID), yrdv1.Role_ROLE_CDO); err != nil {
			return nil, err
		}
		if n.Analyst, err = t.Procs.ConnAs(i, c.ID+"-analytics", yrdv1.Role_ROLE_ANALYST); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// RunChecked runs the workload and the fault schedule side by side, then
// recovers the testnet, reads every key from every city and checks the
// history. Violations and lost writes are in the result, not errors.
func (t *Testnet) RunChecked(ctx context.Context, s Schedule, l Workload) (Result, error) {
	nodes, err := t.Nodes()
	if err != nil {
		return Result{}, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := checker.Setup(setupCtx, nodes, l.OpTimeout); err != nil {
		return Result{}, err
	}
	h := &checker.History{}
	w := &checker.Workload{Nodes: nodes, Clients: l.Clients, KeysPerCity: l.KeysPerCity, MaxOps: l.MaxOps,
		Duration: s.Duration + 2*s.Gap, OpTimeout: l.OpTimeout, Seed: s.Seed, Log: t.log}
	first := len(t.Faults.Faults())
	var wg sync.WaitGroup
	var schedErr error
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(wctx, h) }() // owned here: bounded by MaxOps, Duration and the schedule
	go func() {
		defer wg.Done()
		schedErr = t.RunSchedule(ctx, s)
		sleep(ctx, s.Gap) // a little load on the healed testnet, then stop it
		stop()
	}()
	wg.Wait()
	t.log.Info("workload done", "ops", len(h.Ops()))
	if schedErr != nil {
		return Result{}, schedErr
	}
	return t.finish(ctx, h, w, nodes, first, s)
}

func (t *Testnet) finish(ctx context.Context, h *checker.History, w *checker.Workload, nodes []checker.Node, first int, s Schedule) (Result, error) {
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := t.WaitAll(wctx); err != nil {
		return Result{}, err
	}
	var keys []string
	for _, n := range nodes {
		keys = append(keys, w.Keys(n.City)...)
	}
	lost, err := checker.FinalReads(wctx, h, nodes, keys, 5*time.Second)
	if err != nil {
		return Result{}, err
	}
	t.log.Info("final reads done; checking", "ops", len(h.Ops()), "unknown", countUnknown(h.Ops()))
	rep, err := checker.Check(h.Ops(), t.State.Dir, s.CheckTimeout)
	rep.Lost = lost
	res := Result{Report: rep, Faults: t.Faults.Faults()[first:]}
	var at []checker.FaultAt
	for _, f := range res.Faults {
		if f.Kind != "heal" && f.Kind != "resume" && f.Kind != "restart" {
			at = append(at, checker.FaultAt{Name: f.Kind + " " + fmt.Sprint(f.Cities), At: f.Time})
		}
	}
	res.Windows = checker.Windows(h.Ops(), at)
	return res, err
}

// Print writes a result for people.
func (r Result) Print(w io.Writer) {
	rep := r.Report
	fmt.Fprintf(w, "operations: %d (%d writes: %d acknowledged, %d unknown; %d reads)\n", rep.Ops, rep.Writes, rep.Acked, rep.Unknown, rep.Reads)
	fmt.Fprintf(w, "faults injected: %d\n", len(r.Windows))
	fmt.Fprintf(w, "linearizable: %v (porcupine %s in %v), violations: %d\n", rep.Linearizable, rep.CheckResult, rep.CheckTime.Round(time.Millisecond), rep.Violations)
	fmt.Fprintf(w, "acknowledged writes lost: %d\n", len(rep.Lost))
	for _, l := range rep.Lost {
		fmt.Fprintf(w, "  lost: %s\n", l)
	}
	if rep.VisualFile != "" {
		fmt.Fprintf(w, "history: %s\nvisualisation: %s\n", rep.HistoryFile, rep.VisualFile)
	}
	fmt.Fprintln(w, "unavailability (fault → first acknowledged write after it):")
	for _, u := range r.Windows {
		win := "no write acknowledged after it"
		if u.Window >= 0 {
			win = u.Window.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "  %s  %-32s %s\n", u.At.Format("15:04:05.000"), u.Fault, win)
	}
}

func countUnknown(ops []checker.Op) int {
	n := 0
	for _, op := range ops {
		if op.Out.Result == checker.Unknown {
			n++
		}
	}
	return n
}
