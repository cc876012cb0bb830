package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// --log-format json writes one JSON object a line; text stays key=value;
// anything else is refused naming the flag, before the node starts.
func TestLogFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(Env{Stderr: &buf}, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("node started", "city", "shanghai")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "node started" || line["city"] != "shanghai" {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	buf.Reset()
	if log, err = newLogger(Env{Stderr: &buf}, "info", "text"); err != nil {
		t.Fatal(err)
	}
	log.Info("node started", "city", "shanghai")
	if !strings.Contains(buf.String(), "msg=\"node started\" city=shanghai") {
		t.Fatalf("text log line %q", buf.String())
	}
	served := t.TempDir() // serve reads its data dir's yrdnode.toml first
	if r := run(t, nil, "init", "--data-dir", served, "--city", "shanghai"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	for cmd, dir := range map[string]string{"serve": served, "dev": t.TempDir()} {
		r := run(t, nil, cmd, "--data-dir", dir, "--log-format", "xml")
		if r.code == 0 || !strings.Contains(r.stderr, "--log-format") {
			t.Errorf("%s --log-format xml: %+v", cmd, r)
		}
	}
}
