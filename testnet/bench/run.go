package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// Options of a benchmark run.
type Options struct {
	// Testnet is the running testnet to measure; its voters take the load.
	Testnet *chaos.Testnet
	// Etcd is a directory holding etcd 3.6's `etcd` and `benchmark`; if
	// set, three etcd members run the same loads in the same window.
	Etcd string
	// Scratch holds etcd's data and TLS files.
	Scratch string
	// Clients are the numbers of concurrent clients of each load.
	Clients []int
	// Ops is the number of operations per load at each client count.
	Ops map[int]int
	Log *slog.Logger
}

// DefaultClients and DefaultOps are the loads the issue asks for.
var (
	DefaultClients = []int{1, 16, 64}
	DefaultOps     = map[int]int{1: 2000, 16: 10000, 64: 20000}
)

// loadTimeout bounds each load.
const loadTimeout = 3 * time.Minute

// NewReport is an empty report on this machine, of the tree commit.
func NewReport(commit string) *Report {
	return &Report{Machine: machine(), Commit: commit, Date: time.Now()}
}

// Run measures catalog writes and linearizable reads at each client
// count, yrdnode and etcd taking turns to go first, into r.
func Run(ctx context.Context, o Options, r *Report) error {
	y, err := newYrdLoads(ctx, o.Testnet, maxOf(o.Clients))
	if err != nil {
		return err
	}
	var e *Etcd
	if o.Etcd != "" {
		if e, err = StartEtcd(ctx, o.Etcd, o.Scratch); err != nil {
			return err
		}
		defer e.Stop()
	}
	rec := &recorder{series: map[string]*Series{}, log: o.Log}
	turn := 0
	for _, kind := range []string{"write", "read"} {
		for _, c := range o.Clients {
			// Each system goes first in every other load, so neither
			// always meets the other's leftovers (compactions, write-back).
			if err := y.pair(ctx, e, rec, kind, c, o.Ops[c], turn%2 == 1); err != nil {
				return err
			}
			turn++
		}
	}
	r.Notes = append(r.Notes, notes(o, y)...)
	for _, k := range []string{"yrdnode write", "etcd write", "yrdnode read", "etcd read"} {
		if s := rec.series[k]; s != nil {
			r.Series = append(r.Series, *s)
		}
	}
	return nil
}

// recorder collects the measured points by system and kind.
type recorder struct {
	series map[string]*Series
	log    *slog.Logger
}

func (r *recorder) add(system, kind, command string, p Point) {
	k := system + " " + kind
	if r.series[k] == nil {
		r.series[k] = &Series{System: system, Kind: kind}
	}
	// The largest load's command: the others differ only in counts.
	r.series[k].Command = command
	r.series[k].Points = append(r.series[k].Points, p)
	r.log.Info("measured", "system", system, "kind", kind, "clients", p.Clients, "ops/s", int(p.OpsPerSec()), "p50", p.P50, "p99", p.P99)
}

// pair runs one load of kind on yrdnode and, given e, the same on etcd,
// etcd first if etcdFirst. Before each, every dirty page is written out
// (sync), so no load pays for the write-back of the one before it.
func (y *yrdLoads) pair(ctx context.Context, e *Etcd, rec *recorder, kind string, clients, n int, etcdFirst bool) error {
	ours := func() error {
		p, err := y.run(ctx, kind, clients, n)
		if err != nil {
			return fmt.Errorf("yrdnode %s, %d clients: %w", kind, clients, err)
		}
		rec.add("yrdnode", kind, fmt.Sprintf("yrdnode testnet bench (%s: %d %s by %d clients on %d connections to %d voters, TLS, API keys)",
			kind, n, y.what(kind), clients, min(clients, len(y.conns)), y.voters), p)
		return nil
	}
	theirs := func() error {
		p, cmd, err := y.etcd(ctx, e, kind, clients, n)
		if err != nil {
			return err
		}
		rec.add("etcd", kind, cmd, p)
		return nil
	}
	order := []func() error{ours}
	switch {
	case e != nil && etcdFirst:
		order = []func() error{theirs, ours}
	case e != nil:
		order = append(order, theirs)
	}
	for _, load := range order {
		syscall.Sync()
		if err := load(); err != nil {
			return err
		}
	}
	return nil
}

