package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/devnet"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
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

// Dev ports: fixed, so the commands dev prints are always the same.
var (
	devCities      = []string{"shanghai", "hangzhou", "nanjing"}
	devAPIAddrs    = []string{"127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403"}
	devFabricAddrs = []string{"/ip4/127.0.0.1/tcp/7411", "/ip4/127.0.0.1/tcp/7412", "/ip4/127.0.0.1/tcp/7413"}
	devAdminAddrs  = []string{"127.0.0.1:7421", "127.0.0.1:7422", "127.0.0.1:7423"}
)

// devAdminAddr is city i's admin listener (the web console): fixed next
// to the fixed API ports, or a port the kernel picks.
func devAdminAddr(fixed bool, i int) string {
	if fixed {
		return devAdminAddrs[i]
	}
	return "127.0.0.1:0"
}

func runDev(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dataDir := fs.String("data-dir", "", "keep the delta's state here (default: a temporary dir removed on exit)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	logFormat := logFormatFlag(fs)
	ports := fs.String("ports", "fixed", "fixed: API on 7401–7403, fabric on 7411–7413; any: ports the kernel picks (printed below)")
	rows := fs.Int("rows", 20000, "synthetic rows per sample dataset (elderly-population: the residents aged 60+ among that many); files already in --data-dir are kept")
	return func(ctx context.Context, _ []string) error {
		if *rows < 1 {
			return usageError{fmt.Sprintf("--rows: %d is not a positive row count", *rows)}
		}
		apiAddrs, fabricAddrs, err := devPorts(*ports)
		if err != nil {
			return err
		}
		log, err := newLogger(env, *logLevel, *logFormat)
		if err != nil {
			return err
		}
		dir := *dataDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "yrdnode-dev-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		files, made, err := devData(dir, *rows)
		if err != nil {
			return err
		}
		startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		c, err := devnet.Start(startCtx, devnet.Options{
			Cities: devCities, DataDir: dir, APIAddrs: apiAddrs, FabricAddrs: fabricAddrs,
			Raft: node.DefaultConfig().Raft, Logger: log,
			Configure: func(i int, cfg *node.Config) {
				cfg.Data.Files = files[devCities[i]]
				cfg.AdminAddr = devAdminAddr(apiAddrs != nil, i)
			},
		})
		if err != nil {
			return err
		}
		defer c.Close()
		creds, err := devCredentials(c)
		if err != nil {
			return err
		}
		credPath := filepath.Join(dir, "credentials.json")
		data, _ := json.MarshalIndent(creds, "", "  ")
		if err := os.WriteFile(credPath, append(data, '\n'), 0o600); err != nil {
			return err
		}
		published, kept, err := publishSamples(startCtx, c)
		if err != nil {
			return err
		}
		// Each node checks its files against the catalog once the datasets are
		// published; wait for that, so the printed queries work at once.
		if err := waitServed(startCtx, c, files); err != nil {
			fmt.Fprintf(env.Stderr, "yrdnode dev: warning: %v\n", err)
		}
		printDevDelta(env.Stdout, c, dir, devSummary{files: files, made: made, rows: *rows, published: published, kept: kept})
		printDevTry(env.Stdout, c, creds, credPath)
		fmt.Fprintf(env.Stdout, "\nCtrl-C stops the delta.\n")
		<-ctx.Done()
		fmt.Fprintln(env.Stdout, "stopping")
		return c.Close()
	}
}

// devPorts is where the dev delta listens: the fixed ports the README's
// commands use, or (nil) ports the kernel picks, which devnet reports.
func devPorts(ports string) (api, fabric []string, err error) {
	switch ports {
	case "fixed":
		return devAPIAddrs, devFabricAddrs, nil
	case "any":
		return nil, nil, nil
	}
	return nil, nil, usageError{fmt.Sprintf("--ports: %q is not fixed or any", ports)}
}

// devSummary is what dev made and published before it prints the delta.
type devSummary struct {
	files           map[string][]connector.Source
	made, rows      int
	published, kept int
}

// printDevDelta prints the running delta: each city's addresses, what
// was published and where the synthetic data is.
func printDevDelta(w io.Writer, c *devnet.Cluster, dir string, s devSummary) {
	fmt.Fprintf(w, "yrdnode dev: a 3-city delta is running (data in %s)\n\n", dir)
	for i, city := range devCities {
		fmt.Fprintf(w, "  %-9s api %s  fabric %s  peer %s\n", city, c.Config(i).APIAddr, strings.Join(c.Config(i).FabricAddrs, ","), c.Node(i).PeerID())
	}
	fmt.Fprintln(w, "\nWeb console (sign in with a key from credentials.json; the certificate is from each city's CA, ca/ca.pem):")
	for i, city := range devCities {
		fmt.Fprintf(w, "  %-9s https://%s/\n", city, c.Node(i).AdminAddr())
	}
	if s.kept > 0 {
		fmt.Fprintf(w, "\n%d sample datasets already in the catalog, %d published.\n", s.kept, s.published)
	} else {
		fmt.Fprintf(w, "\n%d sample datasets published.\n", s.published)
	}
	nfiles := 0
	for _, srcs := range s.files {
		nfiles += len(srcs)
	}
	dataDir := filepath.Join(dir, "CITY-data")
	if s.made < nfiles {
		fmt.Fprintf(w, "Synthetic data: %d CSV files in %s (%d generated, %d kept from an earlier run).\n", nfiles, dataDir, s.made, nfiles-s.made)
	} else {
		fmt.Fprintf(w, "Synthetic data: %d CSV files in %s, %d rows per dataset.\n", nfiles, dataDir, s.rows)
	}
}

// publishSamples publishes the sample catalog, keeping what an earlier
// run in the same data dir published.
func publishSamples(ctx context.Context, c *devnet.Cluster) (published, kept int, err error) {
	for _, d := range sample.Datasets() {
		conn, err := c.PublisherConn(d)
		if err != nil {
			return 0, 0, err
		}
		_, err = yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d})
		if status.Code(err) == codes.AlreadyExists {
			kept++
			continue
		} else if err != nil {
			return 0, 0, fmt.Errorf("publishing sample %s: %w", d.GetId(), err)
		}
		published++
	}
	return published, kept, nil
}

