package cli

import (
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
	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

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
		c, err := devnet.Start(startCtx, devOptions(dir, files, apiAddrs, fabricAddrs, log))
		if err != nil {
			return err
		}
		defer c.Close()
		creds, credPath, err := writeDevCredentials(c, dir)
		if err != nil {
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

// devOptions is the dev delta: production raft timings, the sample data
// mapped into each city, and each city's console on its admin listener.
func devOptions(dir string, files map[string][]connector.Source, apiAddrs, fabricAddrs []string, log *slog.Logger) devnet.Options {
	return devnet.Options{
		Cities: devCities, DataDir: dir, APIAddrs: apiAddrs, FabricAddrs: fabricAddrs,
		Raft: node.DefaultConfig().Raft, Logger: log,
		Configure: func(i int, cfg *node.Config) {
			cfg.Data.Files = files[devCities[i]]
			cfg.AdminAddr = devAdminAddr(apiAddrs != nil, i)
		},
	}
}

// writeDevCredentials makes an API key for every role of every city and
// writes them to credentials.json in dir (mode 0600).
func writeDevCredentials(c *devnet.Cluster, dir string) (map[string]devCity, string, error) {
	creds, err := devCredentials(c)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "credentials.json")
	data, _ := json.MarshalIndent(creds, "", "  ")
	return creds, path, os.WriteFile(path, append(data, '\n'), 0o600)
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