// List publishes fill more datasets (not reported; the catalog then has
// at least fill) and measures a filtered list at each client count: one
// city's GENERAL datasets, a page of 100, linearizable, as the store's
// in-process benchmark lists.
func List(ctx context.Context, o Options, r *Report, fill int) error {
	y, err := newYrdLoads(ctx, o.Testnet, maxOf(o.Clients))
	if err != nil {
		return err
	}
	fillCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := Load(fillCtx, 64, fill, y.publish(64)); err != nil {
		return fmt.Errorf("bench: filling the catalog with %d datasets: %w", fill, err)
	}
	s := Series{System: "yrdnode", Kind: "filtered list",
		Command: fmt.Sprintf("yrdnode testnet bench --parts list (a catalog of at least %d datasets; one city's GENERAL datasets, page of 100, linearizable)", fill)}
	for _, c := range o.Clients {
		lctx, cancel := context.WithTimeout(ctx, loadTimeout)
		p, err := Load(lctx, c, o.Ops[c], func(ctx context.Context, k, _ int) error {
			req := &yrdv1.ListDatasetsRequest{OwnerCity: y.cities[k%len(y.conns)], Level: yrdv1.ClassificationLevel_LEVEL_GENERAL, PageSize: 100}
			resp, err := yrdv1grpc.NewCatalogServiceClient(y.conns[k%len(y.conns)]).ListDatasets(ctx, req)
			if err == nil && len(resp.GetDatasets()) != 100 {
				err = fmt.Errorf("a page of %d datasets, want 100", len(resp.GetDatasets()))
			}
			return err
		})
		cancel()
		if err != nil {
			return fmt.Errorf("bench: list, %d clients: %w", c, err)
		}
		s.Points = append(s.Points, p)
		o.Log.Info("measured", "system", "yrdnode", "kind", s.Kind, "clients", c, "ops/s", int(p.OpsPerSec()), "p50", p.P50, "p99", p.P99)
	}
	r.Series = append(r.Series, s)
	return nil
}

// benchDataset is what the loads publish: the sample elderly dataset, of
// city's bench organisation, outside its family, so that family queries
// never reach the datasets a benchmark wrote.
func benchDataset(city string) *yrdv1.Dataset {
	d := sample.Datasets()[0]
	d.OwnerCity, d.OwnerOrg, d.StandardSchemaId = city, city+"-bench", ""
	return d
}

