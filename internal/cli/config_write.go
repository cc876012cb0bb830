package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
)

// alwaysWritten are the settings a written file states even at their
// defaults: which node this is and where it listens.
var alwaysWritten = []string{"city", "api.addr", "fabric.addrs"}

// configHeader opens every yrdnode.toml that init or migrate writes.
const configHeader = `# yrdnode node configuration. Settings left out take their defaults; the annotated
# example (deploy/yrdnode.example.toml in the source) lists every setting, its default
# and what it does. YRDNODE_* environment variables override this file (the key path
# in capitals, dots as underscores: YRDNODE_QUERY_TIMEOUT), and serve's flags override
# both. 'yrdnode config check --data-dir DIR' validates it and the data mappings.

`

// encodeConfig writes fc as TOML: the settings that differ from the
// defaults, those of alwaysWritten, and the data mappings.
func encodeConfig(fc fileConfig) ([]byte, error) {
	def := defaultFileConfig()
	fv, dv := reflect.ValueOf(&fc).Elem(), reflect.ValueOf(&def).Elem()
	tree := map[string]any{}
	for _, s := range settings() {
		v, ok := s.field(fv, false)
		if !ok || s.inPointer {
			continue // data.postgres is written whole below
		}
		d, _ := s.field(dv, false)
		if !slices.Contains(alwaysWritten, s.key) && reflect.DeepEqual(v.Interface(), d.Interface()) {
			continue
		}
		val := v.Interface()
		if dur, ok := val.(duration); ok {
			val = formatDuration(time.Duration(dur))
		}
		putKey(tree, s.key, val)
	}
	if len(fc.Data.Files) > 0 || fc.Data.Postgres != nil {
		data, _ := tree["data"].(map[string]any)
		if data == nil {
			data = map[string]any{}
			tree["data"] = data
		}
		if len(fc.Data.Files) > 0 {
			data["files"] = fc.Data.Files
		}
		if fc.Data.Postgres != nil {
			data["postgres"] = fc.Data.Postgres
		}
	}
	body, err := toml.Marshal(tree)
	if err != nil {
		return nil, err
	}
	return append([]byte(configHeader), body...), nil
}

// putKey stores v at a dotted key path in nested maps.
func putKey(tree map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, _ := tree[p].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
			tree[p] = sub
		}
		tree = sub
	}
	tree[parts[len(parts)-1]] = v
}

// formatDuration writes d as people do: "1m", not "1m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// writeConfigFile writes fc to path, which must not exist yet: the file
// appears whole or not at all, and an existing one is never replaced.
func writeConfigFile(path string, fc fileConfig) error {
	data, err := encodeConfig(fc)
	if err != nil {
		return err
	}
	return writeNewFile(path, data)
}

// writeNewFile writes data to path through a temporary file that is then
// linked to path, which fails if path exists.
func writeNewFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists", path)
		}
		return err
	}
	return nil
}

// initialised reports whether dataDir has a config file, new or old.
func initialised(dataDir string) bool {
	for _, name := range []string{configFileName, nodeFileName} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); err == nil {
			return true
		}
	}
	return false
}

// runConfigMigrate writes yrdnode.toml from an old data dir's node.json,
// after checking that both give the node the same config, and keeps
// node.json as node.json.bak so that one file is the node's config.
func runConfigMigrate(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dataDir := dataDirFlag(fs)
	return func(_ context.Context, _ []string) error {
		if *dataDir == "" {
			return usageError{"config migrate needs --data-dir"}
		}
		tomlPath, jsonPath := filepath.Join(*dataDir, configFileName), filepath.Join(*dataDir, nodeFileName)
		if _, err := os.Stat(tomlPath); err == nil {
			return fmt.Errorf("%s already exists: nothing to migrate (node.json, if any, is not read)", tomlPath)
		}
		nf, err := readNodeFile(*dataDir)
		if err != nil {
			return err
		}
		data, err := migratedConfig(nf, *dataDir, tomlPath)
		if err != nil {
			return err
		}
		if err := writeNewFile(tomlPath, data); err != nil {
			return err
		}
		if err := os.Rename(jsonPath, jsonPath+".bak"); err != nil {
			os.Remove(tomlPath)
			return err
		}
		if cf.output == "json" {
			return printValue(env.Stdout, map[string]string{"config": tomlPath, "backup": jsonPath + ".bak"})
		}
		fmt.Fprintf(env.Stdout, "wrote %s with the settings of %s (kept as %s.bak); the node reads it on its next start\n", tomlPath, jsonPath, nodeFileName)
		return nil
	}
}

// migratedConfig is the yrdnode.toml for nf, verified: loaded back, it
// gives the node the same config as nf does.
func migratedConfig(nf nodeFile, dataDir, tomlPath string) ([]byte, error) {
	discard := slog.New(slog.DiscardHandler)
	want, err := nodeConfig(nf, dataDir, discard, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %v (fix it, then migrate)", filepath.Join(dataDir, nodeFileName), err)
	}
	data, err := encodeConfig(fileConfigFromNodeFile(nf))
	if err != nil {
		return nil, err
	}
	lc := &loadedConfig{file: defaultFileConfig(), path: tomlPath, origin: map[string]string{}}
	if lc.lines, err = decodeConfig(tomlPath, data, &lc.file); err != nil {
		return nil, fmt.Errorf("the migrated file does not read back: %w", err)
	}
	got, err := lc.nodeConfig(dataDir, discard, "")
	if err != nil {
		return nil, fmt.Errorf("the migrated file does not read back: %w", err)
	}
	if !reflect.DeepEqual(want, got) {
		return nil, fmt.Errorf("the migrated file would change the node's config (%+v, want %+v); nothing written", got, want)
	}
	return data, nil
}
