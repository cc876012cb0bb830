package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/coalesce"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
	"github.com/yrd-exchange/yrdnode/store/wal"
)

// Raft is one node's replica of the catalog.
type Raft struct {
	cfg     Config
	raft    *raft.Raft
	fsm     *fsm
	logs    *wal.Log        // raft's log
	stable  *store.LogStore // raft's stable store (term, vote)
	trans   *raft.NetworkTransport
	catalog *store.Catalog

	reads     coalesce.Rounds[uint64] // leadership checks shared by concurrent reads
	readyTerm atomic.Uint64           // term in which this leader's first barrier completed
	failure   *storageFailure
	metrics   Metrics
	stopped   atomic.Bool   // raft was shut down after a storage failure
	stop      chan struct{} // closed by Close: ends watchStorage
	watching  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts raft over layer, with the log in the write-ahead log in
// cfg.Dir/wal, the stable store (term, vote) in cfg.Dir/raft.db and
// snapshots in cfg.Dir/snapshots. Entries that an older version kept in
// raft.db are moved to the WAL first. The catalog must already be open;
// Open does not take ownership of it. observe may be nil.
//
// When the log, the stable store or the catalog fails to make a write
// durable, the node stops taking part in raft (see StorageErr).
func Open(cfg Config, catalog *store.Catalog, layer raft.StreamLayer, observe Observer, opts ...Option) (*Raft, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{metrics: noMetrics{}}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	stable, logs, snaps, err := openStorage(cfg, o)
	if err != nil {
		return nil, err
	}
	failure := newStorageFailure(cfg.Logger)
	closeStorage := func() { logs.Close(); stable.Close() }
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  newHCLogger(cfg.Logger),
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = newHCLogger(cfg.Logger)
	f := newFSM(catalog, observe, cfg.Logger)
	f.failure = failure
	// Raft reads back entries it has just written: the leader to send them
	// to each follower, a follower to apply what it appended. A ring of the
	// latest entries serves those reads from memory instead of a pread and
	// a decoding copy per entry and reader; the WAL keeps no cache itself.
	cached, err := raft.NewLogCache(logCacheSize(cfg.MaxAppendEntries), guardedLog{logs, failure, o.metrics})
	if err != nil {
		trans.Close()
		closeStorage()
		return nil, fmt.Errorf("consensus: log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, f, cached, guardedStable{stable, failure}, snaps, unpipelined{trans})
	if err != nil {
		trans.Close()
		closeStorage()
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	rr := &Raft{cfg: cfg, raft: r, fsm: f, logs: logs, stable: stable, trans: trans, catalog: catalog,
		failure: failure, metrics: o.metrics, stop: make(chan struct{})}
	rr.watching.Add(2)
	go rr.watchStorage()
	go rr.watchLeader(o.metrics)
	return rr, nil
}

// watchStorage shuts raft down at the first storage failure, so the node
// neither campaigns nor takes writes on storage it cannot trust. It runs
// beside raft's goroutines because raft.Shutdown waits for them, and the
// failure is reported from inside them. Close stops it.
func (r *Raft) watchStorage() {
	defer r.watching.Done()
	select {
	case <-r.failure.ch:
		if err := r.raft.Shutdown().Error(); err != nil {
			r.cfg.Logger.Warn("stopping raft after a storage failure", "err", err)
		}
		// raft's own state can still read Follower: a leader whose append
		// failed steps down after the failure was reported and Shutdown
		// had set it.
		r.stopped.Store(true)
	case <-r.stop:
	}
}

// StorageErr returns why this node's storage failed (wrapping
// ErrStorageFailed, naming the store and the cause), nil while it works.
// Once it is set raft is stopped on this node and writes fail; a restart
// recovers from what is on disk.
func (r *Raft) StorageErr() error { return r.failure.Err() }

// StorageFailed is closed when this node's storage fails.
func (r *Raft) StorageFailed() <-chan struct{} { return r.failure.ch }

// openStorage opens raft's stable store (raft.db, bbolt), its log (the
// WAL in wal/) and its snapshots, and brings an older data directory up to
// date: log entries still in raft.db move to the WAL.
func openStorage(cfg Config, o options) (*store.LogStore, *wal.Log, raft.SnapshotStore, error) {
	// raft.db is opened first: bbolt's file lock keeps a second process
	// out of the whole directory, WAL included.
	stable, err := store.OpenLogStore(filepath.Join(cfg.Dir, "raft.db"), store.Options{NoSync: cfg.NoSync})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("consensus: open stable store: %w", err)
	}
	logs, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.Options{NoSync: cfg.NoSync, FS: o.walFS})
	if err != nil {
		stable.Close()
		return nil, nil, nil, fmt.Errorf("consensus: open raft log: %w", err)
	}
	fail := func(err error) (*store.LogStore, *wal.Log, raft.SnapshotStore, error) {
		logs.Close()
		stable.Close()
		return nil, nil, nil, err
	}
	if rec := logs.Recovery(); rec.Path != "" {
		cfg.Logger.Warn("raft log: cut the torn tail of an interrupted append",
			"file", rec.Path, "offset", rec.Offset, "bytes", rec.Dropped, "reason", rec.Reason)
	}
	moved, err := store.MigrateLogs(stable, logs)
	if err != nil {
		return fail(fmt.Errorf("consensus: move raft log from raft.db to the wal: %w", err))
	}
	if moved > 0 {
		first, _ := logs.FirstIndex()
		last, _ := logs.LastIndex()
		cfg.Logger.Info("raft log: moved entries from raft.db to the write-ahead log",
			"entries", moved, "first", first, "last", last)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotsRetained, newHCLogger(cfg.Logger))
	if err != nil {
		return fail(fmt.Errorf("consensus: open snapshot store: %w", err))
	}
	if err := dropLogBehindSnapshot(cfg, logs, snaps); err != nil {
		return fail(err)
	}
	return stable, logs, snaps, nil
}

// dropLogBehindSnapshot empties a log that ends before the newest
// snapshot. Raft deletes the whole log after installing a snapshot from
// the leader (the WAL cannot hold a gap); a crash between the two leaves
// such a log, and the entries raft would append after the snapshot could
// never follow it. Everything in it is covered by the snapshot.
func dropLogBehindSnapshot(cfg Config, logs *wal.Log, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("consensus: list snapshots: %w", err)
	}
	var snapIndex uint64
	for _, m := range metas {
		snapIndex = max(snapIndex, m.Index)
	}
	first, _ := logs.FirstIndex()
	last, _ := logs.LastIndex()
	if last == 0 || last >= snapIndex {
		return nil
	}
	cfg.Logger.Warn("raft log: dropping a log that ends before the newest snapshot",
		"first", first, "last", last, "snapshot", snapIndex)
	if err := logs.DeleteRange(first, last); err != nil {
		return fmt.Errorf("consensus: drop log behind snapshot: %w", err)
	}
	return nil
}

// HasState reports whether this node already belongs to a cluster (it has
// a raft log, a snapshot or a configuration).
func (r *Raft) HasState() bool {
	return r.raft.LastIndex() > 0
}

// Bootstrap makes this node the single voter of a new cluster. It fails if
// the node already has state.
func (r *Raft) Bootstrap() error {
	cfg := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(r.cfg.ID), Address: raft.ServerAddress(r.cfg.ID),
	}}}
	return r.raft.BootstrapCluster(cfg).Error()
}