// notes say how the figures were taken.
func notes(o Options, y *yrdLoads) []string {
	var counts []string
	for _, c := range o.Clients {
		counts = append(counts, fmt.Sprintf("%d at %d clients", o.Ops[c], c))
	}
	out := []string{fmt.Sprintf("Real processes on this machine: the testnet's %d voters (yrdnode processes, loopback addresses) and, "+
		"when compared, three etcd members with client and peer TLS and client certificates required. Each load ran once per "+
		"system, client count by client count, in the same window, the two systems taking turns to go first; before each load "+
		"the page cache's dirty pages were written out (sync), so no load paid for the one before. Operations per load: %s; the commands "+
		"above are those of the largest load. yrdnode clients are gRPC connections with TLS verified by the city CA and API "+
		"keys (at most 16 connections, as etcd's tool uses at most 16), spread over the voters; writes publish a new dataset "+
		"each (%d bytes), reads are linearizable GetDataset calls. etcd writes put values of the same size under new keys; "+
		"reads are linearizable ranges of one such key.", y.voters, strings.Join(counts, ", "), proto.Size(y.template))}
	if o.Etcd == "" {
		out = append(out, "No etcd build was given (--etcd), so there are no etcd figures.")
	}
	return out
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// machine describes this machine for the report.
func machine() string {
	cpu := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d cores (%s)%s, Linux %s, %s", runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

// yrdLoads drive the testnet's voters through their client API.
type yrdLoads struct {
	conns    []*grpc.ClientConn // publisher connections, spread over the voters
	template *yrdv1.Dataset
	orgs     []string // the publishing org of each connection
	cities   []string
	voters   int
	written  []string // ids of datasets the writes published
	run0     int64
}

// newYrdLoads makes up to n connections (at most 16, as etcd's tool uses
// at most 16), each with a publisher key of its own, round-robin over the
// voters.
func newYrdLoads(ctx context.Context, t *chaos.Testnet, n int) (*yrdLoads, error) {
	var voters []int
	for i, c := range t.State.Cities {
		if c.Voter {
			voters = append(voters, i)
		}
	}
	y := &yrdLoads{template: benchDataset(""), run0: time.Now().UnixNano(), voters: len(voters)}
	for k := range min(n, 16) {
		i := voters[k%len(voters)]
		city := t.State.Cities[i].ID
		org := city + "-bench"
		conn, err := t.Procs.ConnAs(i, org, yrdv1.Role_ROLE_PUBLISHER)
		if err != nil {
			return nil, fmt.Errorf("bench: a publisher key at %s: %w", city, err)
		}
		y.conns, y.orgs, y.cities = append(y.conns, conn), append(y.orgs, org), append(y.cities, city)
	}
	return y, nil
}

// what names a load's operations.
func (y *yrdLoads) what(kind string) string {
	if kind == "write" {
		return fmt.Sprintf("dataset publications of %d bytes", proto.Size(y.template))
	}
	return "linearizable dataset reads"
}

// run runs n operations of kind by clients clients.
func (y *yrdLoads) run(ctx context.Context, kind string, clients, n int) (Point, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if kind == "read" {
		if len(y.written) == 0 {
			return Point{}, fmt.Errorf("bench: nothing written to read")
		}
		return Load(ctx, clients, n, func(ctx context.Context, c, i int) error {
			cl := yrdv1grpc.NewCatalogServiceClient(y.conns[c%len(y.conns)])
			_, err := cl.GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: y.written[i%len(y.written)]})
			return err
		})
	}
	p, err := Load(ctx, clients, n, y.publish(clients))
	return p, err
}

// publish is the write operation: a new dataset of the client's
// connection's city and organisation, its id remembered for the reads.
func (y *yrdLoads) publish(clients int) Op {
	var mu sync.Mutex
	return func(ctx context.Context, c, i int) error {
		k := c % len(y.conns)
		d := proto.Clone(y.template).(*yrdv1.Dataset)
		d.OwnerCity, d.OwnerOrg = y.cities[k], y.orgs[k]
		d.Id = fmt.Sprintf("%s.bench.r%d-c%d-%d", y.cities[k], y.run0, clients, i)
		_, err := yrdv1grpc.NewCatalogServiceClient(y.conns[k]).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d})
		if err == nil {
			mu.Lock()
			y.written = append(y.written, d.Id)
			mu.Unlock()
		}
		return err
	}
}

// etcd runs the same load on etcd: puts of values the size of a dataset,
// or linearizable reads of one such value.
func (y *yrdLoads) etcd(ctx context.Context, e *Etcd, kind string, clients, n int) (Point, string, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	size := proto.Size(y.template)
	if kind == "write" {
		return e.Benchmark(ctx, clients, "put", "--key-size=32", "--sequential-keys", fmt.Sprintf("--key-space-size=%d", n),
			fmt.Sprintf("--total=%d", n), fmt.Sprintf("--val-size=%d", size))
	}
	if err := e.Put(ctx, "bench-dataset", make([]byte, size)); err != nil {
		return Point{}, "", err
	}
	return e.Benchmark(ctx, clients, "range", "bench-dataset", "--consistency=l", fmt.Sprintf("--total=%d", n))
}

// ReportDir is where `testnet bench` writes by default, under the module.
var ReportDir = filepath.Join("bench", "results")
