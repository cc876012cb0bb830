package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/node"
)

// loadedConfig is a node's configuration from its sources, each
// overriding the one before: the file (yrdnode.toml, or an old data dir's
// node.json), YRDNODE_* environment variables, and the command line.
type loadedConfig struct {
	file   fileConfig
	path   string // the file read
	legacy bool   // path is a node.json
	lines  keyLines
	origin map[string]string // key → "$YRDNODE_…" or "--flag", where set last
}

// serveFlagKeys maps serve's flags to the settings they override. A new
// serve flag for a setting is one row here.
var serveFlagKeys = map[string]string{
	"via":                  "join.via",
	"token":                "join.token",
	"log-level":            "log.level",
	"log-format":           "log.format",
	"admin-addr":           "admin.addr",
	"pprof":                "admin.pprof",
	"drain-timeout":        "query.drain_timeout",
	"enable-nat-portmap":   "fabric.enable_nat_portmap",
	"enable-relay":         "fabric.enable_relay",
	"enable-hole-punching": "fabric.enable_hole_punching",
	"enable-autonat":       "fabric.enable_autonat",
}

// where says where key's value came from: "FILE:LINE", "$YRDNODE_…",
// "--flag", or the file alone for a default. A key inside a data mapping
// that the file leaves out is placed at its mapping.
func (lc *loadedConfig) where(key string) string {
	if o, ok := lc.origin[key]; ok {
		return o
	}
	if n, ok := lc.lines[key]; ok {
		return fmt.Sprintf("%s:%d", lc.path, n)
	}
	if n, ok := lc.lines.line(key); ok && strings.HasPrefix(key, "data.") {
		return fmt.Sprintf("%s:%d", lc.path, n)
	}
	return lc.path
}

// isSet reports whether the file, the environment or a flag set key.
func (lc *loadedConfig) isSet(key string) bool {
	_, inFile := lc.lines[key]
	_, elsewhere := lc.origin[key]
	return inFile || elsewhere
}

// readConfigFile reads path as a yrdnode.toml over the defaults.
func readConfigFile(path string) (*loadedConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lc := &loadedConfig{file: defaultFileConfig(), path: path, origin: map[string]string{}}
	if lc.lines, err = decodeConfig(path, data, &lc.file); err != nil {
		return nil, err
	}
	return lc, nil
}

// readDataDirConfig reads dataDir's yrdnode.toml or, in a data dir made
// before it existed, its node.json.
func readDataDirConfig(dataDir string) (*loadedConfig, error) {
	lc, err := readConfigFile(filepath.Join(dataDir, configFileName))
	if !errors.Is(err, os.ErrNotExist) {
		return lc, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, nodeFileName)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: run 'yrdnode init --data-dir %s --city CITY' first", dataDir, configFileName, dataDir)
	}
	nf, err := readNodeFile(dataDir)
	if err != nil {
		return nil, err
	}
	return &loadedConfig{file: fileConfigFromNodeFile(nf), path: filepath.Join(dataDir, nodeFileName), legacy: true, origin: map[string]string{}}, nil
}

// fileConfigFromNodeFile is the yrdnode.toml of a node.json: its
// settings, and the defaults for everything node.json could not say.
func fileConfigFromNodeFile(nf nodeFile) fileConfig {
	fc := defaultFileConfig()
	fc.City, fc.API.Addr, fc.Fabric.Addrs = nf.City, nf.APIAddr, nf.FabricAddrs
	if nf.Data != nil {
		fc.Data.Files, fc.Data.Postgres = nf.Data.Files, nf.Data.Postgres
	}
	return fc
}

// override applies the environment (getenv) and then the flags of fs
// that the command line set, by flagKeys.
func (lc *loadedConfig) override(getenv func(string) string, fs *pflag.FlagSet, flagKeys map[string]string) error {
	root := reflect.ValueOf(&lc.file).Elem()
	var errs []error
	for _, s := range settings() {
		name := s.envName()
		if text := getenv(name); text != "" {
			errs = append(errs, lc.set(root, s, text, "$"+name))
		}
	}
	names := make([]string, 0, len(flagKeys))
	for name := range flagKeys {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		s, ok := settingFor(flagKeys[name])
		if !ok {
			return fmt.Errorf("flag --%s: no setting %q", name, flagKeys[name])
		}
		errs = append(errs, lc.set(root, s, f.Value.String(), "--"+name))
	}
	return errors.Join(errs...)
}

func (lc *loadedConfig) set(root reflect.Value, s setting, text, origin string) error {
	if err := s.set(root, text); err != nil {
		return configError{where: origin, key: s.key, msg: err.Error()}
	}
	lc.origin[s.key] = origin
	return nil
}

