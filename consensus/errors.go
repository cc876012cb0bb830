package consensus

import "errors"

var (
	// ErrNotLeader means the operation must run on the leader. Callers
	// forward it there.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader means the cluster has no known leader right now.
	ErrNoLeader = errors.New("no raft leader")
	// ErrLeadershipLost means leadership was lost after the command entered
	// the log: it may or may not commit, so it must not be retried blindly.
	ErrLeadershipLost = errors.New("leadership lost while committing; the outcome is unknown")
	// ErrStorageFailed means this node's raft log, stable store or catalog
	// failed to make a write durable; it has stopped taking part in raft
	// and refuses writes until restarted, which recovers from the disk.
	// The error wrapping it names the store and the cause.
	ErrStorageFailed = errors.New("storage failed")
	// ErrClosed means the raft instance is shut down.
	ErrClosed = errors.New("consensus is shut down")
)
