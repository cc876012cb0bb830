package consensus

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

// Observer is told of every command this node applies, after it is durable
// in the catalog. It runs on the FSM goroutine and must not block.
type Observer func(cmd *yrdv1.Command, res *yrdv1.CommandResult)

// fsm bridges raft to the catalog: each batch of log entries is applied in
// one bbolt transaction, so throughput grows with the batch raft hands us.
type fsm struct {
	catalog *store.Catalog
	observe Observer
	log     *slog.Logger
	failure *storageFailure // set by Open; nil in tests that build an fsm alone
	failed  error           // sticky catalog failure (FSM goroutine only)

	mu      sync.Mutex
	applied chan struct{} // closed and replaced after every applied batch
}

var (
	_ raft.FSM         = (*fsm)(nil)
	_ raft.BatchingFSM = (*fsm)(nil)
)

func newFSM(c *store.Catalog, observe Observer, log *slog.Logger) *fsm {
	return &fsm{catalog: c, observe: observe, log: log, applied: make(chan struct{})}
}

// appliedCh returns a channel closed when the next batch is applied.
func (f *fsm) appliedCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *fsm) notifyApplied() {
	f.mu.Lock()
	close(f.applied)
	f.applied = make(chan struct{})
	f.mu.Unlock()
}

func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies commands in log order. Entries at or below the
// catalog's applied index are skipped: after a restart raft replays the log
// from the last snapshot, but the catalog file already holds their effect.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	results := make([]interface{}, len(logs))
	if len(logs) == 0 {
		return results
	}
	if f.failed != nil {
		return fillErr(results, f.failed)
	}
	applied := f.catalog.AppliedIndex()
	last := logs[len(logs)-1].Index
	if last <= applied {
		return results
	}
	cmds := make([]*yrdv1.Command, len(logs))
	err := f.catalog.Update(last, func(tx *store.Tx) error {
		for i, l := range logs {
			if l.Index <= applied || l.Type != raft.LogCommand {
				continue
			}
			cmd := new(yrdv1.Command)
			if err := proto.Unmarshal(l.Data, cmd); err != nil {
				// A command that does not decode was still committed;
				// every replica sees the same bytes and rejects it alike.
				results[i] = &yrdv1.CommandResult{ErrorCode: yrdv1.ErrorCode_ERROR_CODE_INVALID,
					ErrorMessage: fmt.Sprintf("undecodable command at index %d: %v", l.Index, err), Index: l.Index}
				continue
			}
			res, err := applyCommand(tx, cmd)
			if err != nil {
				return fmt.Errorf("index %d: %w", l.Index, err)
			}
			res.Index = l.Index
			results[i], cmds[i] = res, cmd
		}
		return nil
	})
	if err != nil {
		// The catalog could not record committed entries. Applying later
		// ones would let this replica diverge silently, so it applies
		// nothing more: every result is the error (the leader's caller is
		// told, not acknowledged), and the node stops (storageFailure).
		// The catalog still holds what it applied before; a restart
		// replays the log from there.
		what := fmt.Sprintf("catalog (apply %d-%d)", logs[0].Index, last)
		f.failed = fmt.Errorf("%w: %s: %w", ErrStorageFailed, what, err)
		if f.failure != nil {
			f.failure.fail(what, err)
		} else {
			f.log.Error("catalog apply failed; applying nothing more", "err", err)
		}
		return fillErr(results, f.failed)
	}
	f.notifyApplied()
	if f.observe != nil {
		for i, cmd := range cmds {
			if cmd != nil {
				f.observe(cmd, results[i].(*yrdv1.CommandResult))
			}
		}
	}
	return results
}

func fillErr(results []interface{}, err error) []interface{} {
	for i := range results {
		results[i] = err
	}
	return results
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.catalog.Snapshot()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot{snap}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.catalog.Restore(rc); err != nil {
		return err
	}
	f.notifyApplied()
	return nil
}

type fsmSnapshot struct{ snap *store.Snapshot }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() { s.snap.Close() }
