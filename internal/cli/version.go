package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// buildInfo is what `yrdnode version` reports.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Date     string `json:"date"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

// readBuildInfo is debug.ReadBuildInfo; tests replace it.
var readBuildInfo = debug.ReadBuildInfo

// withBuildInfo fills what -ldflags -X did not set from the build info
// the go command stamps into the binary: the module version, and the VCS
// revision and time when it was built in a checkout.
func withBuildInfo(env Env) Env {
	bi, ok := readBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if env.Version == "" {
		env.Version = bi.Main.Version
		if env.Version == "" || env.Version == "(devel)" {
			env.Version = "dev"
		}
	}
	if env.Commit == "" {
		env.Commit = buildSetting(bi, "vcs.revision")
		env.modified = env.Commit != "" && buildSetting(bi, "vcs.modified") == "true"
	}
	if env.Date == "" {
		env.Date = buildSetting(bi, "vcs.time")
	}
	return env
}

func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func versionOf(env Env) buildInfo {
	return buildInfo{Version: env.Version, Commit: env.Commit, Date: env.Date, Modified: env.modified, Go: runtime.Version()}
}

// runVersion prints the version, then the commit and build date when
// they are known (a test binary knows neither).
func runVersion(_ *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(context.Context, []string) error {
		v := versionOf(env)
		if cf.output == "json" {
			data, _ := json.MarshalIndent(v, "", "  ")
			_, err := fmt.Fprintln(env.Stdout, string(data))
			return err
		}
		fmt.Fprintf(env.Stdout, "yrdnode %s\n", v.Version)
		if v.Commit != "" {
			dirty := ""
			if v.Modified {
				dirty = " (with uncommitted changes)"
			}
			fmt.Fprintf(env.Stdout, "commit %s%s\n", v.Commit, dirty)
		}
		if v.Date != "" {
			fmt.Fprintf(env.Stdout, "built %s\n", v.Date)
		}
		return nil
	}
}
