package cli

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// configFileName is the node's configuration file in its data dir.
const configFileName = "yrdnode.toml"

// fileConfig is yrdnode.toml. Every setting is one field with a `toml`
// tag, its key inside its section; its `cfg` tag names the node.Config
// field it sets (a path like "Raft.HeartbeatTimeout"), and a setting
// without one is the CLI's own (log.level). Defaults come from
// node.DefaultConfig through the same tags, each setting can be
// overridden by the environment variable YRDNODE_ + its key path in
// capitals with dots as underscores (query.timeout: YRDNODE_QUERY_TIMEOUT),
// and the shipped example must mention it (TestExampleConfigIsComplete).
type fileConfig struct {
	City    string         `toml:"city" cfg:"City"`
	API     apiSection     `toml:"api"`
	Fabric  fabricSection  `toml:"fabric"`
	Join    joinSection    `toml:"join"`
	Log     logSection     `toml:"log"`
	Admin   adminSection   `toml:"admin"`
	Cluster clusterSection `toml:"cluster"`
	Query   querySection   `toml:"query"`
	Raft    raftSection    `toml:"raft"`
	Data    dataSection    `toml:"data"`
}

type apiSection struct {
	Addr string `toml:"addr" cfg:"APIAddr"`
}

type fabricSection struct {
	Addrs              []string `toml:"addrs" cfg:"FabricAddrs"`
	EnableNATPortMap   bool     `toml:"enable_nat_portmap" cfg:"EnableNATPortMap"`
	EnableRelay        bool     `toml:"enable_relay" cfg:"EnableRelay"`
	EnableHolePunching bool     `toml:"enable_hole_punching" cfg:"EnableHolePunching"`
	EnableAutoNAT      bool     `toml:"enable_autonat" cfg:"EnableAutoNAT"`
}

// joinSection is read only by a node without state (its first start).
type joinSection struct {
	Via   string `toml:"via" cfg:"JoinAddr"`
	Token string `toml:"token" cfg:"JoinToken"`
}

type logSection struct {
	Level  string `toml:"level"`
	Format string `toml:"format"` // text or json
}

// adminSection is the admin listener: the web console, /metrics,
// /healthz, and pprof when asked. Left unset, serve listens on
// defaultAdminAddr if it is free.
type adminSection struct {
	Addr              string   `toml:"addr" cfg:"AdminAddr"`
	Pprof             bool     `toml:"pprof" cfg:"EnablePprof"`
	ConsoleSessionTTL duration `toml:"console_session_ttl" cfg:"ConsoleSessionTTL"`
	ConsoleIdleTTL    duration `toml:"console_idle_ttl" cfg:"ConsoleIdleTTL"`
}

type clusterSection struct {
	ForwardTimeout duration `toml:"forward_timeout" cfg:"ForwardTimeout"`
	AnchorInterval duration `toml:"anchor_interval" cfg:"AnchorInterval"`
}

type querySection struct {
	Timeout         duration `toml:"timeout" cfg:"QueryTimeout"`
	MaxPerRequester int      `toml:"max_per_requester" cfg:"MaxQueriesPerRequester"`
	MaxResultBytes  int64    `toml:"max_result_bytes" cfg:"MaxResultBytes"`
	DiffCheckWindow duration `toml:"diff_check_window" cfg:"DiffCheckWindow"`
	DrainTimeout    duration `toml:"drain_timeout" cfg:"DrainTimeout"`
}

type raftSection struct {
	HeartbeatTimeout   duration `toml:"heartbeat_timeout" cfg:"Raft.HeartbeatTimeout"`
	ElectionTimeout    duration `toml:"election_timeout" cfg:"Raft.ElectionTimeout"`
	LeaderLeaseTimeout duration `toml:"leader_lease_timeout" cfg:"Raft.LeaderLeaseTimeout"`
	CommitTimeout      duration `toml:"commit_timeout" cfg:"Raft.CommitTimeout"`
	MaxAppendEntries   int      `toml:"max_append_entries" cfg:"Raft.MaxAppendEntries"`
	SnapshotThreshold  uint64   `toml:"snapshot_threshold" cfg:"Raft.SnapshotThreshold"`
	SnapshotInterval   duration `toml:"snapshot_interval" cfg:"Raft.SnapshotInterval"`
	TrailingLogs       uint64   `toml:"trailing_logs" cfg:"Raft.TrailingLogs"`
	SnapshotsRetained  int      `toml:"snapshots_retained" cfg:"Raft.SnapshotsRetained"`
}

// dataSection is the local data mappings (the same shape as node.json's
// "data" object) and how often they are checked.
type dataSection struct {
	RecheckInterval duration     `toml:"recheck_interval" cfg:"DataRecheckInterval"`
	Files           []fileSource `toml:"files"`
	Postgres        *pgSource    `toml:"postgres"`
}

// duration is a time.Duration written as Go writes durations ("30s",
// "1m30s", "2h").
type duration time.Duration

// durationHelp says what a duration setting expects.
const durationHelp = `a duration such as "500ms", "30s", "1m30s" or "2h"`

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not %s", b, durationHelp)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// configError is a problem with one setting: where it came from (a file
// and line, an environment variable or a flag), its key and what is wrong.
type configError struct {
	where, key, msg string
}

func (e configError) Error() string {
	switch {
	case e.key == "":
		return e.where + ": " + e.msg
	case e.where == "":
		return e.key + ": " + e.msg
	}
	return e.where + ": " + e.key + ": " + e.msg
}

// decodeConfig reads a yrdnode.toml over defaults, strictly: an unknown
// key, a value of the wrong type and a syntax error are each an error
// naming the key and its line in name. It also returns where each key is.
func decodeConfig(name string, data []byte, into *fileConfig) (keyLines, error) {
	lines := keyLines{}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return lines, tomlError(name, err)
	}
	var err error
	if lines, err = indexKeys(data); err != nil {
		return lines, tomlError(name, err)
	}
	return lines, nil
}

// tomlError turns go-toml's errors into configErrors with a line each.
func tomlError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for _, e := range strict.Errors {
			row, _ := e.Position()
			errs = append(errs, configError{where: fmt.Sprintf("%s:%d", name, row), msg: fmt.Sprintf("unknown key %q", strings.Join(e.Key(), "."))})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		where := fmt.Sprintf("%s:%d", name, row)
		key := strings.Join(de.Key(), ".")
		if key == "" {
			return configError{where: where, msg: strings.TrimPrefix(de.Error(), "toml: ")}
		}
		return configError{where: where, key: key, msg: valueProblem(key, de.Error())}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// tomlTypeMismatch matches go-toml's message for a value of the wrong type.
var tomlTypeMismatch = regexp.MustCompile(`cannot decode TOML (\w+) into`)

// valueProblem says what is wrong with the value of key and what the key
// expects, instead of go-toml's message naming Go types.
func valueProblem(key, msg string) string {
	msg = strings.TrimPrefix(msg, "toml: ")
	want := expected(key)
	if m := tomlTypeMismatch.FindStringSubmatch(msg); m != nil && want != "" {
		return fmt.Sprintf("a TOML %s is not %s", m[1], want)
	}
	if want != "" && !strings.Contains(msg, want) {
		return msg + " (want " + want + ")"
	}
	return msg
}
