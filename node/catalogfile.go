package node

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/yrd-exchange/yrdnode/internal/fsutil"
	"github.com/yrd-exchange/yrdnode/store"
)

// openCatalog opens the catalog without fsync on commit. The catalog is a
// materialised view of raft's log and snapshots, which are fsynced; syncing
// it as well would double the disk flushes on the write path. The price is
// that after an unclean stop (crash, power loss) the file cannot be trusted,
// so it is set aside and rebuilt: raft restores its latest snapshot and
// replays the log after it. A clean Close leaves a marker saying the file
// is whole.
func (n *Node) openCatalog() (*store.Catalog, error) { return openCatalogFile(n.cfg, n.log) }

func openCatalogFile(cfg Config, log *slog.Logger) (*store.Catalog, error) {
	path, clean := cfg.catalogPath(), cfg.cleanPath()
	_, cleanErr := os.Stat(clean)
	if _, err := os.Stat(path); err == nil && errors.Is(cleanErr, os.ErrNotExist) {
		log.Warn("catalog was not closed cleanly; rebuilding it from the raft snapshot and log", "set_aside", path+".unclean")
		if err := os.Rename(path, path+".unclean"); err != nil {
			return nil, err
		}
	}
	c, err := store.OpenCatalog(path, store.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	// From here on a crash must leave no marker.
	if err := os.Remove(clean); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.Close()
		return nil, err
	}
	return c, fsutil.SyncDir(filepath.Dir(path))
}

// markClean records that the catalog file was synced and closed.
func markClean(path string) error { return fsutil.WriteFileAtomic(path, nil, 0o600) }
