package consensus

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger routes hashicorp/raft's hclog output into the node's slog
// logger, keeping each line's level.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:            "raft",
		Level:           hclog.Info,
		Output:          slogWriter{l},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

type slogWriter struct{ l *slog.Logger }

var hclogLevels = []struct {
	tag   []byte
	level slog.Level
}{
	{[]byte("[ERROR]"), slog.LevelError},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[TRACE]"), slog.LevelDebug - 4},
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lv := range hclogLevels {
		if i := bytes.Index(line, lv.tag); i >= 0 {
			level = lv.level
			line = bytes.TrimSpace(line[i+len(lv.tag):])
			break
		}
	}
	if level == slog.LevelWarn && routine(line) {
		level = slog.LevelInfo
	}
	w.l.Log(context.Background(), level, string(line))
	return len(p), nil
}

// routineWarnings are raft warnings that describe its normal work: a new or
// lagging member is sent older entries until its log matches the leader's.
// Operators should not learn to ignore warnings, so these are info.
var routineWarnings = [][]byte{
	[]byte("failed to get previous log"),
	[]byte("appendEntries rejected, sending older logs"),
}

func routine(line []byte) bool {
	for _, w := range routineWarnings {
		if bytes.Contains(line, w) {
			return true
		}
	}
	// The first election of a new cluster: there was no leader to lose.
	return bytes.Contains(line, []byte("heartbeat timeout reached, starting election")) &&
		(bytes.Contains(line, []byte("last-leader-id= ")) || bytes.HasSuffix(line, []byte("last-leader-id=")))
}
