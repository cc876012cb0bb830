package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/pgtest"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
)

const (
	elderlyID  = "shanghai.civil-affairs.elderly-population"
	tripsID    = "shanghai.connected-vehicles.lingang-trips"
	registryID = "shanghai.public-security.household-registry"
)

func sampleDataset(t *testing.T, id string) *yrdv1.Dataset {
	t.Helper()
	for _, d := range sample.Datasets() {
		if d.GetId() == id {
			return d
		}
	}
	t.Fatalf("no sample dataset %s", id)
	return nil
}

// writeStoppedCatalog leaves in dir the catalog.db of a cleanly stopped
// node that holds the sample datasets.
func writeStoppedCatalog(t *testing.T, dir string) {
	t.Helper()
	c, err := store.OpenCatalog(filepath.Join(dir, "catalog.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Update(1, func(tx *store.Tx) error {
		for _, d := range sample.Datasets() {
			if err := tx.PutDataset(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "catalog.clean"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigCheckFiles: config check against a stopped node's catalog
// finds a missing data file (naming its key and line), a file whose
// columns are not the dataset's, and passes the one that matches; it
// changes nothing, and refuses to read a catalog a running node holds.
func TestConfigCheckFiles(t *testing.T) {
	dir := t.TempDir()
	writeStoppedCatalog(t, dir)
	if err := writeSynthCSV(filepath.Join(dir, "data", "elderly.csv"), sampleDataset(t, elderlyID), 200); err != nil {
		t.Fatal(err)
	}
	// The elderly rows under the trips dataset: every column differs.
	if err := writeSynthCSV(filepath.Join(dir, "data", "trips.csv"), sampleDataset(t, elderlyID), 50); err != nil {
		t.Fatal(err)
	}
	path := writeTOML(t, dir, minimalTOML+`
[[data.files]]
dataset = "`+elderlyID+`"
paths = ["data/elderly.csv"]

[[data.files]]
dataset = "`+tripsID+`"
paths = ["data/trips.csv"]

[[data.files]]
dataset = "`+registryID+`"
format = "csv"
paths = ["data/registry-*.csv", "data/missing.csv"]
`)
	before, _ := os.ReadFile(filepath.Join(dir, "catalog.db"))
	r := run(t, nil, "config", "check", "--data-dir", dir)
	missing := fmt.Sprintf("PROBLEM: %s:20: data.files[2].paths: %s: no such file", path, filepath.Join(dir, "data", "missing.csv"))
	noMatch := fmt.Sprintf("PROBLEM: %s:20: data.files[2].paths: %s: no file matches", path, filepath.Join(dir, "data", "registry-*.csv"))
	if r.code != 1 || !strings.Contains(r.stdout, "ok: data.files[0] "+elderlyID+": matches the catalog schema") ||
		!strings.Contains(r.stdout, missing) || !strings.Contains(r.stdout, noMatch) ||
		!strings.Contains(r.stdout, fmt.Sprintf("PROBLEM: %s:13: data.files[1]: %s: column ", path, tripsID)) ||
		!strings.Contains(r.stdout, "catalog: "+filepath.Join(dir, "catalog.db")+" (read-only") {
		t.Fatalf("check:\n%s\n%s", r.stdout, r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "catalog.db")); string(after) != string(before) {
		t.Fatal("config check changed catalog.db")
	}
	r = run(t, nil, "config", "check", "--data-dir", dir, "-o", "json")
	var rep checkReport
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.OK) != 1 || len(rep.Problems) < 3 || rep.Problems[0].Key == "" {
		t.Fatalf("check -o json: %+v", r)
	}
	// A running node holds catalog.db: the check says to ask the node.
	c, err := store.OpenCatalog(filepath.Join(dir, "catalog.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r = run(t, nil, "config", "check", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "locked by a running node: check against that node with --node ADDR --ca CA --key KEY") {
		t.Fatalf("check with the catalog in use: %+v", r)
	}
}

// TestConfigCheckWithoutCatalog: a node not started yet has no catalog:
// files are checked, schemas are said not to be.
func TestConfigCheckWithoutCatalog(t *testing.T) {
	dir := t.TempDir()
	if err := writeSynthCSV(filepath.Join(dir, "elderly.csv"), sampleDataset(t, elderlyID), 20); err != nil {
		t.Fatal(err)
	}
	writeTOML(t, dir, minimalTOML+"\n[[data.files]]\ndataset = \""+elderlyID+"\"\npaths = [\"elderly.csv\"]\n")
	r := run(t, nil, "config", "check", "--file", filepath.Join(dir, configFileName))
	if r.code != 0 || !strings.Contains(r.stdout, "schemas were not checked") || !strings.Contains(r.stdout, "files readable (schema not checked)") {
		t.Fatalf("check: %+v", r)
	}
}

// pgType is the PostgreSQL type of a catalog column type.
var pgType = map[string]string{"VARCHAR": "text", "INTEGER": "integer", "BIGINT": "bigint", "DOUBLE": "double precision",
	"BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp", "DECIMAL": "numeric"}

// TestConfigCheckPostgres: with a real PostgreSQL server, a table that
// matches its dataset passes, a missing table and a missing column are
// named by their mapping's key and line, and an unreachable database by
// data.postgres.dsn.
func TestConfigCheckPostgres(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("PostgreSQL test server: %v", err)
	}
	t.Cleanup(pg.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var cols []string
	for _, c := range sampleDataset(t, registryID).GetSchema().GetColumns() {
		cols = append(cols, pgx.Identifier{c.GetName()}.Sanitize()+" "+pgType[strings.ToUpper(c.GetType())])
	}
	for _, stmt := range []string{"CREATE TABLE registry (" + strings.Join(cols, ", ") + ")",
		"CREATE TABLE elderly (person_id text)"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	writeStoppedCatalog(t, dir)
	text := minimalTOML + `
[data.postgres]
dsn = "` + strings.ReplaceAll(pg.DSN, `\`, `\\`) + `"

[[data.postgres.tables]]
dataset = "` + registryID + `"
table = "registry"

[[data.postgres.tables]]
dataset = "` + elderlyID + `"
table = "elderly"

[[data.postgres.tables]]
dataset = "` + tripsID + `"
table = "no_such_table"
`
	path := writeTOML(t, dir, text)
	r := run(t, nil, "config", "check", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "ok: data.postgres: the database is reachable") ||
		!strings.Contains(r.stdout, "ok: data.postgres.tables[0] "+registryID+": matches the catalog schema") ||
		!strings.Contains(r.stdout, fmt.Sprintf("PROBLEM: %s:16: data.postgres.tables[1]: %s: column ", path, elderlyID)) ||
		!strings.Contains(r.stdout, fmt.Sprintf("PROBLEM: %s:20: data.postgres.tables[2]: %s: table ", path, tripsID)) {
		t.Fatalf("check:\n%s\n%s", r.stdout, r.stderr)
	}
	// The DSN from the environment, to a database that is not there.
	r = run(t, map[string]string{"YRDNODE_DATA_POSTGRES_DSN": "host=" + t.TempDir() + " user=nobody dbname=none sslmode=disable"}, "config", "check", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "PROBLEM: $YRDNODE_DATA_POSTGRES_DSN: data.postgres.dsn: cannot reach the database") {
		t.Fatalf("check of an unreachable database: %+v", r)
	}
}
