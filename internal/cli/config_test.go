package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writeTOML writes text as dir's yrdnode.toml.
func writeTOML(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, configFileName)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const minimalTOML = `city = "shanghai"

[api]
addr = "127.0.0.1:0"

[fabric]
addrs = ["/ip4/127.0.0.1/tcp/0"]
`

// TestConfigFileRefusals: an unknown key, a bad duration, a value of the
// wrong type, a bad log level, an invalid setting and a syntax error are
// each refused with the key and its line, by serve and by config check,
// and serve starts nothing.
func TestConfigFileRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, text, want string }{
		{"unknown key", minimalTOML + "\n[query]\ntimeout = \"30s\"\ncolour = \"red\"\n", `yrdnode.toml:11: unknown key "query.colour"`},
		{"unknown data key", minimalTOML + "\n[[data.files]]\ndataset = \"a.b\"\npath = [\"x.csv\"]\n", `yrdnode.toml:11: unknown key "data.files.path"`},
		{"bad duration", minimalTOML + "\n[query]\ntimeout = \"10 sec\"\n", `yrdnode.toml:10: query.timeout: "10 sec" is not a duration such as "500ms", "30s", "1m30s" or "2h"`},
		{"wrong type", minimalTOML + "\n[query]\nmax_per_requester = \"four\"\n", `yrdnode.toml:10: query.max_per_requester: a TOML string is not an integer`},
		{"list for a string", "city = [\"shanghai\"]\n", `yrdnode.toml:1: city: a TOML array is not a string`},
		{"bad log level", minimalTOML + "\n[log]\nlevel = \"loud\"\n", `yrdnode.toml:10: log.level: "loud" is not debug, info, warn or error`},
		{"invalid value", minimalTOML + "\n[query]\n\ntimeout = \"-1s\"\n", `yrdnode.toml:11: query.timeout: config: QueryTimeout`},
		{"unknown city", "city = \"atlantis\"\n", `yrdnode.toml:1: city: config: City "atlantis" is not a delta city id`},
		{"data field", minimalTOML + "\n[[data.files]]\ndataset = \"a.b\"\npaths = [\"a.csv\"]\n\n[[data.files]]\npaths = [\"b.csv\"]\n", `yrdnode.toml:13: data.files[1].dataset: required`},
		{"syntax", "city = \"shanghai\n", `yrdnode.toml:1: `},
	} {
		path := writeTOML(t, dir, c.text)
		for _, args := range [][]string{{"serve", "--data-dir", dir}, {"config", "check", "--file", path}} {
			r := run(t, nil, args...)
			if r.code != 1 || !strings.Contains(r.stderr, path+strings.TrimPrefix(c.want, configFileName)) {
				t.Errorf("%s: %s: want %q in\n%+v", c.name, args[0], c.want, r)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("a refused config left files behind: %v", entries)
	}
}

// TestConfigPrecedence: the file's value, overridden by YRDNODE_*, overridden by a flag.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := writeTOML(t, dir, minimalTOML+"\n[query]\ntimeout = \"30s\"\nmax_per_requester = 2\n\n[log]\nlevel = \"warn\"\n")
	load := func(env map[string]string, args ...string) *loadedConfig {
		t.Helper()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		addServeFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		lc, err := loadNodeConfig(dir, Env{Getenv: func(k string) string { return env[k] }}, fs, serveFlagKeys)
		if err != nil {
			t.Fatal(err)
		}
		return lc
	}
	lc := load(nil)
	cfg, err := lc.nodeConfig(dir, slogDiscard(), "test")
	if err != nil || cfg.QueryTimeout != 30*time.Second || cfg.MaxQueriesPerRequester != 2 || lc.file.Log.Level != "warn" || cfg.APIAddr != "127.0.0.1:0" {
		t.Fatalf("file alone: %+v, %v", cfg, err)
	}
	if w := lc.where("query.timeout"); w != path+":10" {
		t.Fatalf("query.timeout set at %q", w)
	}
	env := map[string]string{"YRDNODE_QUERY_TIMEOUT": "45s", "YRDNODE_LOG_LEVEL": "error", "YRDNODE_FABRIC_ADDRS": "/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2", "YRDNODE_FABRIC_ENABLE_RELAY": "true"}
	lc = load(env)
	cfg, err = lc.nodeConfig(dir, slogDiscard(), "test")
	if err != nil || cfg.QueryTimeout != 45*time.Second || cfg.MaxQueriesPerRequester != 2 || lc.file.Log.Level != "error" || !cfg.EnableRelay ||
		!reflect.DeepEqual(cfg.FabricAddrs, []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"}) {
		t.Fatalf("env over file: %+v, %v", cfg, err)
	}
	lc = load(env, "--log-level", "debug", "--enable-relay=false")
	cfg, err = lc.nodeConfig(dir, slogDiscard(), "test")
	if err != nil || lc.file.Log.Level != "debug" || cfg.EnableRelay || cfg.QueryTimeout != 45*time.Second {
		t.Fatalf("flag over env: %+v, %v", cfg, err)
	}
	if lc.where("log.level") != "--log-level" || lc.where("query.timeout") != "$YRDNODE_QUERY_TIMEOUT" {
		t.Fatalf("origins: %v", lc.origin)
	}
	// A bad value in the environment names the variable.
	r := run(t, map[string]string{"YRDNODE_QUERY_TIMEOUT": "soon"}, "serve", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, `$YRDNODE_QUERY_TIMEOUT: query.timeout: "soon" is not a duration`) {
		t.Fatalf("bad env: %+v", r)
	}
}

