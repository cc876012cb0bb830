package node_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/node"
)

// TestConfigErrorNamesField: each Validate refusal is a *node.ConfigError
// naming the field at fault (and the entry of a list), so the CLI can point
// at the setting without reading the message, which stays as it was.
func TestConfigErrorNamesField(t *testing.T) {
	file := func(id string) connector.Source {
		return connector.Source{DatasetID: id, Format: "csv", Paths: []string{"x.csv"}}
	}
	for _, c := range []struct {
		name    string
		edit    func(*node.Config)
		field   string
		index   int
		related []string
		msg     string
	}{
		{"raft heartbeat", func(c *node.Config) { c.Raft.HeartbeatTimeout = time.Millisecond }, "Raft.HeartbeatTimeout", -1, nil, "consensus: HeartbeatTimeout 1ms is below 5ms"},
		{"raft election", func(c *node.Config) { c.Raft.ElectionTimeout = c.Raft.HeartbeatTimeout / 2 }, "Raft.ElectionTimeout", -1, []string{"Raft.HeartbeatTimeout"}, "consensus: ElectionTimeout 200ms is below HeartbeatTimeout 400ms"},
		{"drain timeout", func(c *node.Config) { c.DrainTimeout = 0 }, "DrainTimeout", -1, nil, "config: DrainTimeout must be positive"},
		{"shared message", func(c *node.Config) { c.MaxResultBytes = -1 }, "MaxResultBytes", -1, nil, "config: QueryTimeout, MaxQueriesPerRequester, MaxResultBytes"},
		{"join token", func(c *node.Config) { c.JoinAddr = "127.0.0.1:7401" }, "JoinToken", -1, []string{"JoinAddr"}, "config: JoinAddr and JoinToken go together"},
		{"file entry", func(c *node.Config) { c.Data.Files = []connector.Source{file("a.b"), file("a.c"), {DatasetID: "a.d"}} }, "Data.Files", 2, nil, "config: Data.Files[2]: a dataset id and at least one path are required"},
		{"file twice", func(c *node.Config) { c.Data.Files = []connector.Source{file("a.b"), file("a.b")} }, "Data.Files", 1, nil, `config: Data.Files[1]: dataset "a.b" is configured twice`},
		{"postgres table", func(c *node.Config) {
			c.Data.Files = []connector.Source{file("a.b")}
			c.Data.Postgres = &node.PostgresData{DSN: "host=x", Tables: []connector.PGTable{{DatasetID: "a.c", Table: "c"}, {DatasetID: "a.b", Table: "b"}}}
		}, "Data.Postgres.Tables", 1, nil, `config: Data.Postgres.Tables[1]: dataset "a.b" is configured twice`},
		{"logger", func(c *node.Config) { c.Logger = nil }, "Logger", -1, nil, "config: Logger is required"},
	} {
		cfg := node.DefaultConfig()
		cfg.DataDir, cfg.City = t.TempDir(), "shanghai"
		c.edit(&cfg)
		err := cfg.Validate()
		var ce *node.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v (%T) is not a *node.ConfigError", c.name, err, err)
			continue
		}
		if ce.Field != c.field || ce.Index != c.index || !slices.Equal(ce.Related, c.related) || !strings.HasPrefix(err.Error(), c.msg) {
			t.Errorf("%s: got %+v, want field %s index %d related %v message %q", c.name, *ce, c.field, c.index, c.related, c.msg)
		}
	}
}

// TestConfigErrorWrapsConsensus: a raft refusal is also consensus's own
// typed error, naming the field as consensus.Config spells it.
func TestConfigErrorWrapsConsensus(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.City = t.TempDir(), "shanghai"
	cfg.Raft.SnapshotsRetained = 0
	var ce *consensus.ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != "SnapshotsRetained" {
		t.Fatalf("got %v (%T)", err, err)
	}
}
