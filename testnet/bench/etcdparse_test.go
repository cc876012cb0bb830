package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestParseEtcdBenchmark reads a summary printed by etcd 3.6.14's
// benchmark tool.
func TestParseEtcdBenchmark(t *testing.T) {
	out, err := os.ReadFile("testdata/etcd-put-summary.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The tool separates its sections by blank lines.
	spaced := strings.ReplaceAll(string(out), "\nResponse", "\n\nResponse")
	spaced = strings.ReplaceAll(spaced, "\nLatency", "\n\nLatency")
	p, err := ParseEtcdBenchmark("progress bar noise\n\n" + spaced + "\n")
	if err != nil {
		t.Fatal(err)
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	if p.Ops != 2000 || p.Elapsed != ms(3718.7) || p.P50 != ms(1.6) || p.P90 != ms(2.4) || p.P99 != ms(6.3) || p.Max != ms(73.5) {
		t.Fatalf("%+v", p)
	}
}

// TestParseEtcdBenchmarkRefuses: errors in the run, and summaries with a
// part missing or garbled, are errors that say what is wrong.
func TestParseEtcdBenchmarkRefuses(t *testing.T) {
	out, err := os.ReadFile("testdata/etcd-put-summary.txt")
	if err != nil {
		t.Fatal(err)
	}
	good := string(out)
	for name, c := range map[string]struct{ in, want string }{
		"errors":         {good + "Error distribution:\n  [3]\tcontext deadline exceeded\n", "had errors"},
		"no 99%":         {strings.Replace(good, "99% in", "98% in", 1), "no complete summary"},
		"empty":          {"", "no complete summary"},
		"garbled total":  {strings.Replace(good, "3.7187 secs.", "soon", 1), "Total"},
		"garbled bucket": {strings.Replace(good, "[1989]", "[many]", 1), "histogram count"},
		"negative time":  {strings.Replace(good, "0.0016 secs.", "-1 secs.", 1), "not a time"},
	} {
		if _, err := ParseEtcdBenchmark(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}

// FuzzParseEtcdBenchmark: any output parses to a point or an error,
// never a panic, and a point has requests and ordered percentiles only
// if the output said so.
func FuzzParseEtcdBenchmark(f *testing.F) {
	if out, err := os.ReadFile("testdata/etcd-put-summary.txt"); err == nil {
		f.Add(string(out))
	}
	f.Add("Summary:\n  Total:\t1 secs.\n")
	f.Fuzz(func(t *testing.T, out string) {
		p, err := ParseEtcdBenchmark(out)
		if err == nil && (p.Ops <= 0 || p.Elapsed < 0 || p.P99 < 0) {
			t.Fatalf("point %+v from %q", p, out)
		}
	})
}
