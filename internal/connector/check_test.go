package connector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestCorrectCSVIsServed(t *testing.T) {
	db, d := openElderly(t)
	if !db.Serving(d.GetId()) {
		t.Fatal("a correct file is not served")
	}
	_, rows := collect(t, db, `SELECT count(*) FROM `+quoteIdent(d.GetId()), nil)
	if got := rows[0][0]; got != int64(testRows) {
		t.Fatalf("view has %v rows, want %d", got, testRows)
	}
	// The view has the catalog's types, in catalog order.
	_, desc := collect(t, db, `DESCRIBE `+quoteIdent(d.GetId()), nil)
	for i, c := range d.GetSchema().GetColumns() {
		if desc[i][0] != c.GetName() || desc[i][1] != c.GetType() {
			t.Errorf("view column %d is %v %v, want %s %s", i, desc[i][0], desc[i][1], c.GetName(), c.GetType())
		}
	}
	if db.Serving("no.such.dataset") {
		t.Error("an unconfigured dataset is served")
	}
}

// badFile opens a DuckDB over a file whose content is given, expecting
// the dataset not to be served.
func badFile(t *testing.T, content string) (*DuckDB, []Mismatch) {
	t.Helper()
	d := elderly(t)
	p := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{p}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms := db.Check(context.Background())
	if db.Serving(d.GetId()) {
		t.Fatalf("a mismatching file is served; mismatches %v", ms)
	}
	return db, ms
}

func wantMismatch(t *testing.T, ms []Mismatch, column, problem string) {
	t.Helper()
	for _, m := range ms {
		if m.Column == column && strings.Contains(m.Problem, problem) {
			return
		}
	}
	t.Errorf("no mismatch %q on column %q in %v", problem, column, ms)
}

func TestRenamedColumn(t *testing.T) {
	d := elderly(t)
	p := writeCSV(t, t.TempDir(), d, 100)
	b, _ := os.ReadFile(p)
	content := strings.Replace(string(b), "gender", "sex", 1)
	_, ms := badFile(t, content)
	wantMismatch(t, ms, "gender", "missing")
	wantMismatch(t, ms, "sex", "extra column")
	if len(ms) != 2 {
		t.Errorf("got %d mismatches, want 2: %v", len(ms), ms)
	}
}

func TestMissingColumn(t *testing.T) {
	d := clone(elderly(t))
	// Files written for a schema without living_alone.
	var cols []*yrdv1.Column
	for _, c := range d.GetSchema().GetColumns() {
		if c.GetName() != "living_alone" {
			cols = append(cols, c)
		}
	}
	d.Schema.Columns = cols
	p := writeCSV(t, t.TempDir(), d, 100)
	b, _ := os.ReadFile(p)
	_, ms := badFile(t, string(b))
	wantMismatch(t, ms, "living_alone", "missing")
	if len(ms) != 1 {
		t.Errorf("got %d mismatches, want 1: %v", len(ms), ms)
	}
}

func TestWrongTypeAndEveryMismatchReported(t *testing.T) {
	// age is text, gender renamed, care_level missing, extra column.
	content := "person_id,district,age,sex,living_alone,hobby\r\n" +
		"310000000001,浦东新区,seventy,F,true,chess\r\n" +
		"310000000002,黄浦区,eighty,M,false,go\r\n"
	db, ms := badFile(t, content)
	wantMismatch(t, ms, "age", "type differs: local VARCHAR vs catalog INTEGER")
	wantMismatch(t, ms, "gender", "missing")
	wantMismatch(t, ms, "care_level", "missing")
	wantMismatch(t, ms, "sex", "extra")
	wantMismatch(t, ms, "hobby", "extra")
	if len(ms) != 5 {
		t.Errorf("got %d mismatches, want 5: %v", len(ms), ms)
	}

	// Queries on it fail, naming the mismatch, by either entry point.
	d := elderly(t)
	q := &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: d.GetId()}, Select: []*yrdv1.SelectItem{col("district")}}
	dec := decision(d, yrdv1.Effect_EFFECT_ALLOW_ROWS, nil)
	_, err := db.Run(context.Background(), d.GetId(), q, dec, nil)
	if err == nil || !strings.Contains(err.Error(), "not served") || !strings.Contains(err.Error(), "local VARCHAR vs catalog INTEGER") {
		t.Errorf("Run on an unserved dataset: %v", err)
	}
	sql, args, err := Compile(d, q, dec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Query(context.Background(), sql, args); err == nil || !strings.Contains(err.Error(), "column age") {
		t.Errorf("Query on an unserved dataset: %v", err)
	}
	// And the view is gone, so hand-written SQL cannot read it either.
	if _, err := db.DB().Exec(`SELECT * FROM ` + quoteIdent(d.GetId())); err == nil {
		t.Error("the view of an unserved dataset exists")
	}
}