// logger makes the logger that log.level and log.format ask for.
func (lc *loadedConfig) logger(env Env) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(lc.file.Log.Level)); err != nil {
		return nil, configError{where: lc.where("log.level"), key: "log.level", msg: fmt.Sprintf("%q is not debug, info, warn or error", lc.file.Log.Level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch lc.file.Log.Format {
	case "", "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, configError{where: lc.where("log.format"), key: "log.format", msg: fmt.Sprintf("%q is not text or json", lc.file.Log.Format)}
}

// nodeConfig is the node's config: the settings, the data mappings with
// relative paths taken from dataDir, validated. An error names the key
// and where it was set.
func (lc *loadedConfig) nodeConfig(dataDir string, log *slog.Logger, version string) (node.Config, error) {
	cfg := node.DefaultConfig()
	applySettings(&lc.file, &cfg)
	cfg.DataDir, cfg.Logger, cfg.Version = dataDir, log, version
	data, err := dataConfig(&dataFile{Files: lc.file.Data.Files, Postgres: lc.file.Data.Postgres}, dataDir)
	if err != nil {
		key, msg, _ := strings.Cut(err.Error(), ": ")
		return cfg, configError{where: lc.where(key), key: key, msg: msg}
	}
	cfg.Data = data
	if err := cfg.Validate(); err != nil {
		return cfg, lc.explainValidate(err)
	}
	return cfg, nil
}

// explainValidate names the key of the node.Config field a Validate error
// is about and where it was set. Of a check comparing fields, it names
// those of them that were set: the value to change is among them.
func (lc *loadedConfig) explainValidate(err error) error {
	var ce *node.ConfigError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", lc.path, err)
	}
	key, ok := configKey(ce.Field, ce.Index)
	if !ok {
		return fmt.Errorf("%s: %w", lc.path, err)
	}
	var keys []string
	// A data mapping is in the file even where its key is not.
	if lc.isSet(key) || strings.HasPrefix(key, "data.") {
		keys = append(keys, key)
	}
	for _, f := range ce.Related {
		if k, ok := configKey(f, -1); ok && lc.isSet(k) {
			keys = append(keys, k)
		}
	}
	switch len(keys) {
	case 0: // a default at fault
		return configError{where: lc.where(key), key: key, msg: err.Error()}
	case 1:
		return configError{where: lc.where(keys[0]), key: keys[0], msg: err.Error()}
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " (" + lc.where(k) + ")"
	}
	return fmt.Errorf("%s (settings: %s)", err, strings.Join(parts, ", "))
}

// dataKeys are the keys of the node.Config fields of the data mappings,
// which no setting's cfg tag names.
var dataKeys = map[string]string{
	"Data.Files":           "data.files",
	"Data.Postgres.DSN":    "data.postgres.dsn",
	"Data.Postgres.Tables": "data.postgres.tables",
}

// configKey is the key that sets the node.Config field (entry index of
// a list field, or -1), if one does.
func configKey(field string, index int) (string, bool) {
	if k, ok := dataKeys[field]; ok {
		if index >= 0 {
			k = fmt.Sprintf("%s[%d]", k, index)
		}
		return k, true
	}
	for _, s := range settings() {
		if s.cfg != "" && s.cfg == field {
			return s.key, true
		}
	}
	return "", false
}

// loadNodeConfig reads dataDir's configuration with its overrides.
func loadNodeConfig(dataDir string, env Env, fs *pflag.FlagSet, flagKeys map[string]string) (*loadedConfig, error) {
	lc, err := readDataDirConfig(dataDir)
	if err != nil {
		return nil, err
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return lc, lc.override(getenv, fs, flagKeys)
}

// serveConfig is the config serve and cluster join run a node with: the
// data dir's file, the environment, then serve's flags.
func serveConfig(env Env, fs *pflag.FlagSet, dataDir string) (node.Config, error) {
	lc, err := loadNodeConfig(dataDir, env, fs, serveFlagKeys)
	if err != nil {
		return node.Config{}, err
	}
	log, err := lc.logger(env)
	if err != nil {
		return node.Config{}, err
	}
	if lc.legacy {
		log.Warn("this data dir has a node.json and no "+configFileName+"; 'yrdnode config migrate --data-dir DIR' writes one with the same settings",
			"file", lc.path)
	}
	if node.HasState(dataDir) {
		lc.file.Join = joinSection{} // a member needs no join, and keeps no token
	}
	// The default admin address is shared by every node of a host: taken,
	// it is a warning; an address the operator chose must work.
	chosen := lc.isSet("admin.addr")
	if !chosen {
		lc.file.Admin.Addr = defaultAdminAddr
	}
	cfg, err := lc.nodeConfig(dataDir, log, env.Version)
	cfg.AdminAddrOptional = !chosen
	return cfg, err
}