// TestConfigInvalidSettingSource: a value that reads but that the node
// refuses is reported with its key and where it was set: a variable, a
// file line, the related setting that was set when the one named was
// not, or both.
func TestConfigInvalidSettingSource(t *testing.T) {
	dir := t.TempDir()
	dup := "\n[[data.files]]\ndataset = \"a.b\"\npaths = [\"a.csv\"]\n\n[[data.files]]\ndataset = \"a.b\"\npaths = [\"b.csv\"]\n"
	for _, c := range []struct {
		name, text string
		env        map[string]string
		want       string
	}{
		{"env", minimalTOML, map[string]string{"YRDNODE_QUERY_DRAIN_TIMEOUT": "-1s"},
			"$YRDNODE_QUERY_DRAIN_TIMEOUT: query.drain_timeout: config: DrainTimeout must be positive"},
		{"raft env", minimalTOML, map[string]string{"YRDNODE_RAFT_HEARTBEAT_TIMEOUT": "1ms"},
			"$YRDNODE_RAFT_HEARTBEAT_TIMEOUT: raft.heartbeat_timeout: consensus: HeartbeatTimeout 1ms is below 5ms"},
		{"related", minimalTOML + "\n[raft]\nheartbeat_timeout = \"2s\"\n", nil,
			"yrdnode.toml:10: raft.heartbeat_timeout: consensus: ElectionTimeout 400ms is below HeartbeatTimeout 2s"},
		{"both", minimalTOML + "\n[raft]\nelection_timeout = \"1s\"\n", map[string]string{"YRDNODE_RAFT_HEARTBEAT_TIMEOUT": "2s"},
			"consensus: ElectionTimeout 1s is below HeartbeatTimeout 2s (settings: raft.election_timeout (yrdnode.toml:10), raft.heartbeat_timeout ($YRDNODE_RAFT_HEARTBEAT_TIMEOUT))"},
		{"data entry", minimalTOML + dup, nil,
			`yrdnode.toml:13: data.files[1]: config: Data.Files[1]: dataset "a.b" is configured twice`},
	} {
		path := writeTOML(t, dir, c.text)
		want := strings.ReplaceAll(c.want, configFileName, path)
		r := run(t, c.env, "config", "check", "--file", path)
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: want %q in\n%+v", c.name, want, r)
		}
	}
}

// TestEnvironmentNames: every setting has its own variable, none of them
// one a client flag reads with another meaning.
func TestEnvironmentNames(t *testing.T) {
	seen := map[string]string{}
	client := map[string]bool{"YRDNODE_NODE": true, "YRDNODE_CA": true, "YRDNODE_KEY": true, "YRDNODE_CERT": true, "YRDNODE_CERT_KEY": true, "YRDNODE_DATA_DIR": true}
	for _, s := range settings() {
		name := s.envName()
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s both read %s", s.key, other, name)
		}
		if client[name] {
			t.Errorf("%s reads %s, a client variable", s.key, name)
		}
		seen[name] = s.key
	}
	if seen["YRDNODE_API_ADDR"] != "api.addr" || seen["YRDNODE_QUERY_TIMEOUT"] != "query.timeout" || seen["YRDNODE_JOIN_TOKEN"] != "join.token" {
		t.Fatalf("names: %v", seen)
	}
	for flag, key := range serveFlagKeys {
		if _, ok := settingFor(key); !ok {
			t.Errorf("--%s maps to %q, not a setting", flag, key)
		}
	}
}

