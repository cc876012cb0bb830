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
	fmt.Fprintf(env.Stdout, "wrote %s: the catalog at raft index %d and the audit log of %s (%s), %d bytes, checksums verified\n",
		path, h.CatalogIndex, h.City, h.PeerID, size)
	fmt.Fprintf(env.Stdout, "to seed a new cluster from it: yrdnode restore --from %s --data-dir DIR (see docs/operations.md)\n", path)
	return nil
}

// restoreJSON is what restore prints with -o json: the new node (city,
// data dir, peer id) and the backup it was seeded from.
type restoreJSON struct {
	City             string    `json:"city"`
	DataDir          string    `json:"data_dir"`
	PeerID           string    `json:"peer_id"`
	CatalogIndex     uint64    `json:"catalog_index"`
	Created          time.Time `json:"created"`
	FromCity         string    `json:"from_city"`
	FromPeerID       string    `json:"from_peer_id"`
	RestoredAuditLog string    `json:"restored_audit_log"`
}

func runRestore(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	from := fs.String("from", "", "the backup file written by `yrdnode backup` (required)")
	dataDir := dataDirFlag(fs)
	city := fs.String("city", "", "delta city id the new node serves (default: the city the backup was taken on)")
	api := fs.String("api", "0.0.0.0:7401", "client API listen address")
	fabricAddr := fs.String("fabric", "/ip4/0.0.0.0/tcp/7411", "node-to-node libp2p listen multiaddrs, comma-separated")
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
		id, err := restoreInto(*dataDir, nf, b, env)
		stop()
		if err != nil {
			return err
		}
		h := b.Header
		audit := node.RestoredAuditPath(*dataDir, h.PeerID)
		if cf.output == "json" {
			return printValue(env.Stdout, restoreJSON{City: *city, CatalogIndex: h.CatalogIndex, Created: h.Created,
				DataDir: *dataDir, PeerID: id, FromCity: h.City, FromPeerID: h.PeerID, RestoredAuditLog: audit})
		}
		fmt.Fprintf(env.Stdout, "restored the catalog of %s (raft index %d, taken %s) into %s\npeer id: %s\n",
			h.City, h.CatalogIndex, h.Created.Format(time.RFC3339), *dataDir, id)
		fmt.Fprintf(env.Stdout, "the old node's audit log is kept in %s\n", audit)
		fmt.Fprintf(env.Stdout, "next: 'yrdnode serve --data-dir %s' (the first node of the new cluster); the other cities join it with tokens\n", *dataDir)
		return nil
	}
}

// restoreInto initialises dataDir as init does and restores b into it. The
// dir must be missing or empty; on failure it is left as it was found.
func restoreInto(dataDir string, nf nodeFile, b *backupfile.Backup, env Env) (string, error) {
	entries, err := os.ReadDir(dataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("%s is not empty; restore needs a new data dir", dataDir)
	}
	created := errors.Is(err, os.ErrNotExist)
	id, err := initAndRestore(dataDir, nf, b, env)
	if err != nil {
		if created {
			os.RemoveAll(dataDir)
		} else {
			emptyDir(dataDir)
		}
		return "", err
	}
	return id, nil
}

func initAndRestore(dataDir string, nf nodeFile, b *backupfile.Backup, env Env) (string, error) {
	cfg, err := nodeConfig(nf, dataDir, slog.New(slog.DiscardHandler), env.Version)
	if err != nil {
		return "", err
	}
	n, err := node.New(cfg) // creates the identity key
	if err != nil {
		return "", err
	}
	if err := writeConfigFile(filepath.Join(dataDir, configFileName), fileConfigFromNodeFile(nf)); err != nil {
		return "", err
	}
	if err := node.Restore(cfg, b); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	return n.PeerID().String(), nil
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
