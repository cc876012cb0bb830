// Package node is the yrdnode daemon as a library: New(cfg) → Start → Close.
// It wires the bbolt catalog (store), raft (consensus) and the libp2p fabric
// (internal/fabric) together and serves the client gRPC API. cmd/yrdnode,
// the tests and the testnet all run nodes through this package.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/store/wal"
)

// Config configures one city node.
type Config struct {
	// DataDir holds the node's identity key, catalog, raft log and snapshots.
	// A restarted node needs nothing else.
	DataDir string
	// City is the delta city id this node serves, e.g. "shanghai".
	City string
	// APIAddr is the host:port of the client gRPC API.
	APIAddr string
	// FabricAddrs are the libp2p multiaddrs for node-to-node traffic.
	FabricAddrs []string

	// JoinAddr and JoinToken make a node without state join an existing
	// cluster through the node whose client API is at JoinAddr. A node
	// without state and without JoinAddr bootstraps a new cluster.
	JoinAddr  string
	JoinToken string

	// Raft tuning; ID, Dir and Logger are filled in by the node.
	Raft consensus.Config
	// WALFS, if set, is how the raft log reaches its files instead of the
	// operating system. Only for tests that inject disk faults
	// (store/wal/waltest).
	WALFS wal.FS

	// Off unless an operator turns them on: the fabric talks only to the
	// configured addresses of registered members.
	EnableNATPortMap   bool
	EnableRelay        bool
	EnableHolePunching bool
	EnableAutoNAT      bool

	// AnchorInterval is how often the node records its audit chain head in
	// the replicated catalog.
	AnchorInterval time.Duration

	// ForwardTimeout bounds a write or read-index call forwarded to the leader
	// when the client set no deadline.
	ForwardTimeout time.Duration

	// Data maps the catalog datasets this node owns to their raw data. It
	// is node-local: the catalog never says where data lives.
	Data DataConfig

	// DataRecheckInterval is how often every configured dataset's local
	// data is checked against the catalog again (also after each catalog
	// change of the dataset).
	DataRecheckInterval time.Duration

	// DiffCheckWindow is how long the owner remembers the individuals
	// behind each aggregate group it released, to hold back a later group
	// that differs from one by fewer than k (internal/diffcheck).
	DiffCheckWindow time.Duration

	// DrainTimeout is how long a stopping node lets its running queries
	// finish before it cancels them (Drain).
	DrainTimeout time.Duration

	// QueryTimeout bounds a query whose client set no deadline.
	QueryTimeout time.Duration
	// MaxQueriesPerRequester is how many queries one principal may have
	// running on this node at once; more get ResourceExhausted.
	MaxQueriesPerRequester int
	// MaxResultBytes caps the encoded size of one result, in the form it is
	// sent (rows, or packed columns for a columnar request: the same rows
	// take fewer bytes as columns).
	MaxResultBytes int64

	// AdminAddr is the host:port of the admin listener (HTTPS with the
	// node's certificate: Prometheus /metrics, /healthz, pprof if
	// enabled); "" disables it. Keep it on loopback or a management
	// network: it has no authentication.
	AdminAddr string
	// AdminAddrOptional makes a taken AdminAddr a warning instead of a
	// failed start: for a default address, which two nodes on one host
	// would both be given.
	AdminAddrOptional bool
	// EnablePprof serves net/http/pprof on the admin listener.
	EnablePprof bool
	// RaftLibraryMetrics also exports hashicorp/raft's own metrics
	// (raft_*, through go-metrics' Prometheus sink) on this node's
	// /metrics. They are process-wide, so only one node of a process may
	// ask for them: the daemon's, never the tests' several.
	RaftLibraryMetrics bool

	Version string
	Logger  *slog.Logger
}

// DataConfig says where this node's raw data is.
type DataConfig struct {
	// Files are served through the embedded DuckDB.
	Files []connector.Source
	// Postgres, if set, serves tables of the city's own database.
	Postgres *PostgresData
}

// PostgresData is a PostgreSQL database and the tables it serves.
type PostgresData struct {
	// DSN is a PostgreSQL URL or keyword/value string.
	DSN    string
	Tables []connector.PGTable
}

// DefaultConfig returns a config for a node in dataDir serving city on the
// default ports on loopback.
func DefaultConfig() Config {
	return Config{
		APIAddr:                "127.0.0.1:7401",
		FabricAddrs:            []string{"/ip4/127.0.0.1/tcp/7411"},
		Raft:                   consensus.DefaultConfig(),
		ForwardTimeout:         10 * time.Second,
		AnchorInterval:         10 * time.Second,
		QueryTimeout:           60 * time.Second,
		DrainTimeout:           20 * time.Second,
		DataRecheckInterval:    time.Minute,
		DiffCheckWindow:        diffcheck.DefaultWindow,
		MaxQueriesPerRequester: 4,
		MaxResultBytes:         1 << 30,
		Version:                "dev",
		Logger:                 slog.Default(),
	}
}

