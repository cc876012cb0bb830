package bench_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/testnet/bench"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// TestRunMeasuresRealProcesses brings up two yrdnode processes and runs
// small write and read loads through their client API (TLS, API keys):
// every operation is acknowledged and counted, and the report names both
// loads. (etcd is not on a CI machine; its parser has its own tests.)
func TestRunMeasuresRealProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tn, log := upTestnet(ctx, t, chaos.Options{Cities: []string{"shanghai", "hangzhou"}})
	r := bench.NewReport("test")
	if err := bench.Run(ctx, bench.Options{Testnet: tn, Scratch: filepath.Join(tn.State.Dir, "bench"), Clients: []int{1, 4},
		Ops: map[int]int{1: 30, 4: 60}, Log: log}, r); err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 2 {
		t.Fatalf("%d series, want yrdnode writes and reads", len(r.Series))
	}
	for _, s := range r.Series[:2] {
		if s.System != "yrdnode" || len(s.Points) != 2 || s.Points[0].Ops != 30 || s.Points[1].Ops != 60 || s.Points[1].Clients != 4 {
			t.Fatalf("series %+v", s)
		}
	}
	if err := bench.List(ctx, bench.Options{Testnet: tn, Clients: []int{1, 4}, Ops: map[int]int{1: 20, 4: 40}, Log: log}, r, 400); err != nil {
		t.Fatal(err)
	}
	if s := r.Series[len(r.Series)-1]; s.Kind != "filtered list" || len(s.Points) != 2 || s.Points[1].Ops != 40 {
		t.Fatalf("list series %+v", s)
	}
	out := t.TempDir()
	if err := bench.Write(out, r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "REPORT.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| write | 4 |") || !strings.Contains(string(md), "| read | 1 |") ||
		!strings.Contains(string(md), "| filtered list | 4 |") || !strings.Contains(string(md), "No etcd build") {
		t.Fatalf("report:\n%s", md)
	}
}

// TestDeltaPartsOnRealProcesses: on four processes (three voters, one
// non-voter, with sample data) a change is readable on every city; a
// family query with the non-voter stopped answers with the others' parts
// and names the stopped one; the federated group-by and the central one
// both answer; every row streams; and writes go on after the leader's
// process is killed.
func TestDeltaPartsOnRealProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tn, _ := upTestnet(ctx, t, chaos.Options{Cities: []string{"shanghai", "hangzhou", "nanjing", "hefei"}, Voters: 3, SampleRows: 200})
	s, err := bench.Propagation(ctx, tn, 5)
	if err != nil {
		t.Fatal(err)
	}
	if s.Point == nil || s.Point.Ops != 5 || s.Point.Max <= 0 || s.Point.Max > time.Minute {
		t.Fatalf("propagation %+v", s.Point)
	}
	f, err := bench.Fanout(ctx, tn, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f.Owners != 4 || len(f.Answered) != 3 || len(f.Down) != 1 || f.Down[0] != "hefei" || len(f.Missing) != 1 || !strings.HasPrefix(f.Missing[0], "hefei") {
		t.Fatalf("fan-out with hefei down: %+v", f)
	}
	if err := tn.Procs.WaitServing(ctx, 3); err != nil {
		t.Fatalf("hefei was not started again: %v", err)
	}
	fed, err := bench.RunFederated(ctx, tn, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fed.Cities != 4 || fed.Rows != 800 || len(fed.Federated) != 1 || len(fed.Central) != 1 || fed.Central[0] <= 0 {
		t.Fatalf("federated: %+v", fed)
	}
	st, err := bench.Stream(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Name, "800 rows from 4 cities") || st.Value <= 0 {
		t.Fatalf("stream: %+v", st)
	}
	fo, err := bench.RunFailover(ctx, tn, 1, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(fo.Kills) != 1 || len(fo.Recovery) != 1 || fo.Recovery[0] <= 0 || len(fo.Timeline) == 0 {
		t.Fatalf("failover: %d kills, recovery %v, %d writes", len(fo.Kills), fo.Recovery, len(fo.Timeline))
	}
}

// upTestnet brings up o's cities as processes on loopback addresses in a
// temporary dir, and takes them down when the test ends.
func upTestnet(ctx context.Context, t *testing.T, o chaos.Options) (*chaos.Testnet, *slog.Logger) {
	t.Helper()
	bin, err := procnet.BuildBinaryOnce("../..")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir, o.Binary, o.Mode = t.TempDir(), bin, chaos.ModeLoopback
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tn, err := chaos.Up(ctx, o)
	t.Cleanup(func() {
		if tn != nil {
			tn.Close()
		}
		if err := chaos.Down(context.Background(), o.Dir, o.Log); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tn, o.Log
}
