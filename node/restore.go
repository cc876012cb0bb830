package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/backupfile"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/internal/fsutil"
	"github.com/yrd-exchange/yrdnode/store"
)

// RestoredAuditPath is where Restore keeps the audit log of the node a
// backup was taken from when the new node has another identity: signed
// with the old node's key, so it is kept beside the new node's own log,
// not continued (`yrdnode audit verify --file`).
func RestoredAuditPath(dataDir, oldPeer string) string {
	return filepath.Join(dataDir, "restored-audit-"+oldPeer+".db")
}

// RestoreOptions say how much of the old node a restore brings back
// besides the catalog.
type RestoreOptions struct {
	// KeysDir holds the old node's private keys as its data dir did:
	// node.key and ca/ (operator.key too if it is there). With them the
	// restored node is the old one: the same identity, CA, API keys and
	// certificates, pseudonyms, export ledger and memory of released
	// groups, and its audit log goes on.
	KeysDir string
	// ForgetReleases accepts a new identity for a node whose backup holds
	// its own state: its API keys come back, but the export ledger and the
	// memory of released groups, keyed by the old identity, start empty,
	// so the difference check no longer knows what was released before.
	ForgetReleases bool
	// Join restores the node's own state only, for a node that then joins
	// the cluster another city's backup seeded (`cluster join`): the
	// catalog comes to it from that cluster.
	Join bool
}

// RestoreResult says what a restore brought back.
type RestoreResult struct {
	PeerID string
	// Continued is true when the node is the old one (RestoreOptions.KeysDir).
	Continued bool
	// Credentials is true when the old node's API keys work on the new one.
	Credentials bool
	// OldAuditLog is where the old node's audit log was kept when it is
	// not continued; "" when it is.
	OldAuditLog string
}

// Restore makes the initialised, never started node in cfg.DataDir the
// first member of a new cluster whose state is b's catalog: datasets,
// grants, policy, audit anchors and privacy spending as they were. Its
// raft storage gets the catalog as the first snapshot, with this node as
// the only voter (see consensus/DESIGN.md, "Restore and recovery"); the
// member registry starts empty, so the node registers itself once it leads
// and the other cities join it with new tokens. The node's own state comes
// back as opts allow (RestoreOptions); a backup of another city's node
// gives the catalog only.
func Restore(cfg Config, b *backupfile.Backup, opts RestoreOptions) (RestoreResult, error) {
	if err := freshFromInit(cfg); err != nil {
		return RestoreResult{}, err
	}
	own := cfg.City == b.Header.City && b.Has(backupfile.SectionCredentials)
	if err := checkRestoreOptions(cfg, b, opts, own); err != nil {
		return RestoreResult{}, err
	}
	if own && opts.KeysDir != "" {
		if err := copyKeys(cfg, opts.KeysDir, b.Header.PeerID); err != nil {
			return RestoreResult{}, err
		}
	}
	id, err := existingIdentity(cfg)
	if err != nil {
		return RestoreResult{}, err
	}
	if !opts.Join {
		if err := seedCatalog(cfg, b, id.String()); err != nil {
			return RestoreResult{}, err
		}
	}
	res, err := restoreNodeState(cfg, b, own, opts)
	res.PeerID = id.String()
	return res, err
}

// freshFromInit refuses a data dir that has served: its raft state would
// be mixed with the backup's.
func freshFromInit(cfg Config) error {
	if _, err := existingIdentity(cfg); err != nil {
		return err
	}
	for _, p := range []string{cfg.catalogPath(), cfg.raftDir(), cfg.memberPath(), cfg.credsPath(), cfg.auditPath()} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s has run before (%s exists): restore needs a data dir fresh from init", cfg.DataDir, filepath.Base(p))
		}
	}
	return nil
}

