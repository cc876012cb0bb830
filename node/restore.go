package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/backupfile"
	"github.com/yrd-exchange/yrdnode/internal/fsutil"
	"github.com/yrd-exchange/yrdnode/store"
)

// RestoredAuditPath is where Restore keeps the audit log of the node a
// backup was taken from: signed with that node's key, so it is kept beside
// the new node's own log, not continued (`yrdnode audit verify --file`).
func RestoredAuditPath(dataDir, oldPeer string) string {
	return filepath.Join(dataDir, "restored-audit-"+oldPeer+".db")
}

// Restore makes the initialised, never started node in cfg.DataDir the
// first member of a new cluster whose state is b's catalog: datasets,
// grants, policy, audit anchors and privacy spending as they were. Its
// raft storage gets the catalog as the first snapshot, with this node as
// the only voter (see consensus/DESIGN.md, "Restore and recovery"); the
// member registry starts empty, so the node registers itself once it leads
// and the other cities join it with new tokens.
func Restore(cfg Config, b *backupfile.Backup) error {
	id, err := existingIdentity(cfg)
	if err != nil {
		return err
	}
	for _, p := range []string{cfg.catalogPath(), cfg.raftDir(), cfg.memberPath()} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s has run before (%s exists): restore needs a data dir fresh from init", cfg.DataDir, filepath.Base(p))
		}
	}
	seed, err := extractSection(b, backupfile.SectionCatalog, filepath.Join(cfg.DataDir, "restore-catalog.tmp"))
	if err != nil {
		return err
	}
	defer os.Remove(seed)
	index, err := store.SeedForNewCluster(seed)
	if err != nil {
		return err
	}
	if index != b.Header.CatalogIndex {
		return fmt.Errorf("the catalog in the backup has applied index %d, its header says %d", index, b.Header.CatalogIndex)
	}
	if err := seedRaft(cfg, id.String(), index, seed); err != nil {
		os.RemoveAll(cfg.raftDir()) // leave the data dir as init made it
		return err
	}
	if _, err := extractSection(b, backupfile.SectionAudit, RestoredAuditPath(cfg.DataDir, b.Header.PeerID)); err != nil {
		return err
	}
	return nil
}

func seedRaft(cfg Config, id string, index uint64, seed string) error {
	rc := cfg.Raft
	rc.ID, rc.Dir, rc.Logger = id, cfg.raftDir(), cfg.Logger
	off, err := consensus.OpenOffline(rc)
	if err != nil {
		return err
	}
	f, err := os.Open(seed)
	if err != nil {
		off.Close()
		return err
	}
	defer f.Close()
	return errors.Join(off.Seed(index, f), off.Close())
}

// extractSection copies a section of b to path (mode 0600), synced.
func extractSection(b *backupfile.Backup, name, path string) (string, error) {
	r, err := b.Section(name)
	if err != nil {
		return "", err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	return path, fsutil.WriteFileAtomic(path, data, 0o600)
}
