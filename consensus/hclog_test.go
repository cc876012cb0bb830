package consensus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRaftLogLevels: raft's lines keep their level, except the warnings
// that describe raft's normal catch-up of a member and a new cluster's
// first election, which are info; losing a leader stays a warning.
func TestRaftLogLevels(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"[WARN]  raft: failed to get previous log: previous-index=6 last-index=0 error=\"log not found\"", "INFO"},
		{"[WARN]  raft: appendEntries rejected, sending older logs: peer=x next=1", "INFO"},
		{"[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=", "INFO"},
		{"[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr=x last-leader-id=12D3Koo", "WARN"},
		{"[ERROR] raft: failed to appendEntries to: peer=x error=EOF", "ERROR"},
		{"[INFO]  raft: entering leader state: leader=x", "INFO"},
	} {
		var buf bytes.Buffer
		w := slogWriter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		w.Write([]byte(c.line + "\n"))
		if !strings.Contains(buf.String(), "level="+c.want) {
			t.Errorf("%q logged as %s, want %s", c.line, buf.String(), c.want)
		}
	}
}
