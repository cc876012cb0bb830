package bench

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseEtcdBenchmark reads the summary etcd's benchmark tool prints: the
// total time, the slowest request, the response time histogram (whose
// counts are the requests) and the latency distribution. A run that
// reports errors, or a summary missing any of these, is an error naming
// what is wrong and the line.
func ParseEtcdBenchmark(out string) (Point, error) {
	var p Point
	var have struct{ total, slowest, p50, p90, p99 bool }
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasSuffix(line, ":") && !strings.Contains(line, " ") || line == "Response time histogram:" ||
			line == "Latency distribution:" || line == "Error distribution:" {
			section = line
			if section == "Error distribution:" {
				return Point{}, fmt.Errorf("bench: etcd benchmark line %d: the run had errors", n)
			}
			continue
		}
		var err error
		switch section {
		case "Summary:":
			err = p.summaryLine(line, &have.total, &have.slowest)
		case "Response time histogram:":
			err = p.histogramLine(line)
		case "Latency distribution:":
			err = p.percentileLine(line, &have.p50, &have.p90, &have.p99)
		}
		if err != nil {
			return Point{}, fmt.Errorf("bench: etcd benchmark line %d: %w", n, err)
		}
	}
	if !have.total || !have.slowest || !have.p50 || !have.p90 || !have.p99 || p.Ops == 0 {
		return Point{}, fmt.Errorf("bench: etcd benchmark output has no complete summary (total, slowest, histogram, 50/90/99%%)")
	}
	return p, nil
}

// summaryLine reads "Total:\t3.7 secs." and "Slowest:\t0.07 secs.".
func (p *Point) summaryLine(line string, total, slowest *bool) error {
	name, value, ok := strings.Cut(line, ":")
	if !ok || (name != "Total" && name != "Slowest") {
		return nil
	}
	d, err := etcdSeconds(value)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if name == "Total" {
		p.Elapsed, *total = d, true
	} else {
		p.Max, *slowest = d, true
	}
	return nil
}

// histogramLine reads "0.0080 [1989]\t|∎∎∎" and counts its requests.
func (p *Point) histogramLine(line string) error {
	_, rest, ok := strings.Cut(line, "[")
	count, _, ok2 := strings.Cut(rest, "]")
	if !ok || !ok2 {
		return fmt.Errorf("histogram line %q", line)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 {
		return fmt.Errorf("histogram count %q", count)
	}
	p.Ops += n
	return nil
}

// percentileLine reads "99% in 0.0063 secs.".
func (p *Point) percentileLine(line string, p50, p90, p99 *bool) error {
	pct, value, ok := strings.Cut(line, "% in ")
	if !ok {
		return fmt.Errorf("latency line %q", line)
	}
	d, err := etcdSeconds(value)
	if err != nil {
		return fmt.Errorf("%s%%: %w", pct, err)
	}
	switch pct {
	case "50":
		p.P50, *p50 = d, true
	case "90":
		p.P90, *p90 = d, true
	case "99":
		p.P99, *p99 = d, true
	}
	return nil
}

// etcdSeconds reads "0.0063 secs.".
func etcdSeconds(s string) (time.Duration, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), " secs.")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("%q is not a time in seconds", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}