// printDevTry prints the commands to try against the dev delta.
func printDevTry(w io.Writer, c *devnet.Cluster, creds map[string]devCity, credPath string) {
	sh := creds["shanghai"]
	fmt.Fprintf(w, "API keys for every role of every city: %s\n\nTry, in another terminal (as Shanghai's analyst):\n\n", credPath)
	fmt.Fprintf(w, "  export YRDNODE_NODE=%s YRDNODE_CA=%s YRDNODE_KEY=%s\n", c.Config(0).APIAddr, sh.CA, sh.Keys["analyst"])
	fmt.Fprintf(w, "  go run ./cmd/yrdnode dataset list\n")
	fmt.Fprintf(w, "  go run ./cmd/yrdnode policy decide shanghai.civil-affairs.elderly-population --purpose elderly-care-planning\n")
	fmt.Fprintf(w, "  go run ./cmd/yrdnode query --purpose elderly-care-planning '%s'\n", devFamilyQuery)
	fmt.Fprintf(w, "  go run ./cmd/yrdnode query --purpose elderly-care-planning --explain '%s'\n", devFamilyQuery)
	fmt.Fprintf(w, "  go run ./cmd/yrdnode query --purpose population-statistics '%s'   # refused: CORE data\n", devCoreQuery)
	fmt.Fprintf(w, "  go run ./cmd/yrdnode cluster status --node %s --ca %s --key %s\n", c.Config(2).APIAddr, creds["nanjing"].CA, creds["nanjing"].Keys["operator"])
}

