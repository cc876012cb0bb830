package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/node"
)

// nodeFile is the operator's node config, written by init into the data
// dir so that `serve` needs nothing but the data dir.
type nodeFile struct {
	City        string   `json:"city"`
	APIAddr     string   `json:"api_addr"`
	FabricAddrs []string `json:"fabric_addrs"`
	// Data says where the raw data of the datasets this city owns lives;
	// the operator adds it by hand (init writes none).
	Data *dataFile `json:"data,omitempty"`
}

// dataFile is node.json's "data" object.
type dataFile struct {
	Files    []fileSource `json:"files,omitempty" toml:"files,omitempty"`
	Postgres *pgSource    `json:"postgres,omitempty" toml:"postgres,omitempty"`
}

// fileSource is one dataset served from files through DuckDB.
type fileSource struct {
	Dataset string `json:"dataset" toml:"dataset"`
	// Format is csv, parquet or json; empty means by the first path's
	// extension.
	Format string   `json:"format,omitempty" toml:"format,omitempty"`
	Paths  []string `json:"paths" toml:"paths"`
}

// pgSource is the city's PostgreSQL database and the tables it serves.
type pgSource struct {
	DSN    string    `json:"dsn" toml:"dsn"`
	Tables []pgTable `json:"tables" toml:"tables"`
}

type pgTable struct {
	Dataset string `json:"dataset" toml:"dataset"`
	Schema  string `json:"schema,omitempty" toml:"schema,omitempty"`
	Table   string `json:"table" toml:"table"`
}

const nodeFileName = "node.json"

func readNodeFile(dataDir string) (nodeFile, error) {
	var nf nodeFile
	path := filepath.Join(dataDir, nodeFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nf, fmt.Errorf("%s has no %s: run 'yrdnode init --data-dir %s --city CITY' first", dataDir, nodeFileName, dataDir)
	} else if err != nil {
		return nf, err
	}
	if nf, err = decodeNodeFile(data); err != nil {
		return nf, fmt.Errorf("%s: %v", path, err)
	}
	return nf, nil
}

// decodeNodeFile decodes node.json strictly: an unknown field, such as a
// misspelt "paths", is an error naming it rather than silently ignored.
func decodeNodeFile(data []byte) (nodeFile, error) {
	var nf nodeFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nf); err != nil {
		return nodeFile{}, err
	}
	if dec.More() {
		return nodeFile{}, errors.New("unexpected data after the JSON object")
	}
	return nf, nil
}

// dataConfig maps node.json's "data" object into the node's config, naming
// the field of anything wrong. Relative paths are taken from dataDir;
// URLs (s3://, https://) are left as they are.
func dataConfig(df *dataFile, dataDir string) (node.DataConfig, error) {
	var dc node.DataConfig
	if df == nil {
		return dc, nil
	}
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	for i, f := range df.Files {
		field := fmt.Sprintf("data.files[%d]", i)
		if f.Dataset == "" {
			return dc, fmt.Errorf("%s.dataset: required: the catalog id of a dataset this city owns", field)
		}
		if len(f.Paths) == 0 {
			return dc, fmt.Errorf("%s.paths: at least one file or glob pattern is required", field)
		}
		src := connector.Source{DatasetID: f.Dataset, Format: strings.ToLower(f.Format)}
		for j, p := range f.Paths {
			if p == "" {
				return dc, fmt.Errorf("%s.paths[%d]: empty path", field, j)
			}
			if !filepath.IsAbs(p) && !strings.Contains(p, "://") {
				p = filepath.Join(dataDir, p)
			}
			src.Paths = append(src.Paths, p)
		}
		if src.Format == "" {
			src.Format = formatOf(src.Paths[0])
			if src.Format == "" {
				return dc, fmt.Errorf("%s.format: required: csv, parquet or json (%q has no known extension)", field, f.Paths[0])
			}
		}
		switch src.Format {
		case "csv", "parquet", "json":
		default:
			return dc, fmt.Errorf("%s.format: %q is not csv, parquet or json", field, f.Format)
		}
		dc.Files = append(dc.Files, src)
	}
	if pg := df.Postgres; pg != nil {
		if pg.DSN == "" {
			return dc, errors.New("data.postgres.dsn: required: a PostgreSQL URL or keyword/value string")
		}
		dc.Postgres = &node.PostgresData{DSN: pg.DSN}
		for i, t := range pg.Tables {
			field := fmt.Sprintf("data.postgres.tables[%d]", i)
			if t.Dataset == "" {
				return dc, fmt.Errorf("%s.dataset: required: the catalog id of a dataset this city owns", field)
			}
			if t.Table == "" {
				return dc, fmt.Errorf("%s.table: required", field)
			}
			dc.Postgres.Tables = append(dc.Postgres.Tables, connector.PGTable{DatasetID: t.Dataset, Schema: t.Schema, Table: t.Table})
		}
	}
	return dc, nil
}

// formatOf guesses a file's format from its extension.
func formatOf(path string) string {
	ext := strings.ToLower(filepath.Ext(strings.TrimSuffix(strings.TrimSuffix(path, ".gz"), ".zst")))
	switch ext {
	case ".csv":
		return "csv"
	case ".parquet":
		return "parquet"
	case ".json", ".jsonl", ".ndjson":
		return "json"
	}
	return ""
}

func dataDirFlag(fs *pflag.FlagSet) *string {
	p := new(string)
	envString(fs, p, "data-dir", "", "YRDNODE_DATA_DIR", "node data dir")
	return p
}

