package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/fsutil"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The member cache is a copy of the member registry kept beside the
// catalog. A node whose catalog was rebuilt after a crash (or has not
// caught up after joining) has an empty registry until raft replays it,
// and raft cannot replay without reaching its peers: the cache tells the
// gate whom to admit and the fabric where they are until the registry is
// back. Once the node is ready, the registry alone decides.
//
// It was once called peers.json, which an operator who knows Consul takes
// for raft's recovery file; it is not one (recovery reads an explicit
// file, see `yrdnode cluster recover`), so it has a name nobody mistakes.

func (c Config) peersPath() string { return filepath.Join(c.DataDir, "members.cache.json") }

// legacyPeersPath is the cache's name before it was renamed.
func (c Config) legacyPeersPath() string { return filepath.Join(c.DataDir, "peers.json") }

// loadMemberCache reads the member cache, first moving a cache under its
// old name to the new one (a data dir from before the rename).
func loadMemberCache(c Config) ([]*yrdv1.Member, error) {
	if _, err := os.Stat(c.peersPath()); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(c.legacyPeersPath(), c.peersPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("moving the member cache from %s: %w", c.legacyPeersPath(), err)
		}
	}
	return loadPeers(c.peersPath())
}

func savePeers(path string, members []*yrdv1.Member) error {
	var raws []json.RawMessage
	for _, m := range members {
		raw, err := protojson.Marshal(m)
		if err != nil {
			return err
		}
		raws = append(raws, raw)
	}
	data, err := json.MarshalIndent(raws, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

func loadPeers(path string) ([]*yrdv1.Member, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, err
	}
	members := make([]*yrdv1.Member, 0, len(raws))
	for _, raw := range raws {
		m := new(yrdv1.Member)
		if err := protojson.Unmarshal(raw, m); err != nil {
			return nil, err
		}
		members = append(members, m)
	}
	return members, nil
}

func sameMembers(a, b []*yrdv1.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
