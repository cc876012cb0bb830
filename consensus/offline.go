package consensus

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/raft"

	"github.com/yrd-exchange/yrdnode/store"
	"github.com/yrd-exchange/yrdnode/store/wal"
)

// Offline is a node's raft storage opened while raft does not run, for
// the operator's commands that rewrite it: seeding a new cluster from a
// backup and recovering from lost quorum. It holds raft.db's lock, so a
// running node and these commands exclude each other.
type Offline struct {
	cfg    Config
	stable *store.LogStore
	logs   *wal.Log
	snaps  raft.SnapshotStore
}

// OpenOffline opens the raft storage in cfg.Dir, creating it if missing.
func OpenOffline(cfg Config) (*Offline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	stable, logs, snaps, err := openStorage(cfg, options{})
	if err != nil {
		return nil, err
	}
	return &Offline{cfg: cfg, stable: stable, logs: logs, snaps: snaps}, nil
}

// HasState reports whether the storage holds a log, a snapshot or a term.
func (o *Offline) HasState() (bool, error) {
	return raft.HasExistingState(o.logs, o.stable, o.snaps)
}

// Seed makes state (a catalog file that has applied index) the first
// snapshot of a new cluster whose only voter is this node, at term 1. On
// start raft restores it into the catalog and, as the single voter, elects
// this node; the cluster goes on from index+1. It refuses storage that
// already has state.
func (o *Offline) Seed(index uint64, state io.Reader) error {
	if has, err := o.HasState(); err != nil || has {
		return errors.Join(err, errors.New("consensus: seed: the raft dir already has state"))
	}
	if index == 0 {
		return errors.New("consensus: seed: index 0")
	}
	id := raft.ServerID(o.cfg.ID)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: id, Address: raft.ServerAddress(id)}}}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(id))
	defer trans.Close()
	sink, err := o.snaps.Create(raft.SnapshotVersionMax, index, 1, conf, 1, trans)
	if err != nil {
		return fmt.Errorf("consensus: seed: %w", err)
	}
	if _, err := io.Copy(sink, state); err != nil {
		sink.Cancel()
		return fmt.Errorf("consensus: seed: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("consensus: seed: %w", err)
	}
	return nil
}

// Recover replaces the raft configuration with servers (raft addresses
// are the ids), through raft.RecoverCluster: the latest snapshot and every
// entry of the log after it are applied to catalog, a snapshot of the
// result carrying the new configuration is written, and the log is
// emptied. Run on each survivor of a cluster that lost quorum for good,
// with the same servers everywhere; a survivor then starts as a member of
// a cluster of those servers. Entries the survivors hold beyond what a
// lost majority committed are kept (raft cannot tell them apart).
func (o *Offline) Recover(catalog *store.Catalog, servers []Server) error {
	var conf raft.Configuration
	for _, s := range servers {
		suffrage := raft.Nonvoter
		if s.Voter {
			suffrage = raft.Voter
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: suffrage, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.ID)})
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(o.cfg.ID)
	rc.Logger = newHCLogger(o.cfg.Logger)
	_, trans := raft.NewInmemTransport(raft.ServerAddress(o.cfg.ID))
	defer trans.Close()
	f := newFSM(catalog, nil, o.cfg.Logger)
	if err := raft.RecoverCluster(rc, releasingFSM{f}, o.logs, o.stable, o.snaps, trans, conf); err != nil {
		return fmt.Errorf("consensus: recover: %w", err)
	}
	if f.failed != nil {
		return f.failed
	}
	return nil
}

// releasingFSM is the FSM for raft.RecoverCluster, which persists the
// snapshot it takes but never releases it: our snapshot is a catalog read
// transaction, and one left open makes closing the catalog wait forever.
type releasingFSM struct{ *fsm }

func (f releasingFSM) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	return releasedAfterPersist{snap}, nil
}

type releasedAfterPersist struct{ raft.FSMSnapshot }

func (s releasedAfterPersist) Persist(sink raft.SnapshotSink) error {
	defer s.Release()
	return s.FSMSnapshot.Persist(sink)
}

// Close releases the storage and its lock.
func (o *Offline) Close() error {
	return errors.Join(o.logs.Close(), o.stable.Close())
}
