package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/testnet/bench"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// runTestnetBench measures the running testnet through its client API,
// as a city's program meets it, optionally beside etcd, and writes the
// report and its plots.
func runTestnetBench(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	etcd := fs.String("etcd", "", "a directory holding etcd 3.6's etcd and benchmark binaries: run three etcd members with client TLS beside the testnet and compare")
	out := fs.String("out", bench.ReportDir, "where to write REPORT.md and the plots")
	clients := fs.String("clients", "1,16,64", "client counts, comma-separated")
	parts := fs.String("parts", "load", "what to measure, comma-separated: load (writes and linearizable reads), list (a filtered list after publishing 100,000 datasets), failover (the leader killed 5 times under writes), federated (the family group-by against one DuckDB over every city's file; needs testnet up --rows), stream (every row of the family, rows/s), propagation (a change on the leader to readable on every city), fanout (a family query with 5 owners down)")
	scale := fs.Float64("scale", 1, "multiply the operations of each load (1: 2,000 at 1 client, 10,000 at 16, 20,000 at 64)")
	return func(ctx context.Context, _ []string) error {
		if *scale <= 0 || *scale > 100 {
			return usageError{"--scale: want a factor in (0, 100]"}
		}
		o := bench.Options{Etcd: *etcd, Scratch: filepath.Join(*dir, "bench"), Ops: map[int]int{}, Log: testnetLogger(env)}
		for _, c := range strings.Split(*clients, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 1 || n > 1024 {
				return usageError{fmt.Sprintf("--clients: %q is not a number of clients in 1..1024", c)}
			}
			o.Clients = append(o.Clients, n)
			ops := bench.DefaultOps[n]
			if ops == 0 {
				ops = 300 * n
			}
			o.Ops[n] = max(1, int(float64(ops)**scale))
		}
		if err := os.MkdirAll(o.Scratch, 0o755); err != nil {
			return err
		}
		t, err := chaos.Open(*dir, o.Log, cf.peopleOut(env))
		if err != nil {
			return err
		}
		defer t.Close()
		o.Testnet = t
		r := bench.NewReport(commit())
		for _, part := range strings.Split(*parts, ",") {
			if err := benchPart(ctx, cf.peopleOut(env), o, r, part); err != nil {
				return err
			}
		}
		if err := bench.Write(*out, r); err != nil {
			return err
		}
		report := filepath.Join(*out, "REPORT.md")
		if cf.output == "json" {
			return printValue(env.Stdout, struct {
				Report string `json:"report"`
				Dir    string `json:"dir"`
			}{report, *out})
		}
		fmt.Fprintf(env.Stdout, "report: %s\n", report)
		return nil
	}
}

// benchPart measures one part into r.
func benchPart(ctx context.Context, w io.Writer, o bench.Options, r *bench.Report, part string) error {
	switch part {
	case "load":
		return bench.Run(ctx, o, r)
	case "list":
		return bench.List(ctx, o, r, 100_000)
	case "federated":
		f, err := bench.RunFederated(ctx, o.Testnet, 3)
		if err != nil {
			return err
		}
		r.Federated = f
	case "stream":
		s, err := bench.Stream(ctx, o.Testnet)
		if err != nil {
			return err
		}
		r.Singles = append(r.Singles, s)
	case "failover":
		f, err := bench.RunFailover(ctx, o.Testnet, 5, 3*time.Second)
		if err != nil {
			return err
		}
		r.Failover = f
	case "propagation":
		s, err := bench.Propagation(ctx, o.Testnet, 100)
		if err != nil {
			return err
		}
		s.Command = "yrdnode testnet bench --parts propagation"
		r.Singles = append(r.Singles, s)
	case "fanout":
		f, err := bench.Fanout(ctx, o.Testnet, 5)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "family query over %d owners with %d down (%s): %d parts in %v; missing: %s\n", f.Owners, len(f.Down),
			strings.Join(f.Down, ", "), len(f.Answered), f.Latency.Round(time.Millisecond), strings.Join(f.Missing, "; "))
		r.Singles = append(r.Singles, bench.Single{Name: fmt.Sprintf("family query over %d owners, %d of them down: parts answered", f.Owners, len(f.Down)),
			Command: "yrdnode testnet bench --parts fanout", Value: float64(len(f.Answered)), Unit: "parts",
			Point: &bench.Point{Clients: 1, Ops: 1, Elapsed: f.Latency, P50: f.Latency, P90: f.Latency, P99: f.Latency, Max: f.Latency}})
		r.Notes = append(r.Notes, fmt.Sprintf("Family query with %s stopped: %d of %d parts answered; the trailer named as missing: %s.",
			strings.Join(f.Down, ", "), len(f.Answered), f.Owners, strings.Join(f.Missing, "; ")))
	default:
		return usageError{fmt.Sprintf("--parts: %q is not load, list, failover, federated, stream, propagation or fanout", part)}
	}
	return nil
}

// commit names the source tree of this binary: its VCS revision when
// built with one, else the working directory's git HEAD.
func commit() string {
	if v := buildRevision(); v != "" {
		return v
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return "unknown"
}

// buildRevision is the vcs.revision the Go toolchain stamped, if any.
func buildRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return ""
}
