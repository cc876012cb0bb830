// Package consensus replicates the catalog with hashicorp/raft. The FSM is a
// thin bridge: it decodes typed protobuf commands from the log and applies
// them to the bbolt-backed catalog in store/. The transport is given to it as
// a raft.StreamLayer, so this package knows nothing of libp2p or gRPC.
package consensus

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures a node's raft instance.
type Config struct {
	// ID is this server's raft id; yrdnode uses the node's libp2p peer id,
	// which is also its raft address.
	ID string
	// Dir holds wal/ (the raft log), raft.db (the stable store: term and
	// vote) and snapshots/.
	Dir string

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// MaxAppendEntries bounds both the entries per AppendEntries RPC and the
	// commands the FSM applies in one bbolt transaction.
	MaxAppendEntries int
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one; TrailingLogs are kept after it so slightly lagging
	// followers can catch up from the log instead of a full snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotsRetained is how many snapshots to keep on disk.
	SnapshotsRetained int
	// NoSync skips fsync of the raft log and stable store. Only for tests
	// that need speed over durability; never in production.
	NoSync bool

	Logger *slog.Logger
}

// DefaultConfig returns settings for city nodes on a regional network
// (cities 2–15 ms apart): a killed leader is replaced and the first write
// acknowledged within about a second, while a node starved of CPU for a few
// hundred milliseconds neither starts an election nor steps down. See
// DESIGN.md, "Timing", for the arithmetic.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 400 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		MaxAppendEntries:   256,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
	}
}

// ConfigError is a Validate refusal naming the field at fault, so that a
// caller embedding Config (node) can say which of its settings it is
// without reading the message.
type ConfigError struct {
	// Field is the Config field at fault, e.g. "HeartbeatTimeout".
	Field string
	// Related are the fields the check compared Field with: the setting
	// to change may be one of them.
	Related []string
	// Msg is the message, as Error returns it.
	Msg string
}

func (e *ConfigError) Error() string { return e.Msg }

// fieldError is a ConfigError about field.
func fieldError(field string, related []string, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Related: related, Msg: fmt.Sprintf("consensus: "+format, args...)}
}

// Validate reports the first setting that cannot work, as a *ConfigError.
func (c Config) Validate() error {
	heartbeat := []string{"HeartbeatTimeout"}
	switch {
	case c.ID == "":
		return fieldError("ID", nil, "ID is required")
	case c.Dir == "":
		return fieldError("Dir", nil, "Dir is required")
	case c.HeartbeatTimeout < 5*time.Millisecond:
		return fieldError("HeartbeatTimeout", nil, "HeartbeatTimeout %v is below 5ms", c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fieldError("ElectionTimeout", heartbeat, "ElectionTimeout %v is below HeartbeatTimeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fieldError("LeaderLeaseTimeout", heartbeat, "LeaderLeaseTimeout %v must be in (0, HeartbeatTimeout]", c.LeaderLeaseTimeout)
	case c.CommitTimeout <= 0:
		return fieldError("CommitTimeout", nil, "CommitTimeout must be positive")
	case c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024:
		return fieldError("MaxAppendEntries", nil, "MaxAppendEntries %d is outside 1..1024", c.MaxAppendEntries)
	case c.SnapshotThreshold < 1:
		return fieldError("SnapshotThreshold", nil, "SnapshotThreshold must be positive")
	case c.SnapshotInterval < 5*time.Millisecond:
		return fieldError("SnapshotInterval", nil, "SnapshotInterval must be at least 5ms")
	case c.SnapshotsRetained < 1:
		return fieldError("SnapshotsRetained", nil, "SnapshotsRetained must be at least 1")
	case c.Logger == nil:
		return fieldError("Logger", nil, "Logger is required")
	}
	return nil
}
