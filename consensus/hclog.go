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
	if level == slog.LevelError {
		level = errorLevel(line)
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

// Raft's errors about a connection to a peer that ended or could not be
// made say only that a member (or this node) is stopping, restarting or
// unreachable: the cluster's working life, which health and `cluster
// status` report. Logged as ERROR they would fill every clean stop with
// errors and teach operators to ignore the level. Only these messages, and
// only with a cause that is a connection's end, are lowered; any other
// cause (a malformed command, a failed snapshot) stays an error.
var (
	// inboundEnded: a peer's stream into this node ended mid-command.
	inboundEnded = []byte("failed to decode incoming command")
	// outboundFailed: an RPC from this node to a peer failed.
	outboundFailed = [][]byte{
		[]byte("failed to appendEntries to"),
		[]byte("failed to heartbeat to"),
		[]byte("failed to make requestVote RPC"),
		[]byte("failed to send snapshot to"),
		[]byte("failed to pipeline appendEntries"),
	}
	// connectionEnded are the causes that mean the connection ended or
	// could not be made, as raft's transport and the fabric word them.
	connectionEnded = [][]byte{
		[]byte("error=EOF"), []byte("unexpected EOF"),
		[]byte("transport shutdown"),
		[]byte("connection closed"), []byte("stream reset"), []byte("connection reset"),
		[]byte("use of closed network connection"), []byte("broken pipe"),
		[]byte("connection refused"), []byte("failed to dial"), []byte("no addresses"),
		[]byte("i/o timeout"), []byte("deadline exceeded"),
		// A stopping peer closes its raft before its libp2p host, which
		// then still answers but no longer speaks raft (seen in CI).
		[]byte("protocols not supported"),
	}
)

// deposed is what a leader logs, as an error, when a follower answers
// with a newer term: another node was elected (after a leadership
// transfer, a stop or a partition) and this one steps down. A leader change
// is worth a warning, as raft gives "failed to contact quorum, stepping
// down", not an error of this node.
var deposed = []byte("peer has newer term, stopping replication")

// errorLevel is the level of a raft ERROR line.
func errorLevel(line []byte) slog.Level {
	if bytes.Contains(line, deposed) {
		return slog.LevelWarn
	}
	return peerConnectionLevel(line)
}

// peerConnectionLevel is the level of a raft ERROR line: info for an
// inbound stream that ended, a warning for a peer that could not be
// reached, an error for anything else.
func peerConnectionLevel(line []byte) slog.Level {
	cause := line
	if i := bytes.Index(line, []byte("error=")); i >= 0 {
		cause = line[i:]
	} else {
		return slog.LevelError
	}
	ended := false
	for _, c := range connectionEnded {
		if bytes.Contains(cause, c) {
			ended = true
			break
		}
	}
	switch {
	case !ended:
		return slog.LevelError
	case bytes.Contains(line, inboundEnded):
		return slog.LevelInfo
	}
	for _, m := range outboundFailed {
		if bytes.Contains(line, m) {
			return slog.LevelWarn
		}
	}
	return slog.LevelError
}