func TestMissingFileAndUnknownDataset(t *testing.T) {
	d := elderly(t)
	db, err := OpenDuckDB(context.Background(), []Source{
		{DatasetID: d.GetId(), Format: "csv", Paths: []string{filepath.Join(t.TempDir(), "nope.csv")}},
		{DatasetID: "not.in.catalog", Format: "csv", Paths: []string{"x.csv"}},
	}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms := db.Check(context.Background())
	if len(ms) != 2 || db.Serving(d.GetId()) || db.Serving("not.in.catalog") {
		t.Fatalf("mismatches %v", ms)
	}
}

func TestBadConfig(t *testing.T) {
	cat := catalogOf(elderly(t))
	for _, s := range []Source{
		{DatasetID: "a", Format: "xlsx", Paths: []string{"a.xlsx"}},
		{DatasetID: "a", Format: "csv"},
		{DatasetID: "a", Format: "csv", Paths: []string{"a\x00.csv"}},
		{Format: "csv", Paths: []string{"a.csv"}},
	} {
		if db, err := OpenDuckDB(context.Background(), []Source{s}, cat); err == nil {
			db.Close()
			t.Errorf("source %+v accepted", s)
		}
	}
}

func TestPathWithQuote(t *testing.T) {
	d := elderly(t)
	dir := filepath.Join(t.TempDir(), "it's a dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := writeCSV(t, dir, d, 50)
	db, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{p}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !db.Serving(d.GetId()) {
		t.Fatalf("path with a quote not served: %v", db.Check(context.Background()))
	}
}

func TestParquetAndJSONSources(t *testing.T) {
	db, d := openElderly(t)
	dir := t.TempDir()
	pq := filepath.Join(dir, "elderly.parquet")
	lit, _ := quoteString(pq)
	if _, err := db.DB().Exec(`COPY (SELECT * FROM ` + quoteIdent(d.GetId()) + `) TO ` + lit + ` (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(dir, "elderly.jsonl")
	f, err := os.Create(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(f, d); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, src := range []Source{{d.GetId(), "parquet", []string{pq}}, {d.GetId(), "json", []string{js}}} {
		db2, err := OpenDuckDB(context.Background(), []Source{src}, catalogOf(d))
		if err != nil {
			t.Fatal(err)
		}
		if !db2.Serving(d.GetId()) {
			t.Errorf("%s not served: %v", src.Format, db2.Check(context.Background()))
			db2.Close()
			continue
		}
		q := `SELECT district, count(*), sum(age) FROM ` + quoteIdent(d.GetId()) + ` GROUP BY ALL ORDER BY ALL`
		_, want := collect(t, db, q, nil)
		_, got := collect(t, db2, q, nil)
		if len(got) != len(want) {
			t.Errorf("%s: %d groups, csv %d", src.Format, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			for j := range want[i] {
				if fmt.Sprint(got[i][j]) != fmt.Sprint(want[i][j]) {
					t.Errorf("%s: row %d: %v, csv %v", src.Format, i, got[i], want[i])
					break
				}
			}
		}
		db2.Close()
	}
}

func TestSwappedColumns(t *testing.T) {
	content := "person_id,age,district,gender,living_alone,care_level\r\n" +
		"310000000001,70,浦东新区,F,true,2\r\n"
	_, ms := badFile(t, content)
	wantMismatch(t, ms, "district", "position differs")
	wantMismatch(t, ms, "age", "position differs")
}

// Parquet carries real types, so a numeric id column is a mismatch there
// even though a CSV sniffer's guess of BIGINT would not be.
func TestParquetWrongType(t *testing.T) {
	db, d := openElderly(t)
	p := filepath.Join(t.TempDir(), "bad.parquet")
	lit, _ := quoteString(p)
	if _, err := db.DB().Exec(`COPY (SELECT CAST(substr(person_id, 2) AS BIGINT) AS person_id, district, age, gender, living_alone, care_level FROM ` +
		quoteIdent(d.GetId()) + `) TO ` + lit + ` (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	db2, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "parquet", Paths: []string{p}}}, catalogOf(d))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	ms := db2.Check(context.Background())
	wantMismatch(t, ms, "person_id", "type differs: local BIGINT vs catalog VARCHAR")
	if db2.Serving(d.GetId()) || len(ms) != 1 {
		t.Errorf("mismatches %v", ms)
	}
}
