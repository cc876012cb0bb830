package node_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// logBuffer collects the log lines of every node of a cluster (slog and,
// through the consensus package's adapter, raft's hclog).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) lines(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, "level="+level) {
			out = append(out, line)
		}
	}
	return out
}

// TestCleanStopLogsNoError runs a 3-node cluster, does some work and stops
// every node cleanly: no node logs an ERROR, before or during the stop.
func TestCleanStopLogsNoError(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := startCluster(t, testnet.Options{Logger: log})
	ctx := testCtx(t)
	for i := range 6 {
		at := i % 3
		if _, err := publisherClient(t, c, at).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: dsAt(c, at, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs.lines("WARN") {
		t.Log(l)
	}
	if errs := logs.lines("ERROR"); len(errs) > 0 {
		t.Fatalf("a clean stop logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
