package synth

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func csvBytes(t testing.TB, d *yrdv1.Dataset, rows int, seed uint64, opts ...Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, d, rows, seed, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// table is a generated CSV read back: the header and the records as
// columns by name.
type table struct {
	header []string
	rows   [][]string
}

func readCSV(t testing.TB, data []byte) table {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return table{header: recs[0], rows: recs[1:]}
}

func (tb table) col(name string) []string {
	i := slices.Index(tb.header, name)
	out := make([]string, len(tb.rows))
	for r, rec := range tb.rows {
		out[r] = rec[i]
	}
	return out
}

func genTable(t testing.TB, d *yrdv1.Dataset, rows int, seed uint64, opts ...Option) table {
	t.Helper()
	return readCSV(t, csvBytes(t, d, rows, seed, opts...))
}

func TestDeterministic(t *testing.T) {
	for _, d := range sample.Datasets() {
		a := csvBytes(t, d, 2000, 42)
		if b := csvBytes(t, d, 2000, 42); !bytes.Equal(a, b) {
			t.Errorf("%s: two runs differ", d.GetId())
		}
		if c := csvBytes(t, d, 2000, 43); bytes.Equal(a, c) {
			t.Errorf("%s: seeds 42 and 43 give the same rows", d.GetId())
		}
		var j1, j2 bytes.Buffer
		if err := WriteJSONLines(&j1, d, 500, 42); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSONLines(&j2, d, 500, 42); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(j1.Bytes(), j2.Bytes()) {
			t.Errorf("%s: two JSON runs differ", d.GetId())
		}
	}
}

func TestCitiesDiffer(t *testing.T) {
	seen := map[string]string{}
	for _, city := range []string{"shanghai", "hangzhou", "nanjing", "wuxi", "suzhou-js", "suzhou-ah"} {
		d := elderlyOf(t, city)
		out := genTable(t, d, 500, 7)
		body := strings.Join(out.col("age"), ",") + strings.Join(out.col("district"), ",")
		if other, dup := seen[body]; dup {
			t.Errorf("%s and %s generate the same elderly rows", city, other)
		}
		seen[body] = city
	}
}

func elderlyOf(t testing.TB, city string) *yrdv1.Dataset {
	t.Helper()
	for _, d := range ForCity(city) {
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			return d
		}
	}
	t.Fatalf("no elderly dataset for %s", city)
	return nil
}

var (
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	dateRE      = regexp.MustCompile(`^\d{4}-\d\d-\d\d$`)
)

// checkTyped checks that every cell parses as its column's type and that
// only nullable cells are empty.
func checkTyped(t *testing.T, d *yrdv1.Dataset, tb table, keys map[string]bool) {
	t.Helper()
	for r, rec := range tb.rows {
		for i, c := range d.GetSchema().GetColumns() {
			f := rec[i]
			if f == "" {
				if keys[c.GetName()] {
					t.Fatalf("%s row %d: key column %s is NULL", d.GetId(), r, c.GetName())
				}
				continue
			}
			var err error
			switch normType(c) {
			case "INTEGER", "BIGINT":
				_, err = strconv.ParseInt(f, 10, 64)
			case "DOUBLE", "DECIMAL":
				_, err = strconv.ParseFloat(f, 64)
			case "BOOLEAN":
				if f != "true" && f != "false" {
					err = strconv.ErrSyntax
				}
			case "DATE":
				if _, err = time.Parse(time.DateOnly, f); err == nil && !dateRE.MatchString(f) {
					err = strconv.ErrSyntax
				}
			case "TIMESTAMP":
				if _, err = time.Parse(time.RFC3339, f); err == nil && !timestampRE.MatchString(f) {
					err = strconv.ErrSyntax
				}
			}
			if err != nil {
				t.Fatalf("%s row %d: %s %s = %q: %v", d.GetId(), r, c.GetName(), c.GetType(), f, err)
			}
		}
	}
}

func TestHeaderTypesAndCount(t *testing.T) {
	keys := map[string]bool{"person_id": true, "patient_id": true, "visit_id": true, "citizen_id": true,
		"credit_code": true, "segment_id": true, "interval_start": true, "trip_id": true, "vehicle_id": true}
	for _, d := range sample.Datasets() {
		for _, rows := range []int{0, 1, 7, 3001} {
			tb := genTable(t, d, rows, 1, WithNullRate(0.2))
			var names []string
			for _, c := range d.GetSchema().GetColumns() {
				names = append(names, c.GetName())
			}
			if !slices.Equal(tb.header, names) {
				t.Fatalf("%s: header %v, want %v", d.GetId(), tb.header, names)
			}
			if len(tb.rows) != rows {
				t.Errorf("%s: %d rows, want %d", d.GetId(), len(tb.rows), rows)
			}
			checkTyped(t, d, tb, keys)
		}
	}
}

