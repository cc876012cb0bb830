package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/internal/backupfile"
	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/node"
)

// The operator's way back: restore seeds a new cluster from a backup, and
// cluster recover rewrites a stopped survivor's raft configuration after
// its cluster lost quorum for good. Both work on a stopped node's data
// dir, without a node to talk to. docs/operations.md has the procedures.

// checkBackupFile opens path and checks every checksum in it.
func checkBackupFile(path string) (backupfile.Header, error) {
	b, err := backupfile.Open(path)
	if err != nil {
		return backupfile.Header{}, fmt.Errorf("backup refused: %w", err)
	}
	defer b.Close()
	return b.Header, nil
}

func printBackupHeader(env Env, cf *clientFlags, path string, h backupfile.Header) error {
	if cf.output == "json" {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		data, err := json.Marshal(struct {
			File  string `json:"file"`
			Bytes int64  `json:"bytes"`
			backupfile.Header
		}{path, st.Size(), h})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(env.Stdout, string(data))
		return err
	}
	var size int64
	for _, s := range h.Sections {
		size += s.Size
	}
	fmt.Fprintf(env.Stdout, "wrote %s: the catalog at raft index %d and the node state of %s (%s), %d bytes, checksums verified\n",
		path, h.CatalogIndex, h.City, h.PeerID, size)
	fmt.Fprintf(env.Stdout, "it holds API key hashes: keep it as private as the data dir (mode 0600)\n")
	fmt.Fprintf(env.Stdout, "to seed a new cluster from it: yrdnode restore --from %s --data-dir DIR --keys COPY_OF_OLD_DATA_DIR (see docs/operations.md)\n", path)
	return nil
}

// restoreJSON is what restore prints with -o json: the new node (city,
// data dir, peer id), the backup it was seeded from and what of the old
// node came back.
type restoreJSON struct {
	City             string    `json:"city"`
	DataDir          string    `json:"data_dir"`
	PeerID           string    `json:"peer_id"`
	CatalogIndex     uint64    `json:"catalog_index"`
	Created          time.Time `json:"created"`
	FromCity         string    `json:"from_city"`
	FromPeerID       string    `json:"from_peer_id"`
	Continued        bool      `json:"continued"`
	Credentials      bool      `json:"credentials"`
	RestoredAuditLog string    `json:"restored_audit_log,omitempty"`
	Join             bool      `json:"join"` // the node's state only: it joins a restored cluster next
}

func runRestore(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	from := fs.String("from", "", "the backup file written by `yrdnode backup` (required)")
	dataDir := dataDirFlag(fs)
	city := fs.String("city", "", "delta city id the new node serves (default: the city the backup was taken on)")
	api := fs.String("api", "0.0.0.0:7401", "client API listen address")
	fabricAddr := fs.String("fabric", "/ip4/0.0.0.0/tcp/7411", "node-to-node libp2p listen multiaddrs, comma-separated")
	var opts node.RestoreOptions
	fs.StringVar(&opts.KeysDir, "keys", "", "a dir with the old node's node.key and ca/ (a copy of its data dir): the node comes back whole")
	fs.BoolVar(&opts.ForgetReleases, "forget-releases", false, "without the old keys: a new identity; API keys kept, export ledger and released-group memory start empty")
	fs.BoolVar(&opts.Join, "join", false, "restore the node's own state only; it then joins the cluster another city's backup seeded (cluster join)")
	return func(_ context.Context, _ []string) error {
		if *from == "" || *dataDir == "" {
			return usageError{"restore needs --from FILE and --data-dir DIR"}
		}
		var phase atomic.Value
		phase.Store("checking " + *from)
		start := time.Now()
		stop := sync.OnceFunc(startProgress(env, func() string {
			return fmt.Sprintf("restore: %s (%s)", phase.Load(), time.Since(start).Round(time.Second))
		}))
		defer stop()
		b, err := backupfile.Open(*from)
		if err != nil {
			return fmt.Errorf("backup refused, nothing written: %w", err)
		}
		defer b.Close()
		if *city == "" {
			*city = b.Header.City
		}
		if _, ok := cities.Lookup(*city); !ok {
			return usageError{fmt.Sprintf("--city: %q is not a delta city id (known: %s)", *city, strings.Join(cities.IDs(), ", "))}
		}
		nf := nodeFile{City: *city, APIAddr: *api, FabricAddrs: strings.Split(*fabricAddr, ",")}
		phase.Store("writing " + *dataDir)
		res, err := restoreInto(*dataDir, nf, b, opts, env)
		stop()
		if err != nil {
			return err
		}
		return printRestore(env, cf, restoreJSON{City: *city, DataDir: *dataDir, PeerID: res.PeerID,
			CatalogIndex: b.Header.CatalogIndex, Created: b.Header.Created, FromCity: b.Header.City, FromPeerID: b.Header.PeerID,
			Continued: res.Continued, Credentials: res.Credentials, RestoredAuditLog: res.OldAuditLog, Join: opts.Join})
	}
}

