package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// nodeFile is the operator's node config, written by init into the data
// dir so that `serve` needs nothing but the data dir.
type nodeFile struct {
	City        string   `json:"city"`
	APIAddr     string   `json:"api_addr"`
	FabricAddrs []string `json:"fabric_addrs"`
}

const nodeFileName = "node.json"

func readNodeFile(dataDir string) (nodeFile, error) {
	var nf nodeFile
	data, err := os.ReadFile(filepath.Join(dataDir, nodeFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nf, fmt.Errorf("%s has no %s: run 'yrdnode init --data-dir %s --city CITY' first", dataDir, nodeFileName, dataDir)
	} else if err != nil {
		return nf, err
	}
	if err := json.Unmarshal(data, &nf); err != nil {
		return nf, fmt.Errorf("%s: %v", filepath.Join(dataDir, nodeFileName), err)
	}
	return nf, nil
}

func dataDirFlag(fs *flag.FlagSet, env Env) *string {
	return fs.String("data-dir", env.Getenv("YRDNODE_DATA_DIR"), "node data dir (env YRDNODE_DATA_DIR)")
}

func runInit(_ context.Context, env Env, args []string) error {
	fs := newFlags(env, "init")
	dataDir := dataDirFlag(fs, env)
	city := fs.String("city", "", "delta city id this node serves, e.g. shanghai, suzhou-js")
	api := fs.String("api", "0.0.0.0:7401", "client API listen address")
	fabricAddr := fs.String("fabric", "/ip4/0.0.0.0/tcp/7411", "node-to-node libp2p listen multiaddrs, comma-separated")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *dataDir == "" || *city == "" {
		return usageError{"init needs --data-dir and --city"}
	}
	if _, ok := cities.Lookup(*city); !ok {
		return usageError{fmt.Sprintf("--city: %q is not a delta city id (known: %s)", *city, strings.Join(cities.IDs(), ", "))}
	}
	if _, err := os.Stat(filepath.Join(*dataDir, nodeFileName)); err == nil {
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
	data, _ := json.MarshalIndent(nf, "", "  ")
	if err := os.WriteFile(filepath.Join(*dataDir, nodeFileName), append(data, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "initialised %s for %s\npeer id: %s\nnext: 'yrdnode serve --data-dir %s' (first node) or\n      'yrdnode cluster join --data-dir %s --via EXISTING_NODE --token TOKEN'\n",
		*dataDir, *city, n.PeerID(), *dataDir, *dataDir)
	return nil
}

func nodeConfig(nf nodeFile, dataDir string, log *slog.Logger, version string) (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.City, cfg.APIAddr, cfg.FabricAddrs = dataDir, nf.City, nf.APIAddr, nf.FabricAddrs
	cfg.Logger, cfg.Version = log, version
	return cfg, cfg.Validate()
}

type serveFlags struct {
	dataDir, join, token, logLevel           *string
	natPortMap, relay, holePunching, autoNAT *bool
}

func addServeFlags(fs *flag.FlagSet, env Env) *serveFlags {
	return &serveFlags{
		dataDir:      dataDirFlag(fs, env),
		join:         fs.String("via", "", "join the cluster through the node whose API is at this address (first start only)"),
		token:        fs.String("token", env.Getenv("YRDNODE_JOIN_TOKEN"), "join token (env YRDNODE_JOIN_TOKEN)"),
		logLevel:     fs.String("log-level", "info", "debug, info, warn or error"),
		natPortMap:   fs.Bool("enable-nat-portmap", false, "ask the router for a port mapping (UPnP/NAT-PMP)"),
		relay:        fs.Bool("enable-relay", false, "allow libp2p relays"),
		holePunching: fs.Bool("enable-hole-punching", false, "allow libp2p hole punching"),
		autoNAT:      fs.Bool("enable-autonat", false, "run the AutoNAT service"),
	}
}

func newLogger(env Env, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "serve")
	sf := addServeFlags(fs, env)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return serve(ctx, env, sf)
}

// runClusterJoin is serve with a join: it reads like what the operator
// means ("join this cluster"), and on later starts the data dir suffices.
func runClusterJoin(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "cluster join")
	sf := addServeFlags(fs, env)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *sf.join == "" || *sf.token == "" {
		return usageError{"cluster join needs --via ADDR and --token TOKEN"}
	}
	return serve(ctx, env, sf)
}

func serve(ctx context.Context, env Env, sf *serveFlags) error {
	if *sf.dataDir == "" {
		return usageError{"--data-dir is required"}
	}
	log, err := newLogger(env, *sf.logLevel)
	if err != nil {
		return err
	}
	nf, err := readNodeFile(*sf.dataDir)
	if err != nil {
		return err
	}
	cfg, err := nodeConfig(nf, *sf.dataDir, log, env.Version)
	if err != nil {
		return err
	}
	if (*sf.join == "") != (*sf.token == "") {
		return usageError{"--via and --token go together"}
	}
	if !node.HasState(*sf.dataDir) {
		cfg.JoinAddr, cfg.JoinToken = *sf.join, *sf.token
	}
	cfg.EnableNATPortMap, cfg.EnableRelay, cfg.EnableHolePunching, cfg.EnableAutoNAT = *sf.natPortMap, *sf.relay, *sf.holePunching, *sf.autoNAT
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// Dev ports: fixed, so the commands dev prints are always the same.
var (
	devCities      = []string{"shanghai", "hangzhou", "nanjing"}
	devAPIAddrs    = []string{"127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403"}
	devFabricAddrs = []string{"/ip4/127.0.0.1/tcp/7411", "/ip4/127.0.0.1/tcp/7412", "/ip4/127.0.0.1/tcp/7413"}
)

func runDev(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "dev")
	dataDir := fs.String("data-dir", "", "keep the delta's state here (default: a temporary dir removed on exit)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(env, *logLevel)
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
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := testnet.Start(startCtx, testnet.Options{
		Cities: devCities, DataDir: dir, APIAddrs: devAPIAddrs, FabricAddrs: devFabricAddrs,
		Raft: node.DefaultConfig().Raft, Logger: log,
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
	published, kept := 0, 0
	for _, d := range sample.Datasets() {
		conn, err := c.PublisherConn(d)
		if err != nil {
			return err
		}
		_, err = yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(startCtx, &yrdv1.PublishDatasetRequest{Dataset: d})
		if status.Code(err) == codes.AlreadyExists {
			kept++
			continue
		} else if err != nil {
			return fmt.Errorf("publishing sample %s: %w", d.GetId(), err)
		}
		published++
	}
	fmt.Fprintf(env.Stdout, "yrdnode dev: a 3-city delta is running (data in %s)\n\n", dir)
	for i, city := range devCities {
		fmt.Fprintf(env.Stdout, "  %-9s api %s  fabric %s  peer %s\n", city, c.Config(i).APIAddr, devFabricAddrs[i], c.Node(i).PeerID())
	}
	if kept > 0 {
		fmt.Fprintf(env.Stdout, "\n%d sample datasets already in the catalog, %d published.\n", kept, published)
	} else {
		fmt.Fprintf(env.Stdout, "\n%d sample datasets published.\n", published)
	}
	sh := creds["shanghai"]
	fmt.Fprintf(env.Stdout, "API keys for every role of every city: %s\n\nTry, in another terminal (as Shanghai's analyst):\n\n", credPath)
	fmt.Fprintf(env.Stdout, "  export YRDNODE_CA=%s YRDNODE_KEY=%s\n", sh.CA, sh.Keys["analyst"])
	fmt.Fprintf(env.Stdout, "  go run ./cmd/yrdnode dataset list\n")
	fmt.Fprintf(env.Stdout, "  go run ./cmd/yrdnode policy decide shanghai.civil-affairs.elderly-population --purpose elderly-care-planning\n")
	fmt.Fprintf(env.Stdout, "  go run ./cmd/yrdnode cluster status --node %s --ca %s --key %s\n", devAPIAddrs[2], creds["nanjing"].CA, creds["nanjing"].Keys["operator"])
	fmt.Fprintf(env.Stdout, "\nCtrl-C stops the delta.\n")
	<-ctx.Done()
	fmt.Fprintln(env.Stdout, "stopping")
	return c.Close()
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
func devCredentials(c *testnet.Cluster) (map[string]devCity, error) {
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