// TestExampleConfig: the shipped example parses, validates, mentions
// every setting, and shows each at its default (but for the node's
// identity and addresses, which it gives as examples).
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "yrdnode.example.toml")
	lc, err := readConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.nodeConfig(t.TempDir(), slogDiscard(), "test"); err != nil {
		t.Fatal(err)
	}
	def := defaultFileConfig()
	fv, dv := reflect.ValueOf(&lc.file).Elem(), reflect.ValueOf(&def).Elem()
	for _, s := range settings() {
		if _, ok := lc.lines[s.key]; !ok {
			t.Errorf("the example does not mention %s", s.key)
			continue
		}
		if s.inPointer || s.key == "city" || s.key == "api.addr" || s.key == "fabric.addrs" {
			continue
		}
		got, _ := s.field(fv, false)
		want, _ := s.field(dv, false)
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("the example shows %s = %v, the default is %v", s.key, got, want)
		}
	}
	for _, key := range []string{"data.files[0].dataset", "data.files[0].format", "data.files[0].paths", "data.postgres.tables[0].schema", "data.postgres.tables[0].table"} {
		if _, ok := lc.lines[key]; !ok {
			t.Errorf("the example does not show %s", key)
		}
	}
}

// TestEncodeConfigRoundTrip: what init and migrate write reads back as
// the same settings, writes only what differs from the defaults, and
// keeps the data mappings.
func TestEncodeConfigRoundTrip(t *testing.T) {
	fc := defaultFileConfig()
	fc.City, fc.API.Addr = "hangzhou", "0.0.0.0:7401"
	fc.Query.Timeout = duration(90 * time.Second)
	fc.Data.Files = []fileSource{{Dataset: "hangzhou.x.y", Paths: []string{"a.csv", "b/*.csv"}}}
	fc.Data.Postgres = &pgSource{DSN: "postgres://r@db/x", Tables: []pgTable{{Dataset: "hangzhou.x.z", Table: "t"}}}
	data, err := encodeConfig(fc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.Contains(text, `timeout = '1m30s'`) || strings.Contains(text, "heartbeat_timeout") || !strings.Contains(text, "[[data.files]]") {
		t.Fatalf("encoded:\n%s", text)
	}
	back := defaultFileConfig()
	if _, err := decodeConfig("x.toml", data, &back); err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	if !reflect.DeepEqual(back, fc) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, fc)
	}
}

// FuzzDecodeConfig: any input either decodes, and then writes and reads
// back to the same file, or is refused with an error that names where.
func FuzzDecodeConfig(f *testing.F) {
	for _, seed := range []string{
		minimalTOML,
		minimalTOML + "\n[query]\ntimeout = \"10 sec\"\n",
		minimalTOML + "\n[query]\ncolour = 1\n",
		"city = 'x'\n[[data.files]]\ndataset = 'a'\npaths = ['x']\n[[data.files]]\ndataset = 'b'\npaths = ['y']\n",
		"[data]\nfiles = [{dataset = 'a', paths = ['p']}]\npostgres = {dsn = 'x', tables = [{dataset = 'b', table = 't'}]}\n",
		"[raft]\nsnapshot_threshold = -1\n",
		"a.b.c = 1\n[api\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	if data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "yrdnode.example.toml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fc := defaultFileConfig()
		if _, err := decodeConfig("f.toml", data, &fc); err != nil {
			if !strings.Contains(err.Error(), "f.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out, err := encodeConfig(fc)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back := defaultFileConfig()
		if _, err := decodeConfig("g.toml", out, &back); err != nil {
			t.Fatalf("written file does not read back: %v\n%s", err, out)
		}
		again, _ := encodeConfig(back)
		if string(again) != string(out) {
			t.Fatalf("not stable:\n%s\n---\n%s", out, again)
		}
	})
}
