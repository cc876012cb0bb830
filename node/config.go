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
	// ConsoleSessionTTL and ConsoleIdleTTL bound a web console session
	// from sign-in and from its last use; zero means the defaults.
	ConsoleSessionTTL, ConsoleIdleTTL time.Duration
	// ConsoleClock is the clock console sessions expire by (tests move
	// it); nil means time.Now.
	ConsoleClock func() time.Time
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
		ConsoleSessionTTL:      8 * time.Hour,
		ConsoleIdleTTL:         30 * time.Minute,
		DataRecheckInterval:    time.Minute,
		DiffCheckWindow:        diffcheck.DefaultWindow,
		MaxQueriesPerRequester: 4,
		MaxResultBytes:         1 << 30,
		Version:                "dev",
		Logger:                 slog.Default(),
	}
}

// ConfigError is a Validate refusal naming the setting at fault, so that a
// caller (the CLI) can say where that setting was set without reading the
// message.
type ConfigError struct {
	// Field is the Config field's path as Go selects it: "DrainTimeout",
	// "Raft.HeartbeatTimeout", "Data.Files".
	Field string
	// Index is the entry at fault of a list Field (Data.Files,
	// Data.Postgres.Tables), or -1.
	Index int
	// Related are the fields the check compared Field with, paths like
	// Field's: the setting to change may be one of them.
	Related []string
	// Msg is the message, as Error returns it.
	Msg string
	// Err is the nested config's refusal (a *consensus.ConfigError) that
	// this one reports, if any.
	Err error
}

func (e *ConfigError) Error() string { return e.Msg }
func (e *ConfigError) Unwrap() error { return e.Err }

// fieldError is a ConfigError about field.
func fieldError(field string, related []string, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Index: -1, Related: related, Msg: fmt.Sprintf("config: "+format, args...)}
}

// entryError is a ConfigError about entry i of the list field.
func entryError(field string, i int, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Index: i, Msg: fmt.Sprintf("config: %s[%d]: ", field, i) + fmt.Sprintf(format, args...)}
}

// Validate reports the first setting that cannot work as a *ConfigError
// naming it.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fieldError("DataDir", nil, "DataDir is required")
	}
	if c.City == "" {
		return fieldError("City", nil, "City is required")
	}
	if _, ok := cities.Lookup(c.City); !ok {
		return fieldError("City", nil, "City %q is not a delta city id (e.g. shanghai, suzhou-js)", c.City)
	}
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil {
		return fieldError("APIAddr", nil, "APIAddr %q: %v", c.APIAddr, err)
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return fieldError("AdminAddr", nil, "AdminAddr %q: %v", c.AdminAddr, err)
		}
	}
	if len(c.FabricAddrs) == 0 {
		return fieldError("FabricAddrs", nil, "FabricAddrs needs at least one multiaddr")
	}
	if c.JoinAddr == "" && c.JoinToken != "" {
		return fieldError("JoinAddr", []string{"JoinToken"}, "JoinAddr and JoinToken go together")
	}
	if c.JoinAddr != "" && c.JoinToken == "" {
		return fieldError("JoinToken", []string{"JoinAddr"}, "JoinAddr and JoinToken go together")
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	if err := c.Data.validate(); err != nil {
		return err
	}
	if c.Logger == nil {
		return fieldError("Logger", nil, "Logger is required")
	}
	return c.validateRaft()
}

// validateLimits checks the durations and limits that must be positive.
func (c Config) validateLimits() error {
	type positive struct {
		field string
		ok    bool
	}
	for _, p := range []positive{{"AnchorInterval", c.AnchorInterval > 0}, {"ForwardTimeout", c.ForwardTimeout > 0}, {"DrainTimeout", c.DrainTimeout > 0}} {
		if !p.ok {
			return fieldError(p.field, nil, "%s must be positive", p.field)
		}
	}
	// These share one message; the error still names the one at fault.
	for _, p := range []positive{
		{"QueryTimeout", c.QueryTimeout > 0}, {"MaxQueriesPerRequester", c.MaxQueriesPerRequester > 0}, {"MaxResultBytes", c.MaxResultBytes > 0},
		{"DataRecheckInterval", c.DataRecheckInterval > 0}, {"DiffCheckWindow", c.DiffCheckWindow > 0},
	} {
		if !p.ok {
			return fieldError(p.field, nil, "QueryTimeout, MaxQueriesPerRequester, MaxResultBytes, DataRecheckInterval and DiffCheckWindow must be positive")
		}
	}
	for _, p := range []positive{{"ConsoleSessionTTL", c.ConsoleSessionTTL >= 0}, {"ConsoleIdleTTL", c.ConsoleIdleTTL >= 0}} {
		if !p.ok {
			return fieldError(p.field, nil, "%s must not be negative (0 means the default)", p.field)
		}
	}
	return nil
}

// validate checks that every mapping names its dataset and data, and
// that no dataset is mapped twice.
func (d DataConfig) validate() error {
	seen := map[string]bool{}
	for i, f := range d.Files {
		if f.DatasetID == "" || len(f.Paths) == 0 {
			return entryError("Data.Files", i, "a dataset id and at least one path are required")
		}
		if seen[f.DatasetID] {
			return entryError("Data.Files", i, "dataset %q is configured twice", f.DatasetID)
		}
		seen[f.DatasetID] = true
	}
	pg := d.Postgres
	if pg == nil {
		return nil
	}
	if pg.DSN == "" {
		return fieldError("Data.Postgres.DSN", nil, "Data.Postgres.DSN is required")
	}
	for i, t := range pg.Tables {
		if t.DatasetID == "" || t.Table == "" {
			return entryError("Data.Postgres.Tables", i, "a dataset id and a table are required")
		}
		if seen[t.DatasetID] {
			return entryError("Data.Postgres.Tables", i, "dataset %q is configured twice", t.DatasetID)
		}
		seen[t.DatasetID] = true
	}
	return nil
}

// validateRaft checks the raft tuning, reporting consensus's refusal with
// the field's path in Config.
func (c Config) validateRaft() error {
	rc := c.Raft
	rc.ID, rc.Dir, rc.Logger = "x", "x", c.Logger // the node fills these in
	err := rc.Validate()
	var ce *consensus.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	related := make([]string, len(ce.Related))
	for i, f := range ce.Related {
		related[i] = "Raft." + f
	}
	return &ConfigError{Field: "Raft." + ce.Field, Index: -1, Related: related, Msg: err.Error(), Err: err}
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