func printRestore(env Env, cf *clientFlags, r restoreJSON) error {
	if cf.output == "json" {
		return printValue(env.Stdout, r)
	}
	if r.Join {
		fmt.Fprintf(env.Stdout, "restored the node state of %s (taken %s) into %s\npeer id: %s\n", r.FromCity, r.Created.Format(time.RFC3339), r.DataDir, r.PeerID)
	} else {
		fmt.Fprintf(env.Stdout, "restored the catalog of %s (raft index %d, taken %s) into %s\npeer id: %s\n",
			r.FromCity, r.CatalogIndex, r.Created.Format(time.RFC3339), r.DataDir, r.PeerID)
	}
	switch {
	case r.Continued:
		fmt.Fprintln(env.Stdout, "the node is the old one: its identity, CA, API keys, certificates, export ledger and memory of released groups are back, and its audit log goes on")
	case r.Credentials:
		fmt.Fprintln(env.Stdout, "a new identity and CA: the old API keys work; client certificates must be issued again; the export ledger and memory of released groups start empty")
	}
	if r.RestoredAuditLog != "" {
		fmt.Fprintf(env.Stdout, "the old node's audit log is kept in %s\n", r.RestoredAuditLog)
	}
	if r.Join {
		fmt.Fprintf(env.Stdout, "next: 'yrdnode cluster join --data-dir %s --token ...' with a token from the restored cluster\n", r.DataDir)
		return nil
	}
	fmt.Fprintf(env.Stdout, "next: 'yrdnode serve --data-dir %s' (the first node of the new cluster); the other cities join it with tokens\n", r.DataDir)
	return nil
}

// restoreInto initialises dataDir as init does and restores b into it. The
// dir must be missing or empty; on failure it is left as it was found.
func restoreInto(dataDir string, nf nodeFile, b *backupfile.Backup, opts node.RestoreOptions, env Env) (node.RestoreResult, error) {
	entries, err := os.ReadDir(dataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return node.RestoreResult{}, err
	}
	if len(entries) > 0 {
		return node.RestoreResult{}, fmt.Errorf("%s is not empty; restore needs a new data dir", dataDir)
	}
	created := errors.Is(err, os.ErrNotExist)
	res, err := initAndRestore(dataDir, nf, b, opts, env)
	if err != nil {
		if created {
			os.RemoveAll(dataDir)
		} else {
			emptyDir(dataDir)
		}
		return node.RestoreResult{}, err
	}
	return res, nil
}

func initAndRestore(dataDir string, nf nodeFile, b *backupfile.Backup, opts node.RestoreOptions, env Env) (node.RestoreResult, error) {
	cfg, err := nodeConfig(nf, dataDir, slog.New(slog.DiscardHandler), env.Version)
	if err != nil {
		return node.RestoreResult{}, err
	}
	if _, err := node.New(cfg); err != nil { // creates an identity key, as init does
		return node.RestoreResult{}, err
	}
	if err := writeConfigFile(filepath.Join(dataDir, configFileName), fileConfigFromNodeFile(nf)); err != nil {
		return node.RestoreResult{}, err
	}
	res, err := node.Restore(cfg, b, opts)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// emptyDir removes what a failed restore put into a dir that was empty.
func emptyDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// recoverJSON is what cluster recover prints with -o json: the raft
// configuration it set.
type recoverJSON struct {
	DataDir string          `json:"data_dir"`
	Peers   string          `json:"peers_file"`
	Voters  int             `json:"voters"`
	Servers []recoverServer `json:"servers"`
}

type recoverServer struct {
	ID    string `json:"id"`
	Voter bool   `json:"voter"`
}

func runClusterRecover(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	peers := fs.String("peers", "", "JSON list of the surviving servers, [{\"id\": PEER_ID, \"voter\": true}, ...] (required)")
	dataDir := dataDirFlag(fs)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	return func(_ context.Context, _ []string) error {
		if *peers == "" || *dataDir == "" {
			return usageError{"cluster recover needs --peers FILE and --data-dir DIR (run it while the node is stopped)"}
		}
		servers, err := node.ReadRecoveryPeers(*peers)
		if err != nil {
			return fmt.Errorf("peers file refused, nothing changed: %w", err)
		}
		log, err := newLogger(env, *logLevel, "text")
		if err != nil {
			return err
		}
		lc, err := readDataDirConfig(*dataDir)
		if err != nil {
			return err
		}
		cfg, err := lc.nodeConfig(*dataDir, log, env.Version)
		if err != nil {
			return err
		}
		if err := node.RecoverCluster(cfg, servers); err != nil {
			return fmt.Errorf("cluster recover: %w", err)
		}
		voters := 0
		for _, s := range servers {
			if s.Voter {
				voters++
			}
		}
		if cf.output == "json" {
			out := recoverJSON{DataDir: *dataDir, Peers: *peers, Voters: voters, Servers: []recoverServer{}}
			for _, s := range servers {
				out.Servers = append(out.Servers, recoverServer{ID: s.ID, Voter: s.Voter})
			}
			return printValue(env.Stdout, out)
		}
		fmt.Fprintf(env.Stdout, "recovered %s: its raft configuration is now the %d servers of %s (%d voters)\n", *dataDir, len(servers), *peers, voters)
		fmt.Fprintf(env.Stdout, "next: run this on every other survivor with the same file, start them ('yrdnode serve --data-dir %s'),\nthen remove the lost members ('yrdnode cluster remove CITY')\n", *dataDir)
		return nil
	}
}