// The queries dev suggests: a family aggregate over the three cities'
// elderly populations, and one on CORE data, which every owner refuses.
const (
	devFamilyQuery = "SELECT district, count(*), avg(age) FROM family:" + sample.ElderlyPopulationSchemaID + " GROUP BY district"
	devCoreQuery   = "SELECT count(*) FROM shanghai.public-security.household-registry"
)

// devSeed seeds every synthetic file of dev, so a city's datasets share
// one population (person_id joins) and reruns give the same data.
const devSeed = 20250630

// devData writes, for every sample dataset a dev city owns, a synthetic
// CSV file at dir/CITY-data/ID.csv (keeping one already there) and returns
// the sources per city and how many files it generated. CORE datasets get
// data too: the policy, not a missing file, is what refuses queries on
// them.
func devData(dir string, rows int) (map[string][]connector.Source, int, error) {
	out := map[string][]connector.Source{}
	made := 0
	for _, d := range sample.Datasets() {
		city := d.GetOwnerCity()
		if !slices.Contains(devCities, city) {
			continue
		}
		n := rows
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			n = synth.ElderlyRowsFor(rows)
		}
		path := filepath.Join(dir, city+"-data", d.GetId()+".csv")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := writeSynthCSV(path, d, n); err != nil {
				return nil, 0, fmt.Errorf("generating %s: %w", path, err)
			}
			made++
		} else if err != nil {
			return nil, 0, err
		}
		out[city] = append(out[city], connector.Source{DatasetID: d.GetId(), Format: "csv", Paths: []string{path}})
	}
	return out, made, nil
}

// waitServed waits until every city serves the files configured for it,
// and names those that do not after a while (the node's log says why).
func waitServed(ctx context.Context, c *devnet.Cluster, files map[string][]connector.Source) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		var missing []string
		for i := range c.Len() {
			n := c.Node(i)
			for _, src := range files[c.Config(i).City] {
				if n == nil || !n.Serving(src.DatasetID) {
					missing = append(missing, fmt.Sprintf("%s does not serve %s", c.Config(i).City, src.DatasetID))
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s (its local data does not match the catalog; see the log)", strings.Join(missing, "; "))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeSynthCSV writes the file whole or not at all, so an interrupted
// run leaves no truncated file for the next one to keep.
func writeSynthCSV(path string, d *yrdv1.Dataset, rows int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := synth.WriteCSV(f, d, rows, devSeed); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// devCity is one city's entry in dev's credentials.json.
type devCity struct {
	API  string            `json:"api"`
	CA   string            `json:"ca"`
	Keys map[string]string `json:"keys"` // "operator", "analyst", "auditor", "publisher/ORG", "cdo/ORG"
}

// devCredentials makes one API key per role per city: analysts and auditors
// in a city-wide organisation, publishers and CDOs for every organisation
// that owns a sample dataset.
func devCredentials(c *devnet.Cluster) (map[string]devCity, error) {
	out := map[string]devCity{}
	for i, city := range devCities {
		op, err := c.OperatorKey(i)
		if err != nil {
			return nil, err
		}
		dc := devCity{API: c.Config(i).APIAddr, CA: node.CAPath(c.Config(i).DataDir), Keys: map[string]string{"operator": op}}
		for name, org := range map[string]string{"analyst": city + "-analytics", "auditor": city + "-audit"} {
			role, _ := auth.ParseRole(name)
			if dc.Keys[name], err = c.Key(i, org, role); err != nil {
				return nil, err
			}
		}
		for _, d := range sample.Datasets() {
			if d.GetOwnerCity() != city {
				continue
			}
			for _, role := range []yrdv1.Role{yrdv1.Role_ROLE_PUBLISHER, yrdv1.Role_ROLE_CDO} {
				if dc.Keys[auth.RoleName(role)+"/"+d.GetOwnerOrg()], err = c.Key(i, d.GetOwnerOrg(), role); err != nil {
					return nil, err
				}
			}
		}
		out[city] = dc
	}
	return out, nil
}
