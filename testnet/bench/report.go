package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Point is one load at one number of clients.
type Point struct {
	Clients            int
	Ops                int           // operations acknowledged
	Elapsed            time.Duration // wall time of the load
	P50, P90, P99, Max time.Duration
}

// OpsPerSec is Ops / Elapsed (0 when Elapsed is 0).
func (p Point) OpsPerSec() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Ops) / p.Elapsed.Seconds()
}

// Series is one kind of load measured at several client counts on one system.
type Series struct {
	System  string // "yrdnode" or "etcd"
	Kind    string // "write" (catalog writes / etcd puts) or "read" (linearizable reads)
	Command string // the command that reproduces it
	Points  []Point
}

// Single is one figure with its command.
type Single struct {
	Name    string // e.g. "filtered list over 100,000 datasets"
	Command string
	Value   float64 // in Unit
	Unit    string  // e.g. "rows/s", "lists/s"
	Point   *Point  // latency figures, when the figure has them
}

// Failover is the failover run: the leader's process killed, then writes
// retried until acknowledged.
type Failover struct {
	Command  string
	Recovery []time.Duration // per kill: from the kill to the first acknowledged write
	Timeline []Sample        // every write of the run
	Kills    []time.Duration // offsets from the start of the run at which a leader was killed
}

// Sample is one operation on a timeline.
type Sample struct {
	At      time.Duration // offset of its start from the start of the run
	Latency time.Duration
	OK      bool
}

// Federated is the federated group-by against one DuckDB over all the rows,
// in the same run.
type Federated struct {
	Command   string
	Query     string
	Cities    int
	Rows      int64           // rows in all
	Federated []time.Duration // one per repetition
	Central   []time.Duration
}

// Report is what `yrdnode testnet bench` measured.
type Report struct {
	Machine   string // e.g. "2 cores (AMD EPYC), 24 GiB, Linux 6.1"
	Commit    string
	Date      time.Time
	Series    []Series
	Singles   []Single
	Failover  *Failover
	Federated *Federated
	Notes     []string // free text paragraphs appended under "Notes"
}

// Names of the files Write produces in its directory.
const (
	reportFile     = "REPORT.md"
	throughputFile = "throughput.png"
	latencyFile    = "latency.png"
	federatedFile  = "federated.png"
	failoverFile   = "failover.png"
)

// Systems as they appear in Series.System; the main table compares them.
const (
	systemYrdnode = "yrdnode"
	systemEtcd    = "etcd"
)

// noValue fills a cell that has nothing to show, so that tables keep their shape.
const noValue = "—"

// Write writes dir/REPORT.md and the plots it links (PNG files in dir),
// creating dir. It overwrites earlier files of the same names.
func Write(dir string, r *Report) error {
	if r == nil {
		return fmt.Errorf("bench: nil report")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: report directory: %w", err)
	}
	// The plots come first so that the Markdown links only files that exist.
	plots, err := writePlots(dir, r)
	if err != nil {
		return err
	}
	md := renderMarkdown(r, plots)
	if err := os.WriteFile(filepath.Join(dir, reportFile), []byte(md), 0o644); err != nil {
		return fmt.Errorf("bench: %s: %w", reportFile, err)
	}
	return nil
}

// renderMarkdown is the whole of REPORT.md; plots holds the names of the
// PNG files that were written, which are the only ones linked.
func renderMarkdown(r *Report, plots map[string]bool) string {
	var b strings.Builder
	b.WriteString("# yrdnode testnet benchmark\n\n")
	fmt.Fprintf(&b, "Machine: %s · Commit: %s · Date: %s\n\n",
		orNoValue(r.Machine), orNoValue(r.Commit), reportDate(r.Date))
	writeMainTable(&b, r.Series)
	writeSeriesCommands(&b, r.Series)
	writeImages(&b, plots, throughputFile, latencyFile)
	writeSingles(&b, r.Singles)
	writeFederated(&b, r.Federated, plots)
	writeFailover(&b, r.Failover, plots)
	writeNotes(&b, r.Notes)
	return b.String()
}

func reportDate(t time.Time) string {
	if t.IsZero() {
		return noValue
	}
	return t.UTC().Format(time.RFC3339)
}

func orNoValue(s string) string {
	if strings.TrimSpace(s) == "" {
		return noValue
	}
	return s
}

// loadRow is one (kind, clients) row of the main table.
type loadRow struct {
	kind    string
	clients int
}

