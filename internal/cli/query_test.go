package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

const testRows = 2000

// startDataCluster runs the dev cities with dev's synthetic CSV files
// (testRows per dataset) configured through Options.Configure, turns
// noise off (testnet.NoiseOff), publishes the sample catalog and waits
// until every city serves its files.
func startDataCluster(t *testing.T) *testnet.Cluster {
	t.Helper()
	dir := t.TempDir()
	files, made, err := devData(dir, testRows)
	if err != nil {
		t.Fatal(err)
	}
	if made != len(sample.Datasets()) {
		t.Fatalf("devData generated %d files, want one per sample dataset (%d)", made, len(sample.Datasets()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testnet.Start(ctx, testnet.Options{Cities: devCities, DataDir: dir,
		Configure: func(i int, cfg *node.Config) { cfg.Data.Files = files[devCities[i]] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// These tests compare exact answers across output forms and paths.
	if err := c.UpdatePolicy(ctx, 0, testnet.NoiseOff); err != nil {
		t.Fatal(err)
	}
	for _, d := range sample.Datasets() {
		conn, err := c.PublisherConn(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatalf("publish %s: %v", d.GetId(), err)
		}
	}
	if err := waitServed(ctx, c.Cluster, files); err != nil {
		t.Fatal(err)
	}
	return c
}

const familyAgg = "SELECT district, count(*) AS n, avg(age) AS mean_age FROM family:yrd.elderly-population.v1 GROUP BY district"

var summaryRows = regexp.MustCompile(`(?m)^(\d+) rows?; derived level (\w+)$`)

// summaryCount is the row count of the summary a query printed.
func summaryCount(t *testing.T, r result) int {
	t.Helper()
	m := summaryRows.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no summary on stderr: %+v", r)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

type aggRow struct {
	n    int64
	mean float64
}

func TestQueryOutputFormatsAgree(t *testing.T) {
	c := startDataCluster(t)
	env := envAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)

	fromTable := tableAggRows(t, env)
	fromJSON := jsonAggRows(t, env)
	fromCSV := csvAggRows(t, env)
	for name, got := range map[string]map[string]aggRow{"json": fromJSON, "csv": fromCSV} {
		if len(got) != len(fromTable) {
			t.Fatalf("%s has %d rows, table %d", name, len(got), len(fromTable))
		}
		for k, v := range fromTable {
			if got[k] != v {
				t.Fatalf("%s: %s is %+v, table says %+v", name, k, got[k], v)
			}
		}
	}

	// A single dataset's rows are checked against its owner's receipt.
	r := run(t, env, "query", "--purpose", "elderly-care-planning", "--batch-rows", "2", "-o", "csv",
		"SELECT district, count(*) FROM hangzhou.civil-affairs.elderly-population GROUP BY district ORDER BY 1 LIMIT 5")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 6 || !strings.Contains(r.stderr, "5 rows") {
		t.Fatalf("one dataset: %+v", r)
	}
}

// tableAggRows runs familyAgg with table output, checks its summary and
// that its counts and means are those of the synthetic elderly, and
// returns its rows by district.
func tableAggRows(t *testing.T, env map[string]string) map[string]aggRow {
	t.Helper()
	r := run(t, env, "query", "--purpose", "elderly-care-planning", familyAgg)
	if r.code != 0 {
		t.Fatalf("table: %+v", r)
	}
	if !strings.Contains(r.stderr, "derived level GENERAL") || strings.Count(r.stderr, " ok ") != 3 || strings.Contains(r.stderr, "PARTIAL") {
		t.Fatalf("table summary: %s", r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"district", "n", "mean_age"}) {
		t.Fatalf("table header %q", lines[0])
	}
	fromTable := map[string]aggRow{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("table line %q", l)
		}
		n, err1 := strconv.ParseInt(f[1], 10, 64)
		mean, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("table line %q: %v %v", l, err1, err2)
		}
		fromTable[f[0]] = aggRow{n, mean}
	}
	if len(fromTable) != len(lines)-1 || len(fromTable) != summaryCount(t, r) || len(fromTable) < 10 {
		t.Fatalf("table: %d distinct districts in %d lines, summary says %d", len(fromTable), len(lines)-1, summaryCount(t, r))
	}
	var total int64
	for _, a := range fromTable {
		total += a.n
		if a.mean < 60 || a.mean > 110 {
			t.Fatalf("mean age %v of an elderly population", a.mean)
		}
	}
	if all := int64(3 * synth.ElderlyRowsFor(testRows)); total > all || total < all*8/10 {
		t.Fatalf("counts add up to %d of %d elderly residents", total, all)
	}
	return fromTable
}

// jsonAggRows runs familyAgg with JSON Lines output (numbers as numbers,
// NULL as null) and returns its rows by district.
func jsonAggRows(t *testing.T, env map[string]string) map[string]aggRow {
	t.Helper()
	r := run(t, env, "query", "--purpose", "elderly-care-planning", "-o", "json", familyAgg)
	if r.code != 0 {
		t.Fatalf("json: %+v", r)
	}
	fromJSON := map[string]aggRow{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || len(obj) != 3 {
			t.Fatalf("json line %q: %v", sc.Text(), err)
		}
		district := "NULL"
		switch d := obj["district"].(type) {
		case string:
			district = d
		case nil:
		default:
			t.Fatalf("district %v is a %T", d, d)
		}
		n, ok1 := obj["n"].(json.Number)
		mean, ok2 := obj["mean_age"].(json.Number)
		if !ok1 || !ok2 {
			t.Fatalf("json line %q: numbers are not JSON numbers", sc.Text())
		}
		ni, err1 := n.Int64()
		mf, err2 := mean.Float64()
		if err1 != nil || err2 != nil {
			t.Fatalf("json line %q: %v %v", sc.Text(), err1, err2)
		}
		fromJSON[district] = aggRow{ni, mf}
	}
	if summaryCount(t, r) != len(fromJSON) {
		t.Fatalf("json: %d rows, summary says %d", len(fromJSON), summaryCount(t, r))
	}
	return fromJSON
}

// csvAggRows runs familyAgg with CSV output (RFC 4180 with a header; NULL
// is the empty field) and returns its rows by district.
func csvAggRows(t *testing.T, env map[string]string) map[string]aggRow {
	t.Helper()
	r := run(t, env, "query", "--purpose", "elderly-care-planning", "-o", "csv", familyAgg)
	if r.code != 0 {
		t.Fatalf("csv: %+v", r)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, r.stdout)
	}
	if !slices.Equal(recs[0], []string{"district", "n", "mean_age"}) {
		t.Fatalf("csv header %q", recs[0])
	}
	fromCSV := map[string]aggRow{}
	for _, rec := range recs[1:] {
		n, err1 := strconv.ParseInt(rec[1], 10, 64)
		mean, err2 := strconv.ParseFloat(rec[2], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("csv record %q: %v %v", rec, err1, err2)
		}
		district := rec[0]
		if district == "" {
			district = "NULL"
		}
		fromCSV[district] = aggRow{n, mean}
	}
	if summaryCount(t, r) != len(recs)-1 {
		t.Fatalf("csv: %d rows, summary says %d", len(recs)-1, summaryCount(t, r))
	}
	return fromCSV
}

func TestQueryExplainErrorsAndPartial(t *testing.T) {
	c := startDataCluster(t)
	env := envAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)

	r := run(t, env, "query", "--purpose", "elderly-care-planning", familyAgg)
	if r.code != 0 {
		t.Fatalf("query: %+v", r)
	}
	dataLines := strings.Split(strings.TrimSpace(r.stdout), "\n")[1:]

	r = run(t, env, "query", "--purpose", "elderly-care-planning", "--explain", familyAgg)
	if r.code != 0 {
		t.Fatalf("explain: %+v", r)
	}
	for _, want := range []string{"hangzhou: hangzhou.civil-affairs.elderly-population", "nanjing:", "shanghai:",
		"decision: allow_aggregates (policy v", "rules ", "groups of at least 10", "plan:", "SELECT ", "district  raw"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("explain lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, "decision:") != 3 {
		t.Fatalf("explain shows %d decisions:\n%s", strings.Count(r.stdout, "decision:"), r.stdout)
	}
	for _, l := range dataLines {
		if strings.Contains(r.stdout, l) {
			t.Fatalf("explain printed a data row %q:\n%s", l, r.stdout)
		}
	}
	r = run(t, env, "query", "--purpose", "elderly-care-planning", "--explain", "-o", "json", familyAgg)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], `{"header"`) || !strings.HasPrefix(lines[1], `{"trailer"`) {
		t.Fatalf("explain -o json: %+v", r)
	}

	// A syntax error names its line and column and points at it.
	line2 := "  count(*) FROM family:yrd.elderly-population.v1 GROUP BY district HAVING count(*) > 3"
	col := strings.Index(line2, "HAVING") + 1
	r = run(t, env, "query", "--purpose", "elderly-care-planning", "SELECT district,\n"+line2)
	if r.code != 1 || !strings.Contains(r.stderr, "invalid argument") || !strings.Contains(r.stderr, "line 2, column "+strconv.Itoa(col)+":") ||
		!strings.Contains(r.stderr, "\n  "+line2+"\n  "+strings.Repeat(" ", col-1)+"^") || r.stdout != "" {
		t.Fatalf("syntax error: %+v", r)
	}
	// CORE data has local data too: the policy, not a missing file, refuses it.
	r = run(t, env, "query", "--purpose", "population-statistics", "SELECT count(*) FROM shanghai.public-security.household-registry")
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "core") {
		t.Fatalf("core query: %+v", r)
	}
	if !c.Node(0).Serving("shanghai.public-security.household-registry") {
		t.Fatal("the CORE dataset's file is not served")
	}
	for _, args := range [][]string{
		{"query", familyAgg},
		{"query", "--purpose", "elderly-care-planning"},
		{"query", "--purpose", "elderly-care-planning", "-o", "xml", familyAgg},
		{"query", "--purpose", "elderly-care-planning", "--explain", "-o", "csv", familyAgg},
	} {
		if r := run(t, env, args...); r.code != 2 {
			t.Fatalf("%q: %+v", args, r)
		}
	}

	// A city that is down makes the result partial: a warning, exit 0.
	if err := c.Stop(2); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "query", "--purpose", "elderly-care-planning", "--timeout", "20s", familyAgg)
	if r.code != 0 || !strings.Contains(r.stderr, "PARTIAL RESULT: nanjing: ") || strings.Contains(r.stderr, "PARTIAL RESULT: hangzhou") {
		t.Fatalf("partial: %+v", r)
	}
}