func TestCSVFormat(t *testing.T) {
	d := sampleDataset(t, "shanghai.civil-affairs.elderly-population")
	out := csvBytes(t, d, 100, 1)
	if !bytes.HasPrefix(out, []byte("person_id,district,age,gender,living_alone,care_level\r\n")) {
		t.Errorf("header line %q", out[:min(len(out), 80)])
	}
	if n := bytes.Count(out, []byte("\r\n")); n != 101 || bytes.Count(out, []byte("\n")) != n {
		t.Errorf("%d CRLF line ends, want 101 and no bare LF", n)
	}
	if out := csvBytes(t, d, 0, 1); bytes.Count(out, []byte("\r\n")) != 1 {
		t.Errorf("zero rows: %q, want the header only", out)
	}
}

// TestJSONLines decodes every line and checks the keys' order and the
// JSON types of the values.
func TestJSONLines(t *testing.T) {
	for _, d := range sample.Datasets() {
		var buf bytes.Buffer
		if err := WriteJSONLines(&buf, d, 500, 3, WithNullRate(0.1)); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(&buf)
		lines := 0
		for sc.Scan() {
			lines++
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.UseNumber()
			if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
				t.Fatalf("%s: line %d does not start an object: %v %v", d.GetId(), lines, tok, err)
			}
			for _, c := range d.GetSchema().GetColumns() {
				key, err := dec.Token()
				if err != nil || key != c.GetName() {
					t.Fatalf("%s: key %v, want %s (%v)", d.GetId(), key, c.GetName(), err)
				}
				val, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				ok := val == nil
				switch val.(type) {
				case json.Number:
					ok = slices.Contains([]string{"INTEGER", "BIGINT", "DOUBLE", "DECIMAL"}, normType(c))
				case bool:
					ok = normType(c) == "BOOLEAN"
				case string:
					ok = slices.Contains([]string{"VARCHAR", "DATE", "TIMESTAMP"}, normType(c))
				}
				if !ok {
					t.Fatalf("%s: %s (%s) = %#v", d.GetId(), c.GetName(), c.GetType(), val)
				}
			}
			if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
				t.Fatalf("%s: extra keys: %v %v", d.GetId(), tok, err)
			}
		}
		if lines != 500 {
			t.Errorf("%s: %d lines, want 500", d.GetId(), lines)
		}
	}
}

func TestNullRate(t *testing.T) {
	d := sampleDataset(t, "nanjing.health.hospital-visits")
	const rows = 40000
	clean := genTable(t, d, rows, 9, WithNullRate(0))
	for _, rate := range []float64{0, DefaultNullRate, 0.1, 1} {
		var opts []Option
		if rate != DefaultNullRate {
			opts = append(opts, WithNullRate(rate))
		}
		tb := genTable(t, d, rows, 9, opts...)
		for i, name := range tb.header {
			nulls := 0
			for r, rec := range tb.rows {
				if rec[i] == "" {
					nulls++
				} else if rec[i] != clean.rows[r][i] {
					t.Fatalf("rate %v: %s row %d = %q, %q without NULLs; nulls must not change values", rate, name, r, rec[i], clean.rows[r][i])
				}
			}
			share := float64(nulls) / rows
			want := rate
			if name == "visit_id" || name == "patient_id" { // keys
				want = 0
			}
			// 4 standard deviations of a binomial share.
			if tol := 4*math.Sqrt(want*(1-want)/rows) + 1e-9; math.Abs(share-want) > tol {
				t.Errorf("rate %v: %s is %.4f NULL, want %v ± %.4f", rate, name, share, want, tol)
			}
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	d := sampleDataset(t, "nanjing.health.hospital-visits")
	bad := sampleDataset(t, "nanjing.health.hospital-visits")
	bad.Schema.Columns[2].Type = "UUID"
	for name, f := range map[string]func() error{
		"nil dataset":    func() error { _, err := Generate(nil, 1, 1); return err },
		"negative rows":  func() error { _, err := Generate(d, -1, 1); return err },
		"no schema":      func() error { _, err := Generate(&yrdv1.Dataset{Id: "x"}, 1, 1); return err },
		"unknown type":   func() error { _, err := Generate(bad, 1, 1); return err },
		"null rate":      func() error { _, err := Generate(d, 1, 1, WithNullRate(1.5)); return err },
		"NaN null rate":  func() error { _, err := Generate(d, 1, 1, WithNullRate(math.NaN())); return err },
		"residents":      func() error { _, err := Generate(d, 1, 1, WithResidents(-1)); return err },
		"CSV unknown":    func() error { return WriteCSV(io.Discard, bad, 1, 1) },
		"JSON negatives": func() error { return WriteJSONLines(io.Discard, d, -5, 1) },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// errWriter fails after n bytes, to check that write errors surface.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	d := sampleDataset(t, "shanghai.civil-affairs.elderly-population")
	if err := WriteCSV(&errWriter{100 << 10}, d, 100000, 1); err != io.ErrShortWrite {
		t.Errorf("WriteCSV: %v, want ErrShortWrite", err)
	}
	if err := WriteJSONLines(&errWriter{10}, d, 10, 1); err != io.ErrShortWrite {
		t.Errorf("WriteJSONLines: %v, want ErrShortWrite", err)
	}
}