// mainTableRows are the (kind, clients) pairs measured on yrdnode: kinds in
// the order they first appear, client counts ascending within a kind.
func mainTableRows(series []Series) []loadRow {
	var kinds []string
	clients := map[string][]int{}
	for _, s := range series {
		if s.System != systemYrdnode {
			continue
		}
		if _, ok := clients[s.Kind]; !ok {
			kinds = append(kinds, s.Kind)
			clients[s.Kind] = []int{}
		}
		for _, p := range s.Points {
			if !slices.Contains(clients[s.Kind], p.Clients) {
				clients[s.Kind] = append(clients[s.Kind], p.Clients)
			}
		}
	}
	var rows []loadRow
	for _, k := range kinds {
		slices.Sort(clients[k])
		for _, c := range clients[k] {
			rows = append(rows, loadRow{kind: k, clients: c})
		}
	}
	return rows
}

// findPoint is the first point of system's series of kind at clients.
func findPoint(series []Series, system, kind string, clients int) (Point, bool) {
	for _, s := range series {
		if s.System != system || s.Kind != kind {
			continue
		}
		for _, p := range s.Points {
			if p.Clients == clients {
				return p, true
			}
		}
	}
	return Point{}, false
}

func writeMainTable(b *strings.Builder, series []Series) {
	b.WriteString("## Catalog writes and linearizable reads\n\n")
	rows := mainTableRows(series)
	if len(rows) == 0 {
		b.WriteString("No yrdnode load was measured.\n\n")
		return
	}
	b.WriteString("| what | clients | yrdnode ops/s | p50 | p99 | etcd ops/s | etcd p50 | etcd p99 | ops/s ratio | p99 ratio |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range rows {
		y, _ := findPoint(series, systemYrdnode, row.kind, row.clients)
		cells := []string{cell(row.kind), strconv.Itoa(row.clients),
			fmtNumber(y.OpsPerSec()), fmtMs(y.P50), fmtMs(y.P99)}
		if e, ok := findPoint(series, systemEtcd, row.kind, row.clients); ok {
			cells = append(cells, fmtNumber(e.OpsPerSec()), fmtMs(e.P50), fmtMs(e.P99),
				fmtRatio(y.OpsPerSec(), e.OpsPerSec()),
				fmtRatio(float64(y.P99), float64(e.P99)))
		} else {
			cells = append(cells, noValue, noValue, noValue, noValue, noValue)
		}
		writeRow(b, cells)
	}
	b.WriteString("\n")
}

