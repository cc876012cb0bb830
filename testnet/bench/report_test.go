package bench

import (
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	yrdWriteCmd = "yrdnode testnet bench -load write -clients 1,16,64,256"
	yrdReadCmd  = "yrdnode testnet bench -load read -clients 1,16,64"
	etcdPutCmd  = "yrdnode testnet bench -etcd -load write -clients 1,16,64"
	etcdReadCmd = "yrdnode testnet bench -etcd -load read -clients 1,16,64"
)

// point is a load of one second with latencies spread around p50.
func point(clients, ops int, p50 time.Duration) Point {
	return Point{Clients: clients, Ops: ops, Elapsed: time.Second,
		P50: p50, P90: p50 * 2, P99: p50 * 4, Max: p50 * 9}
}

// fullReport has every part; yrdnode writes also ran at 256 clients, which
// etcd did not, so that row has no etcd cells.
func fullReport() *Report {
	return &Report{
		Machine: "2 cores (AMD EPYC), 24 GiB, Linux 6.1",
		Commit:  "e6f1dc2",
		Date:    time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CST", 8*3600)),
		Series: []Series{
			{System: "yrdnode", Kind: "write", Command: yrdWriteCmd, Points: []Point{
				point(1, 640, 1500*time.Microsecond), point(16, 3410, 4600*time.Microsecond),
				point(64, 5200, 12*time.Millisecond), point(256, 6100, 41*time.Millisecond)}},
			{System: "etcd", Kind: "write", Command: etcdPutCmd, Points: []Point{
				point(1, 320, 3*time.Millisecond), point(16, 2900, 5500*time.Microsecond),
				point(64, 6400, 9*time.Millisecond)}},
			{System: "yrdnode", Kind: "read", Command: yrdReadCmd, Points: []Point{
				point(1, 2100, 470*time.Microsecond), point(16, 14500, 1100*time.Microsecond),
				point(64, 21000, 3*time.Millisecond)}},
			{System: "etcd", Kind: "read", Command: etcdReadCmd, Points: []Point{
				point(1, 2600, 380*time.Microsecond), point(16, 19000, 830*time.Microsecond),
				point(64, 30000, 2100*time.Microsecond)}},
		},
		Singles: []Single{
			{Name: "filtered list over 100,000 datasets", Command: "yrdnode testnet bench -load list",
				Value: 412.5, Unit: "lists/s", Point: &Point{P50: 2300 * time.Microsecond, P99: 9 * time.Millisecond}},
			{Name: "rows ingested", Command: "yrdnode testnet bench -load ingest", Value: 48213, Unit: "rows/s"},
		},
		Failover: syntheticFailover(),
		Federated: &Federated{
			Command: "yrdnode testnet bench -load federated", Query: "SELECT city, count(*) FROM rows GROUP BY city",
			Cities: 3, Rows: 3_000_000,
			Federated: []time.Duration{410 * time.Millisecond, 380 * time.Millisecond, 395 * time.Millisecond},
			Central:   []time.Duration{150 * time.Millisecond, 162 * time.Millisecond, 149 * time.Millisecond},
		},
		Notes: []string{"etcd ran as three processes on the same machine."},
	}
}

// syntheticFailover is a 30 s run, one write every 100 ms, with the leader
// killed at 8, 16 and 24 s and writes failing for a while after each kill.
func syntheticFailover() *Failover {
	f := &Failover{
		Command:  "yrdnode testnet bench -load failover -kills 3",
		Kills:    []time.Duration{8 * time.Second, 16 * time.Second, 24 * time.Second},
		Recovery: []time.Duration{1200 * time.Millisecond, 1500 * time.Millisecond, 1100 * time.Millisecond},
	}
	for i := range 300 {
		at := time.Duration(i) * 100 * time.Millisecond
		s := Sample{At: at, Latency: 4*time.Millisecond + time.Duration(i%7)*300*time.Microsecond, OK: true}
		for k, kill := range f.Kills {
			if at >= kill && at < kill+f.Recovery[k] {
				s.OK, s.Latency = false, 500*time.Millisecond
			}
		}
		f.Timeline = append(f.Timeline, s)
	}
	return f
}