// Apply proposes cmd and waits until it is committed and applied here. It
// returns ErrNotLeader on a follower. The context's deadline bounds the
// wait for the log to accept the entry.
func (r *Raft) Apply(ctx context.Context, cmd *yrdv1.Command) (*yrdv1.CommandResult, error) {
	if err := r.StorageErr(); err != nil {
		return nil, err
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	start := time.Now()
	defer func() { r.metrics.ObserveApply(time.Since(start)) }()
	f := r.raft.Apply(data, timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // f.Error blocks until raft answers; raft always answers
	select {
	case err = <-done:
	case <-ctx.Done():
		// The entry may still commit; the caller learns the outcome by reading.
		return nil, ctx.Err()
	}
	if err != nil {
		if ferr := r.StorageErr(); ferr != nil {
			// Never acknowledged: the log append or the apply failed here.
			return nil, ferr
		}
		return nil, translate(err)
	}
	if ferr, ok := f.Response().(error); ok {
		return nil, ferr // the catalog could not apply it here
	}
	res, ok := f.Response().(*yrdv1.CommandResult)
	if !ok || res == nil {
		return nil, fmt.Errorf("consensus: command at index %d produced no result", f.Index())
	}
	return res, nil
}

func translate(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrLeadershipLost
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return err
}

// ReadIndex confirms that this node is still the leader and returns the
// index a replica must have applied to serve a linearizable read: the
// catalog index this leader had applied when the check began. Every write
// acknowledged before then was applied here first (the leader applies
// before it acknowledges), so the index covers them. Concurrent callers
// share one leadership check.
func (r *Raft) ReadIndex(ctx context.Context) (uint64, error) {
	if err := r.StorageErr(); err != nil {
		return 0, err
	}
	if r.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	return r.reads.Do(ctx, r.readIndexRound)
}

func (r *Raft) readIndexRound() (uint64, error) {
	// A new leader may not yet have applied entries that an old leader
	// committed; a barrier in its own term settles that once per term.
	if term := r.raft.CurrentTerm(); r.readyTerm.Load() != term {
		if err := r.raft.Barrier(r.cfg.ElectionTimeout * 4).Error(); err != nil {
			return 0, translate(err)
		}
		r.readyTerm.Store(term)
	}
	index := r.catalog.AppliedIndex()
	if err := r.raft.VerifyLeader().Error(); err != nil {
		return 0, translate(err)
	}
	return index, nil
}

// WaitApplied blocks until this replica's catalog has applied index, an
// index returned by ReadIndex.
func (r *Raft) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := r.fsm.appliedCh()
		if r.catalog.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// IsLeader reports whether this node currently believes it leads.
func (r *Raft) IsLeader() bool { return r.raft.State() == raft.Leader }

// Leader returns the leader's id, or "" if none is known.
func (r *Raft) Leader() string {
	_, id := r.raft.LeaderWithID()
	return string(id)
}

// State is Follower, Candidate, Leader or Shutdown.
func (r *Raft) State() string {
	if r.stopped.Load() {
		return raft.Shutdown.String()
	}
	return r.raft.State().String()
}

// Term returns the current raft term.
func (r *Raft) Term() uint64 { return r.raft.CurrentTerm() }

// CommitIndex returns the latest committed index known here.
func (r *Raft) CommitIndex() uint64 { return r.raft.CommitIndex() }

// AppliedIndex returns the latest index applied to the catalog.
func (r *Raft) AppliedIndex() uint64 { return r.catalog.AppliedIndex() }

// LastContact is when this node last heard from the leader.
func (r *Raft) LastContact() time.Time { return r.raft.LastContact() }

// LeaderCh reports leadership changes of this node.
func (r *Raft) LeaderCh() <-chan bool { return r.raft.LeaderCh() }

// Server is a member of the raft configuration.
type Server struct {
	ID    string
	Voter bool
}

// Servers returns the latest raft configuration.
func (r *Raft) Servers() ([]Server, error) {
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, translate(err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddNonvoter adds id (whose raft address is its id) as a non-voter and
// returns the index of the configuration change.
func (r *Raft) AddNonvoter(id string) (uint64, error) {
	f := r.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(id), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		return 0, translate(err)
	}
	return f.Index(), nil
}

// AddVoter adds or promotes id to a voter.
func (r *Raft) AddVoter(id string) (uint64, error) {
	f := r.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(id), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		return 0, translate(err)
	}
	return f.Index(), nil
}

// RemoveServer removes id from the raft configuration.
func (r *Raft) RemoveServer(id string) error {
	return translate(r.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error())
}

// TransferLeadership hands leadership to id, or to the most up-to-date
// voter when id is empty.
func (r *Raft) TransferLeadership(id string) error {
	if id == "" {
		return translate(r.raft.LeadershipTransfer().Error())
	}
	return translate(r.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(id)).Error())
}

// Snapshot forces a snapshot now (used by tests and before backups).
func (r *Raft) Snapshot() error { return translate(r.raft.Snapshot().Error()) }

// Close shuts raft down and closes the transport, log and stable store. The
// catalog stays open; its owner closes it.
func (r *Raft) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.watching.Wait()
		errs := []error{r.raft.Shutdown().Error()}
		// Our outbound streams end cleanly before the transport and the
		// fabric go: a peer then reads the end of the stream, not a reset
		// that its transport would log as a failed decode.
		r.trans.CloseStreams()
		errs = append(errs, r.trans.Close(), r.logs.Close(), r.stable.Close())
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

var _ io.Closer = (*Raft)(nil)

// logCacheSize holds a few of raft's largest batches: replication and the
// followers' FSM read entries soon after they are written.
func logCacheSize(maxAppendEntries int) int { return 2 * maxAppendEntries }

// unpipelined is raft's network transport without pipelined replication.
// In hashicorp/raft v1.8 a pipeline whose response decoder has stopped (the
// follower answered with a newer term or a failure) keeps accepting sends
// until its buffers fill, then blocks the replication goroutine forever:
// replication to that follower stalls while the leader stays leader, and
// raft's Shutdown waits on it without end (seen under load: a node's Close
// hung for minutes). Without a pipeline each AppendEntries is a plain RPC
// with the transport's I/O deadline, and raft still batches entries.
type unpipelined struct{ *raft.NetworkTransport }

func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// LastIndex is the index of the last entry in this node's raft log.
func (r *Raft) LastIndex() uint64 { return r.raft.LastIndex() }
