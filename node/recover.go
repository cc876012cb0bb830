package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
)

// RecoveryPeer is one entry of the peers file an operator writes for
// `yrdnode cluster recover`: a server of the raft configuration to recover
// into. Raft names servers by the node's peer id, and its address is the
// same peer id (the fabric resolves it), so address may be left out.
type RecoveryPeer struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	Voter   *bool  `json:"voter"`
}

// ReadRecoveryPeers reads and checks a peers file: a JSON list of
// {"id", "address", "voter"}. Every problem is named with its entry.
func ReadRecoveryPeers(path string) ([]consensus.Server, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []RecoveryPeer
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("%s: not a list of {\"id\", \"address\", \"voter\"}: %w", path, err)
	}
	servers, err := recoveryServers(entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return servers, nil
}

func recoveryServers(entries []RecoveryPeer) ([]consensus.Server, error) {
	var servers []consensus.Server
	voters := 0
	for i, e := range entries {
		at := fmt.Sprintf("entry %d", i+1)
		if _, err := peer.Decode(e.ID); err != nil {
			return nil, fmt.Errorf("%s: id %q is not a peer id (see `yrdnode cluster status`): %v", at, e.ID, err)
		}
		if e.Address != "" && e.Address != e.ID {
			return nil, fmt.Errorf("%s: address %q differs from the id; raft addresses are peer ids here, leave it out", at, e.Address)
		}
		if e.Voter == nil {
			return nil, fmt.Errorf("%s (%s): \"voter\" is required (true or false)", at, e.ID)
		}
		if slices.ContainsFunc(servers, func(s consensus.Server) bool { return s.ID == e.ID }) {
			return nil, fmt.Errorf("%s: %s is listed twice", at, e.ID)
		}
		if *e.Voter {
			voters++
		}
		servers = append(servers, consensus.Server{ID: e.ID, Voter: *e.Voter})
	}
	if voters == 0 {
		return nil, errors.New("no voter listed; a cluster needs at least one")
	}
	return servers, nil
}

// RecoverCluster rewrites the raft configuration of the stopped node in
// cfg.DataDir to servers (raft's RecoverCluster), after its cluster lost a
// quorum of voters for good. Every survivor runs it with the same servers
// while stopped, then starts as usual. The node must be one of servers.
func RecoverCluster(cfg Config, servers []consensus.Server) error {
	id, err := existingIdentity(cfg)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(servers, func(s consensus.Server) bool { return s.ID == id.String() }) {
		return fmt.Errorf("this node (%s, %s) is not in the peers file; list every survivor, this one included", cfg.City, id)
	}
	rc := cfg.Raft
	rc.ID, rc.Dir, rc.Logger = id.String(), cfg.raftDir(), cfg.Logger
	off, err := consensus.OpenOffline(rc)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	defer off.Close()
	if has, err := off.HasState(); err != nil || !has {
		return errors.Join(err, fmt.Errorf("%s holds no raft state: nothing to recover", cfg.raftDir()))
	}
	// Opened after raft.db's lock is held: a catalog without its clean
	// marker is set aside, which must never happen under a running node.
	catalog, err := openCatalogFile(cfg, cfg.Logger)
	if err != nil {
		return fmt.Errorf("open catalog: %w", err)
	}
	err = off.Recover(catalog, servers)
	if cerr := catalog.Close(); err == nil && cerr == nil {
		err = markClean(cfg.cleanPath())
	} else if err == nil {
		err = cerr
	}
	return err
}

// existingIdentity reads the node's key without creating one: recovery and
// restore work on a data dir that init made.
func existingIdentity(cfg Config) (peer.ID, error) {
	if _, err := os.Stat(cfg.keyPath()); err != nil {
		return "", fmt.Errorf("%s has no node identity (%v): is it a data dir made by `yrdnode init`?", cfg.DataDir, err)
	}
	key, _, err := fabric.LoadOrCreateKey(cfg.keyPath())
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	return peer.IDFromPrivateKey(key)
}
