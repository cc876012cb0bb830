// Package consensus replicates the catalog with hashicorp/raft. The FSM is a
// thin bridge: it decodes typed protobuf commands from the log and applies
// them to the bbolt-backed catalog in store/. The transport is given to it as
// a raft.StreamLayer, so this package knows nothing of libp2p or gRPC.
package consensus

import (
	"errors"
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

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("consensus: ID is required")
	case c.Dir == "":
		return errors.New("consensus: Dir is required")
	case c.HeartbeatTimeout < 5*time.Millisecond:
		return fmt.Errorf("consensus: HeartbeatTimeout %v is below 5ms", c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("consensus: ElectionTimeout %v is below HeartbeatTimeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("consensus: LeaderLeaseTimeout %v must be in (0, HeartbeatTimeout]", c.LeaderLeaseTimeout)
	case c.CommitTimeout <= 0:
		return errors.New("consensus: CommitTimeout must be positive")
	case c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024:
		return fmt.Errorf("consensus: MaxAppendEntries %d is outside 1..1024", c.MaxAppendEntries)
	case c.SnapshotThreshold < 1:
		return errors.New("consensus: SnapshotThreshold must be positive")
	case c.SnapshotInterval < 5*time.Millisecond:
		return errors.New("consensus: SnapshotInterval must be at least 5ms")
	case c.SnapshotsRetained < 1:
		return errors.New("consensus: SnapshotsRetained must be at least 1")
	case c.Logger == nil:
		return errors.New("consensus: Logger is required")
	}
	return nil
}
