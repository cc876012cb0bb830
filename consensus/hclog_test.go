package consensus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRaftLogLevels: raft's lines keep their level, except the warnings
// that describe raft's normal catch-up of a member and a new cluster's
// first election, which are info, and the errors that say only that a
// connection to a peer ended; losing a leader stays a warning.
func TestRaftLogLevels(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"[WARN]  raft: failed to get previous log: previous-index=6 last-index=0 error=\"log not found\"", "INFO"},
		{"[WARN]  raft: appendEntries rejected, sending older logs: peer=x next=1", "INFO"},
		{"[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=", "INFO"},
		{"[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr=x last-leader-id=12D3Koo", "WARN"},
		{"[ERROR] raft: failed to appendEntries to: peer=x error=\"log not found\"", "ERROR"},
		// A connection to a peer that ended or could not be made: the
		// peer or this node stopping, not an error of this node.
		{"[ERROR] raft: failed to appendEntries to: peer=x error=EOF", "WARN"},
		{"[ERROR] raft: failed to heartbeat to: peer=x backoff time=10ms error=\"failed to dial: no good addresses\"", "WARN"},
		{"[ERROR] raft: failed to make requestVote RPC: target=x error=\"connection refused\" term=3", "WARN"},
		{"[ERROR] raft: failed to heartbeat to: peer=x backoff time=10ms error=\"fabric: dial x /yrd/raft/1.0.0: failed to negotiate protocol: protocols not supported: [/yrd/raft/1.0.0]\"", "WARN"},
		{"[ERROR] raft: failed to decode incoming command: error=\"transport shutdown\"", "INFO"},
		{"[ERROR] raft: failed to decode incoming command: error=\"stream reset: connection reset by peer\"", "INFO"},
		{"[ERROR] raft: failed to decode incoming command: error=\"connection closed (local): code: 0x0\"", "INFO"},
		{"[ERROR] raft: failed to decode incoming command: error=\"msgpack decode error [pos 3]: invalid\"", "ERROR"},
		{"[ERROR] raft: failed to persist vote: error=\"connection reset\"", "ERROR"},
		// A leader deposed by a newer term: a leader change.
		{"[ERROR] raft: peer has newer term, stopping replication: peer=\"{Voter x x}\"", "WARN"},
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