func writeSeriesCommands(b *strings.Builder, series []Series) {
	var lines []string
	for _, s := range series {
		if strings.TrimSpace(s.Command) == "" {
			continue
		}
		lines = append(lines, fmt.Sprintf("- %s %s: %s\n", s.System, s.Kind, codeSpan(s.Command)))
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("Commands:\n\n")
	for _, l := range lines {
		b.WriteString(l)
	}
	b.WriteString("\n")
}

func writeSingles(b *strings.Builder, singles []Single) {
	if len(singles) == 0 {
		return
	}
	b.WriteString("## Other figures\n\n")
	b.WriteString("| figure | value | p50 | p99 | command |\n")
	b.WriteString("|---|---:|---:|---:|---|\n")
	for _, s := range singles {
		p50, p99 := noValue, noValue
		if s.Point != nil {
			p50, p99 = fmtMs(s.Point.P50), fmtMs(s.Point.P99)
		}
		value := strings.TrimSpace(fmtNumber(s.Value) + " " + s.Unit)
		writeRow(b, []string{cell(s.Name), cell(value), p50, p99, commandCell(s.Command)})
	}
	b.WriteString("\n")
}

func writeFederated(b *strings.Builder, f *Federated, plots map[string]bool) {
	if f == nil {
		return
	}
	fed, cen := medianDuration(f.Federated), medianDuration(f.Central)
	b.WriteString("## Federated group-by against one DuckDB\n\n")
	b.WriteString("| cities | rows | repetitions | federated (median) | one DuckDB (median) | federated/central | command |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---|\n")
	writeRow(b, []string{strconv.Itoa(f.Cities), fmtInt(f.Rows),
		fmt.Sprintf("%d/%d", len(f.Federated), len(f.Central)),
		fmtMsOrNone(fed, len(f.Federated)), fmtMsOrNone(cen, len(f.Central)),
		fmtRatio(float64(fed), float64(cen)), commandCell(f.Command)})
	b.WriteString("\n")
	if strings.TrimSpace(f.Query) != "" {
		fence := strings.Repeat("`", max(3, longestBacktickRun(f.Query)+1))
		fmt.Fprintf(b, "Query:\n\n%ssql\n%s\n%s\n\n", fence, strings.TrimRight(f.Query, "\n"), fence)
	}
	writeImages(b, plots, federatedFile)
}

func writeFailover(b *strings.Builder, f *Failover, plots map[string]bool) {
	if f == nil {
		return
	}
	kills := len(f.Kills)
	if kills == 0 {
		kills = len(f.Recovery) // one recovery per kill, when the offsets were not kept
	}
	failed := 0
	for _, s := range f.Timeline {
		if !s.OK {
			failed++
		}
	}
	var worst time.Duration
	for _, d := range f.Recovery {
		worst = max(worst, d)
	}
	b.WriteString("## Failover: leader's process killed\n\n")
	b.WriteString("| kills | recovery p50 | recovery max | writes | failed writes | command |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---|\n")
	writeRow(b, []string{strconv.Itoa(kills),
		fmtMsOrNone(medianDuration(f.Recovery), len(f.Recovery)),
		fmtMsOrNone(worst, len(f.Recovery)),
		strconv.Itoa(len(f.Timeline)), strconv.Itoa(failed), commandCell(f.Command)})
	b.WriteString("\n")
	if len(f.Recovery) > 0 {
		each := make([]string, len(f.Recovery))
		for i, d := range f.Recovery {
			each[i] = fmtMs(d)
		}
		fmt.Fprintf(b, "Recovery after each kill: %s.\n\n", strings.Join(each, ", "))
	}
	writeImages(b, plots, failoverFile)
}

func writeNotes(b *strings.Builder, notes []string) {
	if len(notes) == 0 {
		return
	}
	b.WriteString("## Notes\n\n")
	for _, n := range notes {
		b.WriteString(strings.TrimSpace(n))
		b.WriteString("\n\n")
	}
}

// writeImages links those of names that were written, in that order.
func writeImages(b *strings.Builder, plots map[string]bool, names ...string) {
	for _, name := range names {
		if plots[name] {
			fmt.Fprintf(b, "![%s](%s)\n\n", strings.TrimSuffix(name, ".png"), name)
		}
	}
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("| ")
	b.WriteString(strings.Join(cells, " | "))
	b.WriteString(" |\n")
}

// cell makes text safe inside a table cell: a pipe would end the cell and a
// newline the row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func commandCell(cmd string) string {
	if strings.TrimSpace(cmd) == "" {
		return noValue
	}
	return cell(codeSpan(cmd))
}

// codeSpan puts s in backticks, with a fence longer than any backtick run in
// s so that a command quoting with backticks stays one span.
func codeSpan(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	fence := strings.Repeat("`", longestBacktickRun(s)+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func longestBacktickRun(s string) int {
	longest, run := 0, 0
	for _, c := range s {
		if c != '`' {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}

// medianDuration is the middle of ds (the mean of the two middle ones for an
// even count), 0 for none.
func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return s[m-1] + (s[m]-s[m-1])/2
}

// fmtMs formats d in milliseconds: two significant digits below 10 ms
// ("4.6 ms", "0.83 ms"), whole milliseconds with thousands separators above
// ("47 ms", "2,310 ms").
func fmtMs(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if math.Abs(ms) < 10 {
		return fmtSignificant2(ms) + " ms"
	}
	return fmtInt(int64(math.Round(ms))) + " ms"
}

// fmtMsOrNone is fmtMs, or noValue when there was nothing to summarise.
func fmtMsOrNone(d time.Duration, n int) string {
	if n == 0 {
		return noValue
	}
	return fmtMs(d)
}

// fmtNumber formats a figure such as ops/s: whole with thousands separators
// ("3,410"), or two significant digits below 10 so that slow figures do not
// read as 0.
func fmtNumber(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return noValue
	case math.Abs(v) < 10:
		return fmtSignificant2(v)
	}
	return fmtInt(int64(math.Round(v)))
}

// fmtRatio is a/b as "1.23×", or noValue when b is 0.
func fmtRatio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) || math.IsInf(a/b, 0) {
		return noValue
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// fmtSignificant2 rounds v to two significant digits and prints it without
// an exponent: 4.6, 0.83, 0.0012, 10.
func fmtSignificant2(v float64) string {
	if v == 0 {
		return "0"
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 2, 64), 64)
	decimals := max(0, 1-int(math.Floor(math.Log10(math.Abs(r)))))
	return strconv.FormatFloat(r, 'f', decimals, 64)
}

// fmtInt groups the digits of n in threes: 1234567 → "1,234,567".
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}