// checkRestoreOptions refuses, before anything is written, a restore that
// would silently drop what keeps later answers safe: the memory of what
// this node released is only usable under its old identity.
func checkRestoreOptions(cfg Config, b *backupfile.Backup, opts RestoreOptions, own bool) error {
	h := b.Header
	switch {
	case opts.KeysDir != "" && opts.ForgetReleases:
		return errors.New("--keys and --forget-releases exclude each other: with the keys nothing is forgotten")
	case opts.KeysDir != "" && cfg.City != h.City:
		return fmt.Errorf("--keys: the backup was taken on %s's node; this node is %s's (restore it with --city %s)", h.City, cfg.City, h.City)
	case opts.KeysDir != "" && !own:
		return errors.New("--keys: the backup holds no node state (it was made by an older yrdnode); restore it without --keys")
	case opts.Join && !own:
		return fmt.Errorf("--join restores a node's own state, and this backup holds none of %s's node: join with a new data dir instead", cfg.City)
	case own && opts.KeysDir == "" && !opts.ForgetReleases:
		return fmt.Errorf("the backup holds %s's node state (API keys, the export ledger, the memory of released groups), keyed by its identity %s: "+
			"pass --keys DIR with the old node's node.key and ca/ (from the machine's backup) to bring the node back whole, "+
			"or --forget-releases to start with a new identity, keep the API keys and forget what was released before", h.City, h.PeerID)
	}
	return nil
}

// copyKeys puts the old node's private keys into the data dir, replacing
// the identity init made, after checking they are the backup's node's.
func copyKeys(cfg Config, dir, wantPeer string) error {
	key, err := fabric.LoadKey(filepath.Join(dir, "node.key"))
	if err != nil {
		return fmt.Errorf("--keys: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("--keys: %w", err)
	}
	if id.String() != wantPeer {
		return fmt.Errorf("--keys: %s is the key of %s; the backup was taken on %s", filepath.Join(dir, "node.key"), id, wantPeer)
	}
	own := Config{DataDir: dir}
	copies := []struct {
		from, to string
		optional bool
	}{
		{CAPath(dir), CAPath(cfg.DataDir), false},
		{filepath.Join(own.caDir(), "ca.key"), filepath.Join(cfg.caDir(), "ca.key"), false},
		{own.operatorKeyPath(), cfg.operatorKeyPath(), true},
		{own.keyPath(), cfg.keyPath(), false}, // last: until here init's identity stands
	}
	if err := os.MkdirAll(cfg.caDir(), 0o700); err != nil {
		return err
	}
	for _, c := range copies {
		data, err := os.ReadFile(c.from)
		if errors.Is(err, os.ErrNotExist) && c.optional {
			continue
		}
		if err != nil {
			return fmt.Errorf("--keys: %w", err)
		}
		if err := fsutil.WriteFileAtomic(c.to, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// seedCatalog makes b's catalog the first raft snapshot of a cluster whose
// only voter is id.
func seedCatalog(cfg Config, b *backupfile.Backup, id string) error {
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
	if err := seedRaft(cfg, id, index, seed); err != nil {
		os.RemoveAll(cfg.raftDir()) // leave the data dir as init made it
		return err
	}
	return nil
}

// restoreNodeState writes the old node's own files: all of them when it
// comes back whole, its API keys alone under a new identity, and its
// audit log beside the new one whenever the identity is new.
func restoreNodeState(cfg Config, b *backupfile.Backup, own bool, opts RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	sections := map[string]string{}
	switch {
	case own && opts.KeysDir != "":
		res.Continued, res.Credentials = true, true
		sections[backupfile.SectionAudit] = cfg.auditPath()
		sections[backupfile.SectionCredentials] = cfg.credsPath()
		sections[backupfile.SectionExports] = cfg.ledgerPath()
		sections[backupfile.SectionDifference] = cfg.diffCheckPath()
	case own:
		res.Credentials = true
		sections[backupfile.SectionCredentials] = cfg.credsPath()
		fallthrough
	default:
		res.OldAuditLog = RestoredAuditPath(cfg.DataDir, b.Header.PeerID)
		sections[backupfile.SectionAudit] = res.OldAuditLog
	}
	for name, path := range sections {
		if _, err := extractSection(b, name, path); err != nil {
			return res, err
		}
	}
	return res, nil
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