func runInit(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dataDir := dataDirFlag(fs)
	city := fs.String("city", "", "delta city id this node serves, e.g. shanghai, suzhou-js")
	api := fs.String("api", "0.0.0.0:7401", "client API listen address")
	fabricAddr := fs.String("fabric", "/ip4/0.0.0.0/tcp/7411", "node-to-node libp2p listen multiaddrs, comma-separated")
	return func(_ context.Context, _ []string) error {
		if *dataDir == "" || *city == "" {
			return usageError{"init needs --data-dir and --city"}
		}
		if _, ok := cities.Lookup(*city); !ok {
			return usageError{fmt.Sprintf("--city: %q is not a delta city id (known: %s)", *city, strings.Join(cities.IDs(), ", "))}
		}
		if initialised(*dataDir) {
			return fmt.Errorf("%s is already initialised; remove it to start over", *dataDir)
		}
		nf := nodeFile{City: *city, APIAddr: *api, FabricAddrs: strings.Split(*fabricAddr, ",")}
		cfg, err := nodeConfig(nf, *dataDir, slog.New(slog.DiscardHandler), env.Version)
		if err != nil {
			return err
		}
		n, err := node.New(cfg) // creates the identity key
		if err != nil {
			return err
		}
		if err := writeConfigFile(filepath.Join(*dataDir, configFileName), fileConfigFromNodeFile(nf)); err != nil {
			return err
		}
		if cf.output == "json" {
			return printValue(env.Stdout, map[string]string{"data_dir": *dataDir, "city": *city, "peer_id": n.PeerID().String()})
		}
		fmt.Fprintf(env.Stdout, "initialised %s for %s\npeer id: %s\nnext: 'yrdnode serve --data-dir %s' (first node) or\n      'yrdnode cluster join --data-dir %s --via EXISTING_NODE --token TOKEN'\n",
			*dataDir, *city, n.PeerID(), *dataDir, *dataDir)
		return nil
	}
}

func nodeConfig(nf nodeFile, dataDir string, log *slog.Logger, version string) (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.City, cfg.APIAddr, cfg.FabricAddrs = dataDir, nf.City, nf.APIAddr, nf.FabricAddrs
	cfg.Logger, cfg.Version = log, version
	data, err := dataConfig(nf.Data, dataDir)
	if err != nil {
		return cfg, err
	}
	cfg.Data = data
	return cfg, cfg.Validate()
}

type serveFlags struct {
	fs                                       *pflag.FlagSet
	dataDir, join, token, logLevel           *string
	logFormat, adminAddr                     *string
	natPortMap, relay, holePunching, autoNAT *bool
	pprof                                    *bool
	drainTimeout                             *time.Duration
}

// defaultAdminAddr is the admin listener's (metrics, health) when
// --admin-addr is not given: loopback, next to the API's 7401.
const defaultAdminAddr = "127.0.0.1:7421"

func addServeFlags(fs *pflag.FlagSet) *serveFlags {
	token := new(string)
	envString(fs, token, "token", "", "YRDNODE_JOIN_TOKEN", "join token")
	return &serveFlags{
		fs:           fs,
		dataDir:      dataDirFlag(fs),
		join:         fs.String("via", "", "join the cluster through the node whose API is at this address (first start only)"),
		token:        token,
		logLevel:     fs.String("log-level", "info", "debug, info, warn or error"),
		natPortMap:   fs.Bool("enable-nat-portmap", false, "ask the router for a port mapping (UPnP/NAT-PMP)"),
		relay:        fs.Bool("enable-relay", false, "allow libp2p relays"),
		holePunching: fs.Bool("enable-hole-punching", false, "allow libp2p hole punching"),
		autoNAT:      fs.Bool("enable-autonat", false, "run the AutoNAT service"),
		logFormat:    logFormatFlag(fs),
		adminAddr:    fs.String("admin-addr", defaultAdminAddr, "serve /metrics, /healthz (and --pprof) over HTTPS with the node's certificate here; \"\" turns it off"),
		pprof:        fs.Bool("pprof", false, "serve Go's profiler at /debug/pprof on the admin listener"),
		drainTimeout: fs.Duration("drain-timeout", node.DefaultConfig().DrainTimeout, "on SIGTERM, how long running queries may finish before they are cancelled"),
	}
}

func logFormatFlag(fs *pflag.FlagSet) *string {
	return fs.String("log-format", "text", "text (key=value) or json (one object a line, for log shippers)")
}

func newLogger(env Env, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format: %q is not text or json", format)}
}

func runServe(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	sf := addServeFlags(fs)
	return func(ctx context.Context, _ []string) error {
		return serve(ctx, env, sf)
	}
}

// runClusterJoin is serve with a join: it reads like what the operator
// means ("join this cluster"), and on later starts the data dir suffices.
func runClusterJoin(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	sf := addServeFlags(fs)
	return func(ctx context.Context, _ []string) error {
		if *sf.join == "" || *sf.token == "" {
			return usageError{"cluster join needs --via ADDR and --token TOKEN"}
		}
		return serve(ctx, env, sf)
	}
}

func serve(ctx context.Context, env Env, sf *serveFlags) error {
	if *sf.dataDir == "" {
		return usageError{"--data-dir is required"}
	}
	cfg, err := serveConfig(env, sf.fs, *sf.dataDir)
	if err != nil {
		return err
	}
	// One node per process: raft's process-wide metrics are this node's.
	cfg.RaftLibraryMetrics = true
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return rpcErrText(runNode(ctx, n, cfg.Logger))
}
