package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// configCommands are `yrdnode config ...`.
func configCommands() []command {
	return []command{
		{name: "check", summary: "validate a node's yrdnode.toml and its local data mappings", long: configCheckHelp, setup: runConfigCheck},
		{name: "migrate", summary: "write yrdnode.toml from an old data dir's node.json (kept as node.json.bak)", setup: runConfigMigrate},
	}
}

const configCheckHelp = `Validates a node's configuration as serve would read it: the file (syntax, keys,
values), the YRDNODE_* environment variables over it, and the local data mappings:
every data file exists and is readable, the PostgreSQL database is reachable, and
each mapped dataset's files or table match its schema in the catalog.

The catalog is the running node's when --ca (and --key, --node) are given, and
otherwise the stopped node's catalog.db in the data dir, read-only. A running
node holds catalog.db locked, so check a running node through its API.

Every problem names its key and where it was set (FILE:LINE, or the variable).
Exit status 1 if there is any problem.`

// checkReport is what config check found.
type checkReport struct {
	File     string         `json:"file"`
	Catalog  string         `json:"catalog"` // what schemas were checked against, or why not
	OK       []string       `json:"ok"`
	Problems []checkProblem `json:"problems"`
}

type checkProblem struct {
	Where   string `json:"where"`
	Key     string `json:"key"`
	Problem string `json:"problem"`
}

func (r *checkReport) problem(where, key, msg string) {
	r.Problems = append(r.Problems, checkProblem{Where: where, Key: key, Problem: msg})
}

func (p checkProblem) String() string {
	return configError{where: p.Where, key: p.Key, msg: p.Problem}.Error()
}

func runConfigCheck(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dataDir := dataDirFlag(fs)
	file := fs.String("file", "", "check this file instead of DATA_DIR/yrdnode.toml (without --data-dir, relative data paths are taken from its directory)")
	return func(ctx context.Context, _ []string) error {
		if *dataDir == "" && *file == "" {
			return usageError{"config check needs --data-dir DIR or --file FILE"}
		}
		lc, dir, err := readCheckedConfig(*dataDir, *file)
		if err != nil {
			return err
		}
		getenv := env.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		if err := lc.override(getenv, fs, nil); err != nil {
			return err
		}
		if _, err := lc.logger(Env{Stderr: io.Discard}); err != nil {
			return err
		}
		cfg, err := lc.nodeConfig(dir, slog.New(slog.DiscardHandler), env.Version)
		if err != nil {
			return err
		}
		r := &checkReport{File: lc.path}
		checkData(ctx, cf, lc, cfg, dir, r)
		return printCheckReport(env, cf, r)
	}
}

// readCheckedConfig reads the file config check was given and says which
// dir relative data paths (and catalog.db) are in.
func readCheckedConfig(dataDir, file string) (*loadedConfig, string, error) {
	if file == "" {
		lc, err := readDataDirConfig(dataDir)
		return lc, dataDir, err
	}
	dir := dataDir
	if dir == "" {
		dir = filepath.Dir(file)
	}
	lc, err := readConfigFile(file)
	return lc, dir, err
}