func TestQueryReceiptsVerify(t *testing.T) {
	c := startDataCluster(t)
	env := envAs(t, c, 1, "hangzhou-analytics", yrdv1.Role_ROLE_ANALYST)
	file := filepath.Join(t.TempDir(), "receipts.json")
	r := run(t, env, "query", "--purpose", "elderly-care-planning", "--receipts", file, "-o", "json", familyAgg)
	if r.code != 0 || !strings.Contains(r.stderr, "receipt verify "+file) {
		t.Fatalf("query --receipts: %+v", r)
	}
	r = run(t, nil, "receipt", "verify", file)
	if r.code != 0 || strings.Count(r.stdout, "OK: signed by 12D3KooW") != 3 {
		t.Fatalf("verify: %+v", r)
	}
	for _, city := range devCities {
		if !strings.Contains(r.stdout, city+".civil-affairs.elderly-population") {
			t.Fatalf("verify does not list %s: %s", city, r.stdout)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// One byte of a signed field changed: that city's receipt fails.
	i := bytes.Index(data, []byte(`elderly-care-planning"`))
	if i < 0 {
		t.Fatalf("no purpose in %s", data)
	}
	bad := bytes.Clone(data)
	bad[i] = 'E'
	os.WriteFile(file, bad, 0o600)
	r = run(t, nil, "receipt", "verify", file)
	if r.code != 1 || strings.Count(r.stdout, "OK: ") != 2 || !strings.Contains(r.stdout, "FAILED: receipt: signature does not verify") ||
		!strings.Contains(r.stderr, "1 of 3 receipts") {
		t.Fatalf("verify after a change: %+v", r)
	}
	// An unsigned field the file carries beside the receipt, made to
	// disagree with it, fails too.
	bad = bytes.Replace(data, []byte(`"nanjing.civil-affairs.elderly-population"`), []byte(`"nanjing.civil-affairs.elderly-populatioN"`), 1)
	os.WriteFile(file, bad, 0o600)
	if r = run(t, nil, "receipt", "verify", file); r.code != 1 || !strings.Contains(r.stdout, "FAILED") {
		t.Fatalf("verify after a changed dataset id: %+v", r)
	}
	os.WriteFile(file, []byte(`{"cities": [{"city": "x", "colour": 1}]}`), 0o600)
	if r = run(t, nil, "receipt", "verify", file); r.code != 1 || !strings.Contains(r.stderr, "colour") {
		t.Fatalf("verify of a bad file: %+v", r)
	}
	if r = run(t, nil, "receipt", "verify"); r.code != 2 {
		t.Fatalf("verify without a file: %+v", r)
	}
}

func TestNodeFileData(t *testing.T) {
	dir := t.TempDir()
	base := `"city": "shanghai", "api_addr": "127.0.0.1:0", "fabric_addrs": ["/ip4/127.0.0.1/tcp/0"]`
	checkNodeFileUnknownFields(t, dir, base)
	checkNodeFileDataPaths(t, dir, base)
	checkNodeFileDataErrors(t, dir, base)

	// init writes a yrdnode.toml with no data mappings, which reads back.
	dir2 := t.TempDir()
	if r := run(t, nil, "init", "--data-dir", dir2, "--city", "hangzhou", "--api", "127.0.0.1:0", "--fabric", "/ip4/127.0.0.1/tcp/0"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	data, _ := os.ReadFile(filepath.Join(dir2, configFileName))
	if bytes.Contains(data, []byte("[data")) || !bytes.Contains(data, []byte(`city = 'hangzhou'`)) {
		t.Fatalf("init wrote %s", data)
	}
	if _, err := readDataDirConfig(dir2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, nodeFileName)); err == nil {
		t.Fatal("init wrote a node.json")
	}
	if r := run(t, nil, "init", "--data-dir", dir2, "--city", "hangzhou"); r.code != 1 || !strings.Contains(r.stderr, "already initialised") {
		t.Fatalf("second init: %+v", r)
	}
}

// writeNodeFile writes s as the node file in dir.
func writeNodeFile(t *testing.T, dir, s string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, nodeFileName), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkNodeFileUnknownFields: unknown fields, at the top or inside
// "data", are refused by name, by readNodeFile and by serve.
func checkNodeFileUnknownFields(t *testing.T, dir, base string) {
	t.Helper()
	for field, text := range map[string]string{
		"colour": `{` + base + `, "colour": "red"}`,
		"path":   `{` + base + `, "data": {"files": [{"dataset": "a.b", "format": "csv", "path": ["x.csv"]}]}}`,
		"tabels": `{` + base + `, "data": {"postgres": {"dsn": "postgres://x", "tabels": []}}}`,
	} {
		writeNodeFile(t, dir, text)
		_, err := readNodeFile(dir)
		if err == nil || !strings.Contains(err.Error(), `unknown field "`+field+`"`) || !strings.Contains(err.Error(), nodeFileName) {
			t.Fatalf("%s: %v", field, err)
		}
		r := run(t, nil, "serve", "--data-dir", dir)
		if r.code != 1 || !strings.Contains(r.stderr, `unknown field "`+field+`"`) {
			t.Fatalf("serve with %s: %+v", field, r)
		}
	}
}

// checkNodeFileDataPaths: relative paths are taken from the data dir, as
// dev lays its files out.
func checkNodeFileDataPaths(t *testing.T, dir, base string) {
	t.Helper()
	writeNodeFile(t, dir, `{`+base+`, "data": {
	  "files": [
	    {"dataset": "shanghai.civil-affairs.elderly-population", "format": "CSV", "paths": ["shanghai-data/elderly.csv", "more/*.csv"]},
	    {"dataset": "shanghai.connected-vehicles.lingang-trips", "paths": ["/abs/trips.parquet"]},
	    {"dataset": "shanghai.x.y", "paths": ["s3://bucket/y.jsonl"]}
	  ],
	  "postgres": {"dsn": "postgres://reader@db/civil", "tables": [{"dataset": "shanghai.public-security.household-registry", "table": "registry"}]}
	}}`)
	nf, err := readNodeFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeConfig(nf, dir, slogDiscard(), "test")
	if err != nil {
		t.Fatalf("nodeConfig: %v", err)
	}
	abs, _ := filepath.Abs(dir)
	want := node.DataConfig{
		Files: []connector.Source{
			{DatasetID: "shanghai.civil-affairs.elderly-population", Format: "csv", Paths: []string{filepath.Join(abs, "shanghai-data/elderly.csv"), filepath.Join(abs, "more/*.csv")}},
			{DatasetID: "shanghai.connected-vehicles.lingang-trips", Format: "parquet", Paths: []string{"/abs/trips.parquet"}},
			{DatasetID: "shanghai.x.y", Format: "json", Paths: []string{"s3://bucket/y.jsonl"}},
		},
		Postgres: &node.PostgresData{DSN: "postgres://reader@db/civil", Tables: []connector.PGTable{{DatasetID: "shanghai.public-security.household-registry", Table: "registry"}}},
	}
	gotJSON, _ := json.Marshal(cfg.Data)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("data config\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

// checkNodeFileDataErrors: missing or wrong values name their field.
func checkNodeFileDataErrors(t *testing.T, dir, base string) {
	t.Helper()
	for field, data := range map[string]string{
		"data.files[0].paths":           `{"files": [{"dataset": "a.b", "format": "csv"}]}`,
		"data.files[0].format":          `{"files": [{"dataset": "a.b", "format": "xlsx", "paths": ["a.xlsx"]}]}`,
		"data.files[1].dataset":         `{"files": [{"dataset": "a.b", "paths": ["a.csv"]}, {"paths": ["b.csv"]}]}`,
		"data.postgres.dsn":             `{"postgres": {"tables": []}}`,
		"data.postgres.tables[0].table": `{"postgres": {"dsn": "x", "tables": [{"dataset": "a.b"}]}}`,
		"configured twice":              `{"files": [{"dataset": "a.b", "paths": ["a.csv"]}], "postgres": {"dsn": "x", "tables": [{"dataset": "a.b", "table": "t"}]}}`,
	} {
		writeNodeFile(t, dir, `{`+base+`, "data": `+data+`}`)
		nf, err := readNodeFile(dir)
		if err == nil {
			_, err = nodeConfig(nf, dir, slogDiscard(), "test")
		}
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Fatalf("%s: %v", field, err)
		}
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDevDataFiles(t *testing.T) {
	dir := t.TempDir()
	files, made, err := devData(dir, 400)
	if err != nil || made != len(sample.Datasets()) {
		t.Fatalf("devData: %d files, %v", made, err)
	}
	for _, d := range sample.Datasets() {
		srcs := files[d.GetOwnerCity()]
		i := slices.IndexFunc(srcs, func(s connector.Source) bool { return s.DatasetID == d.GetId() })
		if i < 0 {
			t.Fatalf("%s has no source", d.GetId())
		}
		want := filepath.Join(dir, d.GetOwnerCity()+"-data", d.GetId()+".csv")
		if srcs[i].Format != "csv" || !slices.Equal(srcs[i].Paths, []string{want}) {
			t.Fatalf("%s: %+v", d.GetId(), srcs[i])
		}
		data, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		rows := 400
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			rows = synth.ElderlyRowsFor(400)
		}
		if lines := bytes.Count(data, []byte("\r\n")); lines != rows+1 {
			t.Fatalf("%s has %d lines, want %d", want, lines, rows+1)
		}
	}
	// A second run keeps the files.
	os.WriteFile(files["nanjing"][0].Paths[0], []byte("kept\r\n"), 0o600)
	if _, made, err := devData(dir, 400); err != nil || made != 0 {
		t.Fatalf("second devData: %d generated, %v", made, err)
	}
	if data, _ := os.ReadFile(files["nanjing"][0].Paths[0]); string(data) != "kept\r\n" {
		t.Fatalf("an existing file was rewritten: %q", data)
	}
}

// TestQueryColumnarAndRowsPrintAlike: the CLI asks for packed columns by
// default and for rows with --rows; every output format prints the same
// for both, for a row query (strings, timestamps, integers, doubles), a
// grouped one with NULLs and booleans, and a family merged at the home
// node. The single-dataset results are also checked against their
// receipts either way (the CLI fails on a mismatch).
func TestQueryColumnarAndRowsPrintAlike(t *testing.T) {
	c := startDataCluster(t)
	env := envAs(t, c, 0, "shanghai-analytics", yrdv1.Role_ROLE_ANALYST)
	queries := []struct{ purpose, sql string }{
		{"traffic-management", "SELECT * FROM nanjing.transport.road-traffic-flow LIMIT 300"},
		{"elderly-care-planning", "SELECT district, living_alone, count(*) AS n, avg(age) FROM hangzhou.civil-affairs.elderly-population GROUP BY district, living_alone"},
		{"elderly-care-planning", familyAgg},
	}
	sorted := func(s string) []string {
		lines := strings.Split(s, "\n")
		slices.Sort(lines)
		return lines
	}
	for _, q := range queries {
		for _, o := range []string{"table", "json", "csv"} {
			// LIMIT without ORDER BY may pick other rows each time: the
			// row query is ordered in full (its key is segment and time).
			sql := q.sql
			if strings.HasSuffix(sql, "LIMIT 300") {
				sql = strings.Replace(sql, "LIMIT", "ORDER BY segment_id, interval_start LIMIT", 1)
			}
			cols := run(t, env, "query", "--purpose", q.purpose, "-o", o, "--batch-rows", "50", sql)
			rows := run(t, env, "query", "--purpose", q.purpose, "-o", o, "--batch-rows", "50", "--rows", sql)
			if cols.code != 0 || rows.code != 0 {
				t.Fatalf("%s -o %s: columns %+v; rows %+v", sql, o, cols, rows)
			}
			if strings.Count(cols.stdout, "\n") < 3 {
				t.Fatalf("%s -o %s: too little output to compare: %q", sql, o, cols.stdout)
			}
			if !slices.Equal(sorted(cols.stdout), sorted(rows.stdout)) {
				t.Fatalf("%s -o %s: columnar and row outputs differ:\n%s\n---\n%s", sql, o, cols.stdout, rows.stdout)
			}
			if summaryCount(t, cols) != summaryCount(t, rows) {
				t.Fatalf("%s -o %s: summaries differ: %s / %s", sql, o, cols.stderr, rows.stderr)
			}
		}
	}
}
