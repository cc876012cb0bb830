package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/backupfile"
)

// writeBackup writes a backup file (internal/backupfile) to w: the catalog,
// which is the whole replicated state (datasets, grants, policy, member
// registry, audit anchors, privacy spending), taken after a linearizable
// read barrier so it holds every write acknowledged before the call, and
// this node's audit log. Both are consistent bbolt copies, spooled to
// files in the data dir first so the header can carry their checksums.
func (n *Node) writeBackup(ctx context.Context, w io.Writer) error {
	snap, err := n.catalog.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	catalog, err := n.spool("catalog", snap.WriteTo)
	if err != nil {
		return err
	}
	defer dropSpool(catalog)
	auditLog, err := n.spool("audit", n.auditLog.Backup)
	if err != nil {
		return err
	}
	defer dropSpool(auditLog)
	h := backupfile.Header{Created: time.Now().UTC(), City: n.cfg.City, PeerID: n.id.String(),
		NodeVersion: n.cfg.Version, CatalogIndex: snap.Index()}
	for _, m := range n.catalog.Members() {
		h.Cities = append(h.Cities, m.GetCity())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return backupfile.Write(w, h, []backupfile.Part{
		{Name: backupfile.SectionCatalog, File: catalog},
		{Name: backupfile.SectionAudit, File: auditLog},
	})
}

// spool writes what write produces to a new private file in the data dir.
func (n *Node) spool(what string, write func(io.Writer) (int64, error)) (*os.File, error) {
	f, err := os.CreateTemp(n.cfg.DataDir, "backup-"+what+"-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if _, err := write(f); err != nil {
		dropSpool(f)
		return nil, fmt.Errorf("backup: copy the %s: %w", what, err)
	}
	return f, nil
}

func dropSpool(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}