func TestWriteFullReport(t *testing.T) {
	dir := t.TempDir()
	r := fullReport()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	md := readReport(t, dir)
	for _, want := range []string{
		"| what | clients | yrdnode ops/s | p50 | p99 | etcd ops/s | etcd p50 | etcd p99 | ops/s ratio | p99 ratio |",
		"2026-03-03T21:06:07Z",
		"| 48,213 rows/s |",
		"3,000,000",
		"etcd ran as three processes",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
	// 640 ops/s against 320, p99 6 ms against 12 ms.
	wantRow(t, md, "| write | 1 |", "| write | 1 | 640 | 1.5 ms | 6.0 ms | 320 | 3.0 ms | 12 ms | 2.00× | 0.50× |")
	wantRow(t, md, "| write | 256 |", "| write | 256 | 6,100 | 41 ms | 164 ms | — | — | — | — | — |")
	for _, s := range r.Series {
		if !strings.Contains(md, "`"+s.Command+"`") {
			t.Errorf("REPORT.md lacks the command %q", s.Command)
		}
	}
	links := imageLinks(md)
	if want := []string{"throughput.png", "latency.png", "federated.png", "failover.png"}; !sameSet(links, want) {
		t.Errorf("linked plots %v, want %v", links, want)
	}
	for _, l := range links {
		checkPNG(t, filepath.Join(dir, l))
	}
}

func TestWriteYrdnodeOnly(t *testing.T) {
	dir := t.TempDir()
	r := fullReport()
	r.Series = slices.DeleteFunc(r.Series, func(s Series) bool { return s.System != "yrdnode" })
	r.Singles, r.Failover, r.Federated, r.Notes = nil, nil, nil, nil
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	md := readReport(t, dir)
	want := []string{"throughput.png", "latency.png"}
	if links := imageLinks(md); !sameSet(links, want) {
		t.Errorf("linked plots %v, want %v", links, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if !sameSet(files, append(want, "REPORT.md")) {
		t.Errorf("files written %v, want REPORT.md and %v", files, want)
	}
	wantRow(t, md, "| read | 16 |", "| read | 16 | 14,500 | 1.1 ms | 4.4 ms | — | — | — | — | — |")
	for _, absent := range []string{"## Notes", "## Failover", "## Federated", "## Other figures"} {
		if strings.Contains(md, absent) {
			t.Errorf("REPORT.md has %q without data for it", absent)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{fmtMs(4600 * time.Microsecond), "4.6 ms"},
		{fmtMs(830 * time.Microsecond), "0.83 ms"},
		{fmtMs(9990 * time.Microsecond), "10 ms"},
		{fmtMs(47 * time.Millisecond), "47 ms"},
		{fmtMs(2310 * time.Millisecond), "2,310 ms"},
		{fmtMs(0), "0 ms"},
		{fmtNumber(3410.4), "3,410"},
		{fmtNumber(1234567), "1,234,567"},
		{fmtNumber(7.25), "7.2"},
		{fmtRatio(640, 320), "2.00×"},
		{fmtRatio(1, 0), "—"},
		{codeSpan("a `b` c"), "``a `b` c``"},
		{cell("a|b\nc"), `a\|b c`},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestOpsPerSec(t *testing.T) {
	if got := (Point{Ops: 10}).OpsPerSec(); got != 0 {
		t.Errorf("no elapsed time: %v ops/s, want 0", got)
	}
	if got := (Point{Ops: 300, Elapsed: 2 * time.Second}).OpsPerSec(); got != 150 {
		t.Errorf("300 ops in 2 s: %v ops/s, want 150", got)
	}
}

func readReport(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "REPORT.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantRow finds the table row starting with prefix and compares it whole.
func wantRow(t *testing.T, md, prefix, want string) {
	t.Helper()
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, prefix) {
			if line != want {
				t.Errorf("row\n%s\nwant\n%s", line, want)
			}
			return
		}
	}
	t.Errorf("no row starting with %q in\n%s", prefix, md)
}

func imageLinks(md string) []string {
	var links []string
	for _, m := range regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`).FindAllStringSubmatch(md, -1) {
		links = append(links, m[1])
	}
	return links
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() <= 100 || b.Dy() <= 100 {
		t.Errorf("%s: %d×%d pixels, want more than 100×100", path, b.Dx(), b.Dy())
	}
}