func printCheckReport(env Env, cf *clientFlags, r *checkReport) error {
	if cf.output == "json" {
		if err := printValue(env.Stdout, r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(env.Stdout, "%s: settings valid\ncatalog: %s\n", r.File, r.Catalog)
		for _, ok := range r.OK {
			fmt.Fprintf(env.Stdout, "ok: %s\n", ok)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(env.Stdout, "PROBLEM: %s\n", p)
		}
	}
	switch n := len(r.Problems); n {
	case 0:
		return nil
	case 1:
		return errors.New(r.Problems[0].String())
	default:
		return fmt.Errorf("%d problems in the data mappings of %s (listed above)", n, r.File)
	}
}

// checkData checks the data mappings: files there and readable, the
// database reachable, and schemas as the catalog says.
func checkData(ctx context.Context, cf *clientFlags, lc *loadedConfig, cfg node.Config, dir string, r *checkReport) {
	if len(cfg.Data.Files) == 0 && cfg.Data.Postgres == nil {
		r.Catalog = "not needed: no data mappings"
		return
	}
	present := checkFiles(lc, cfg.Data.Files, r)
	lookup, what, err := checkCatalog(ctx, cf, dir, datasetIDs(cfg.Data))
	r.Catalog = what
	if err != nil {
		r.problem("catalog", "", err.Error())
		return
	}
	schemas := lookup != nil
	if schemas {
		checkOwners(lc, cfg, lookup, r)
		checkFileSchemas(ctx, lc, cfg.Data.Files, present, lookup, r)
	} else {
		lookup = func(string) (*yrdv1.Dataset, bool) { return nil, false }
		for i, f := range cfg.Data.Files {
			if present[f.DatasetID] {
				r.OK = append(r.OK, fmt.Sprintf("data.files[%d] %s: files readable (schema not checked)", i, f.DatasetID))
			}
		}
	}
	if pg := cfg.Data.Postgres; pg != nil {
		checkPostgres(ctx, lc, pg, lookup, schemas, r)
	}
}

// datasetIDs lists every dataset with a data mapping.
func datasetIDs(d node.DataConfig) []string {
	var ids []string
	for _, f := range d.Files {
		ids = append(ids, f.DatasetID)
	}
	if d.Postgres != nil {
		for _, t := range d.Postgres.Tables {
			ids = append(ids, t.DatasetID)
		}
	}
	return ids
}

// checkFiles reports every path of data.files that is missing or cannot
// be read, and returns which sources have all their files.
func checkFiles(lc *loadedConfig, srcs []connector.Source, r *checkReport) map[string]bool {
	present := map[string]bool{}
	for i, src := range srcs {
		key := fmt.Sprintf("data.files[%d].paths", i)
		ok := true
		for _, p := range src.Paths {
			if msg := pathProblem(p); msg != "" {
				r.problem(lc.where(key), key, msg)
				ok = false
			}
		}
		present[src.DatasetID] = ok
	}
	return present
}

// pathProblem says why path (a file or a glob) cannot be read, or "".
// Remote URLs and recursive globs are left to DuckDB's schema check.
func pathProblem(path string) string {
	if strings.Contains(path, "://") || strings.Contains(path, "**") {
		return ""
	}
	paths := []string{path}
	if strings.ContainsAny(path, "*?[") {
		m, err := filepath.Glob(path)
		if err != nil {
			return fmt.Sprintf("%s: bad pattern: %v", path, err)
		}
		if len(m) == 0 {
			return path + ": no file matches"
		}
		paths = m
	}
	for _, p := range paths {
		f, err := os.Open(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return p + ": no such file"
		case errors.Is(err, os.ErrPermission):
			return p + ": not readable (permission denied)"
		case err != nil:
			return err.Error()
		}
		fi, err := f.Stat()
		f.Close()
		if err == nil && fi.IsDir() {
			return p + ": is a directory, not a file (a glob such as DIR/*.csv reads its files)"
		}
	}
	return ""
}

// checkOwners reports a mapped dataset that another city owns.
func checkOwners(lc *loadedConfig, cfg node.Config, lookup connector.Catalog, r *checkReport) {
	for i, f := range cfg.Data.Files {
		if ds, ok := lookup(f.DatasetID); ok && ds.GetOwnerCity() != cfg.City {
			key := fmt.Sprintf("data.files[%d].dataset", i)
			r.problem(lc.where(key), key, fmt.Sprintf("%s is owned by %s in the catalog, not by this node's city %s", f.DatasetID, ds.GetOwnerCity(), cfg.City))
		}
	}
}

// checkFileSchemas compares each source whose files are all there with
// its catalog schema, through the connector's own check.
func checkFileSchemas(ctx context.Context, lc *loadedConfig, srcs []connector.Source, present map[string]bool, lookup connector.Catalog, r *checkReport) {
	var ready []connector.Source
	for _, s := range srcs {
		if present[s.DatasetID] {
			ready = append(ready, s)
		}
	}
	if len(ready) == 0 {
		return
	}
	db, err := connector.OpenDuckDB(ctx, ready, lookup)
	if err != nil {
		r.problem(lc.where("data.files"), "data.files", err.Error())
		return
	}
	defer db.Close()
	for i, s := range srcs {
		if !present[s.DatasetID] {
			continue
		}
		key := fmt.Sprintf("data.files[%d]", i)
		reportMismatches(lc, key, s.DatasetID, db.Problems(s.DatasetID), r)
	}
}

// checkPostgres connects to the database and, with schemas, compares
// each table with its catalog schema.
func checkPostgres(ctx context.Context, lc *loadedConfig, pg *node.PostgresData, lookup connector.Catalog, schemas bool, r *checkReport) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := connector.OpenPostgres(ctx, pg.DSN, pg.Tables, lookup)
	if err != nil {
		r.problem(lc.where("data.postgres.dsn"), "data.postgres.dsn", "cannot reach the database: "+strings.TrimPrefix(err.Error(), "connector: "))
		return
	}
	defer p.Close()
	r.OK = append(r.OK, "data.postgres: the database is reachable")
	if !schemas {
		return
	}
	for i, t := range pg.Tables {
		key := fmt.Sprintf("data.postgres.tables[%d]", i)
		reportMismatches(lc, key, t.DatasetID, p.Problems(t.DatasetID), r)
	}
}

func reportMismatches(lc *loadedConfig, key, id string, ms []connector.Mismatch, r *checkReport) {
	if len(ms) == 0 {
		r.OK = append(r.OK, fmt.Sprintf("%s %s: matches the catalog schema", key, id))
		return
	}
	for _, m := range ms {
		r.problem(lc.where(key), key, m.String())
	}
}