// Validate reports the first setting that cannot work, naming it.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("config: DataDir is required")
	}
	if c.City == "" {
		return errors.New("config: City is required")
	}
	if _, ok := cities.Lookup(c.City); !ok {
		return fmt.Errorf("config: City %q is not a delta city id (e.g. shanghai, suzhou-js)", c.City)
	}
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil {
		return fmt.Errorf("config: APIAddr %q: %v", c.APIAddr, err)
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return fmt.Errorf("config: AdminAddr %q: %v", c.AdminAddr, err)
		}
	}
	if len(c.FabricAddrs) == 0 {
		return errors.New("config: FabricAddrs needs at least one multiaddr")
	}
	if (c.JoinAddr == "") != (c.JoinToken == "") {
		return errors.New("config: JoinAddr and JoinToken go together")
	}
	if c.AnchorInterval <= 0 {
		return errors.New("config: AnchorInterval must be positive")
	}
	if c.ForwardTimeout <= 0 {
		return errors.New("config: ForwardTimeout must be positive")
	}
	if c.DrainTimeout <= 0 {
		return errors.New("config: DrainTimeout must be positive")
	}
	if c.QueryTimeout <= 0 || c.MaxQueriesPerRequester <= 0 || c.MaxResultBytes <= 0 || c.DataRecheckInterval <= 0 || c.DiffCheckWindow <= 0 {
		return errors.New("config: QueryTimeout, MaxQueriesPerRequester, MaxResultBytes, DataRecheckInterval and DiffCheckWindow must be positive")
	}
	seen := map[string]bool{}
	for i, f := range c.Data.Files {
		if f.DatasetID == "" || len(f.Paths) == 0 {
			return fmt.Errorf("config: Data.Files[%d]: a dataset id and at least one path are required", i)
		}
		if seen[f.DatasetID] {
			return fmt.Errorf("config: Data.Files[%d]: dataset %q is configured twice", i, f.DatasetID)
		}
		seen[f.DatasetID] = true
	}
	if pg := c.Data.Postgres; pg != nil {
		if pg.DSN == "" {
			return errors.New("config: Data.Postgres.DSN is required")
		}
		for i, t := range pg.Tables {
			if t.DatasetID == "" || t.Table == "" {
				return fmt.Errorf("config: Data.Postgres.Tables[%d]: a dataset id and a table are required", i)
			}
			if seen[t.DatasetID] {
				return fmt.Errorf("config: Data.Postgres.Tables[%d]: dataset %q is configured twice", i, t.DatasetID)
			}
			seen[t.DatasetID] = true
		}
	}
	if c.Logger == nil {
		return errors.New("config: Logger is required")
	}
	rc := c.Raft
	rc.ID, rc.Dir, rc.Logger = "x", "x", c.Logger
	return rc.Validate()
}

// Paths inside the data dir.
func (c Config) keyPath() string       { return filepath.Join(c.DataDir, "node.key") }
func (c Config) catalogPath() string   { return filepath.Join(c.DataDir, "catalog.db") }
func (c Config) ledgerPath() string    { return filepath.Join(c.DataDir, "exports.db") }
func (c Config) diffCheckPath() string { return filepath.Join(c.DataDir, "diffcheck.db") }
func (c Config) raftDir() string       { return filepath.Join(c.DataDir, "raft") }
func (c Config) joinPath() string      { return filepath.Join(c.DataDir, "join.json") }
func (c Config) memberPath() string    { return filepath.Join(c.DataDir, "member") }
func (c Config) cleanPath() string     { return filepath.Join(c.DataDir, "catalog.clean") }

func (c Config) caDir() string           { return filepath.Join(c.DataDir, "ca") }
func (c Config) credsPath() string       { return filepath.Join(c.DataDir, "auth.db") }
func (c Config) operatorKeyPath() string { return filepath.Join(c.DataDir, "operator.key") }

// CAPath is the city CA certificate in dataDir; clients verify the node's
// TLS certificate with it.
func CAPath(dataDir string) string { return filepath.Join(Config{DataDir: dataDir}.caDir(), "ca.pem") }

// OperatorKeyPath is where a node writes the API key of its first operator
// when it starts with no credentials at all.
func OperatorKeyPath(dataDir string) string { return Config{DataDir: dataDir}.operatorKeyPath() }

// KeyPath is where the node's libp2p identity key lives in dataDir.
func KeyPath(dataDir string) string { return Config{DataDir: dataDir}.keyPath() }

// HasState reports whether the node in dataDir has been a ready member
// before, or is part-way through a join: either way it needs no new token.
func HasState(dataDir string) bool {
	c := Config{DataDir: dataDir}
	for _, p := range []string{c.memberPath(), c.joinPath()} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
