package checker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Report is the outcome of a checked run.
type Report struct {
	Ops          int           `json:"ops"`
	Writes       int           `json:"writes"`
	Acked        int           `json:"acked_writes"`
	Unknown      int           `json:"unknown_writes"`
	Reads        int           `json:"reads"`
	Linearizable bool          `json:"linearizable"`
	CheckResult  string        `json:"check_result"` // Ok, Illegal or Unknown (porcupine timed out)
	Violations   int           `json:"violations"`   // keys whose history is not linearizable
	Lost         []string      `json:"lost_writes,omitempty"`
	CheckTime    time.Duration `json:"check_time"`
	HistoryFile  string        `json:"history_file,omitempty"`
	VisualFile   string        `json:"visualization_file,omitempty"`
}

// porcupineHistory turns ops into porcupine operations; an unknown
// outcome returns after everything else, so it may take effect at any
// point after its call, or not at all.
func porcupineHistory(ops []Op) []porcupine.Operation {
	base := time.Now()
	end := base
	for _, op := range ops {
		base = minTime(base, op.Call)
		end = maxTime(end, op.Return)
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := op.Return
		if ret.IsZero() {
			ret = end.Add(time.Second)
		}
		out = append(out, porcupine.Operation{ClientId: max(op.Client, 0), Input: op.In, Output: op.Out,
			Call: op.Call.Sub(base).Nanoseconds(), Return: ret.Sub(base).Nanoseconds()})
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Check checks ops for linearizability; on a violation it saves the
// history (JSON) and porcupine's visualisation (HTML) in dir.
func Check(ops []Op, dir string, timeout time.Duration) (Report, error) {
	r := Report{Ops: len(ops)}
	for _, op := range ops {
		switch op.In.Kind {
		case Get, GetGrnt:
			r.Reads++
		default:
			r.Writes++
			if op.Out.Result == OK {
				r.Acked++
			} else if op.Out.Result == Unknown {
				r.Unknown++
			}
		}
	}
	r.HistoryFile = filepath.Join(dir, "history.json")
	data, _ := json.MarshalIndent(ops, "", " ")
	if err := os.WriteFile(r.HistoryFile, data, 0o644); err != nil {
		return r, err
	}
	start := time.Now()
	model := Model()
	res, info := porcupine.CheckOperationsVerbose(model, porcupineHistory(ops), timeout)
	r.CheckTime, r.CheckResult = time.Since(start), string(res)
	r.Linearizable = res == porcupine.Ok
	if res == porcupine.Ok {
		return r, nil
	}
	r.Violations = countIllegal(model, ops, timeout)
	r.VisualFile = filepath.Join(dir, "history.html")
	return r, porcupine.VisualizePath(model, info, r.VisualFile)
}

// countIllegal counts the keys whose own history is not linearizable.
func countIllegal(model porcupine.Model, ops []Op, timeout time.Duration) int {
	n := 0
	for _, part := range model.Partition(porcupineHistory(ops)) {
		if porcupine.CheckOperationsTimeout(model, part, timeout) == porcupine.Illegal {
			n++
		}
	}
	return n
}

// FinalReads reads every key from every node linearizably (retrying each
// until ctx ends), adding the reads to the history, and returns the
// acknowledged writes missing from any node: for each key, the highest
// acknowledged version must be there (or a newer one).
func FinalReads(ctx context.Context, h *History, nodes []Node, keys []string, timeout time.Duration) ([]string, error) {
	acked := map[string]uint64{}
	for _, op := range h.Ops() {
		if (op.In.Kind == Publish || op.In.Kind == Update) && op.Out.Result == OK {
			acked[op.In.Key] = max(acked[op.In.Key], op.Out.Version)
		}
	}
	var lost []string
	for ni, n := range nodes {
		c := &Client{ID: 10000 + ni, H: h, Timeout: timeout}
		for _, k := range keys {
			out, err := readUntil(ctx, c, n, k)
			if err != nil {
				return lost, fmt.Errorf("final read of %s at %s: %w", k, n.City, err)
			}
			if want := acked[k]; want > 0 && (out.Result != OK || out.Version < want) {
				lost = append(lost, fmt.Sprintf("%s at %s: acknowledged v%d, reads %s v%d", k, n.City, want, out.Result, out.Version))
			}
		}
	}
	slices.Sort(lost)
	return lost, nil
}

func readUntil(ctx context.Context, c *Client, n Node, key string) (Output, error) {
	for {
		out, err := c.Get(ctx, n, key)
		if err == nil || out.Result == NotFound {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Unavailability is how long writes failed after a fault: the time from
// the fault to the first write acknowledged that was called after it.
type Unavailability struct {
	Fault  string        `json:"fault"`
	At     time.Time     `json:"at"`
	Window time.Duration `json:"window"` // -1: no write acknowledged after it
}

// Windows computes the unavailability window of each fault.
func Windows(ops []Op, faults []FaultAt) []Unavailability {
	var acked []Op
	for _, op := range ops {
		if (op.In.Kind == Publish || op.In.Kind == Update || op.In.Kind == Approve || op.In.Kind == Revoke) && op.Out.Result == OK {
			acked = append(acked, op)
		}
	}
	slices.SortFunc(acked, func(a, b Op) int { return a.Return.Compare(b.Return) })
	var out []Unavailability
	for _, f := range faults {
		u := Unavailability{Fault: f.Name, At: f.At, Window: -1}
		for _, op := range acked {
			if !op.Call.Before(f.At) {
				u.Window = op.Return.Sub(f.At)
				break
			}
		}
		out = append(out, u)
	}
	return out
}

// FaultAt is a fault and when it was injected.
type FaultAt struct {
	Name string
	At   time.Time
}
