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
// read barrier so it holds every write acknowledged before the call; and
// this node's own state: its audit log, API keys and certificates, export
// ledger and memory of released groups. Each is a consistent bbolt copy,
// spooled to a file in the data dir first so the header can carry its
// checksum. The node's private keys (node.key, the CA key) never leave it
// through the API; restore takes them from the machine (docs/operations.md).
func (n *Node) writeBackup(ctx context.Context, w io.Writer) error {
	snap, err := n.catalog.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	sources := []struct {
		name  string
		write func(io.Writer) (int64, error)
	}{
		{backupfile.SectionCatalog, snap.WriteTo},
		{backupfile.SectionAudit, n.auditLog.Backup},
		{backupfile.SectionCredentials, n.creds.Backup},
		{backupfile.SectionExports, n.data.exports.Backup},
		{backupfile.SectionDifference, n.data.differ.Backup},
	}
	var parts []backupfile.Part
	defer func() {
		for _, p := range parts {
			dropSpool(p.File)
		}
	}()
	for _, s := range sources {
		f, err := n.spool(s.name, s.write)
		if err != nil {
			return err
		}
		parts = append(parts, backupfile.Part{Name: s.name, File: f})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return backupfile.Write(w, n.backupHeader(snap.Index()), parts)
}

func (n *Node) backupHeader(index uint64) backupfile.Header {
	h := backupfile.Header{Created: time.Now().UTC(), City: n.cfg.City, PeerID: n.id.String(),
		NodeVersion: n.cfg.Version, CatalogIndex: index}
	for _, m := range n.catalog.Members() {
		h.Cities = append(h.Cities, m.GetCity())
	}
	return h
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
