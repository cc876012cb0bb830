package connector

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Parity of the two engines: the same rows, decisions and keys give the
// same results, pseudonyms included, on DuckDB and PostgreSQL.

// sortedRows renders rows as sorted strings, to compare result sets.
func sortedRows(rs [][]any) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		parts := make([]string, len(r))
		for j, v := range r {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339Nano)
			}
			parts[j] = fmt.Sprintf("%T:%v", v, v)
		}
		out[i] = strings.Join(parts, "|")
	}
	slices.Sort(out)
	return out
}

// TestPGSameResultsAsDuckDB runs the same queries under the same
// decisions and keys through both connectors, over the same generated
// rows, and wants identical results: pseudonyms, masks, filters, groups.
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestPGSameResultsAsDuckDB(t *testing.T) {
	duck, d := openElderly(t)
	p, _ := openPGElderly(t)
	key := []byte("grant-1 key for shanghai elderly")
	gen := generated(t, d, testRows)
	district := gen[0]["district"].(string)
	all := func() *yrdv1.Query { return onDataset(d) }
	rowsAll := decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo, "gender": masked, "age": masked, "care_level": withheld})
	rowsAll.RowCap = testRows
	pseudoAll := decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo, "district": pseudo, "age": pseudo, "living_alone": pseudo, "care_level": pseudo, "gender": masked})
	pseudoAll.RowCap = testRows
	filtered := onDataset(d)
	filtered.Select = []*yrdv1.SelectItem{col("person_id"), col("age"), col("care_level")}
	filtered.Where = &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: []*yrdv1.Expr{
		eqString("district", district),
		{Node: &yrdv1.Expr_Between{Between: &yrdv1.Between{Column: "age", Low: literal(70), High: literal(79.5)}}},
		{Node: &yrdv1.Expr_Not{Not: &yrdv1.Expr{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "gender", Values: []*yrdv1.Literal{literal("F")}}}}}},
		{Node: &yrdv1.Expr_Or{Or: &yrdv1.Logical{Operands: []*yrdv1.Expr{
			{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "living_alone", Op: yrdv1.CompareOp_COMPARE_OP_EQ, Value: literal(true)}}},
			{Node: &yrdv1.Expr_IsNull{IsNull: &yrdv1.IsNull{Column: "care_level"}}},
			{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "age", Op: yrdv1.CompareOp_COMPARE_OP_GT, Value: literal(75.5)}}},
		}}}},
	}}}}
	grouped := onDataset(d)
	grouped.Select = []*yrdv1.SelectItem{col("district"), col("gender"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT_DISTINCT, "person_id", "people"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MIN, "age", "youngest"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_MAX, "age", "oldest"),
		agg(yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT, "care_level", "with_care")}
	grouped.GroupBy = []string{"district", "gender"}
	groupDec := decision(d, aggs, map[string]yrdv1.ColumnTreatment{"gender": masked})
	groupDec.MinGroupSize = 50

	for _, tc := range []struct {
		name string
		q    *yrdv1.Query
		dec  *yrdv1.Decision
	}{
		{"select * pseudonymised and masked", all(), rowsAll},
		{"every type pseudonymised", all(), pseudoAll},
		{"filters", filtered, decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo})},
		{"k-suppressed groups", grouped, groupDec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sql, args, err := Compile(d, tc.q, tc.dec, key)
			if err != nil {
				t.Fatal(err)
			}
			_, want := collect(t, duck, sql, args)
			r, err := p.Run(context.Background(), d.GetId(), tc.q, tc.dec, key)
			if err != nil {
				t.Fatal(err)
			}
			_, got := drain(t, r)
			if len(want) == 0 {
				t.Fatal("empty result proves nothing")
			}
			w, g := sortedRows(want), sortedRows(got)
			if !slices.Equal(w, g) {
				for i := range min(len(w), len(g)) {
					if w[i] != g[i] {
						t.Fatalf("%d vs %d rows; first difference:\nduckdb   %s\npostgres %s", len(w), len(g), w[i], g[i])
					}
				}
				t.Fatalf("%d rows from DuckDB, %d from PostgreSQL", len(w), len(g))
			}
		})
	}

	// The pseudonyms are the keyed hash of the raw ids, never the ids.
	r, err := p.Run(context.Background(), d.GetId(), all(), rowsAll, key)
	if err != nil {
		t.Fatal(err)
	}
	_, got := drain(t, r)
	want := map[string]bool{}
	for _, g := range gen {
		want[pseudonym(key, g["person_id"].(string))] = true
	}
	for _, row := range got {
		if !want[row[0].(string)] {
			t.Fatalf("%v is not the keyed hash of any person id", row[0])
		}
	}
	// The key is a parameter, not SQL text.
	sql, _, err := CompilePostgres(d, PGTable{Schema: pgSchema, Table: pgTable}, all(), rowsAll, key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sql, string(key)) || strings.Contains(sql, hex.EncodeToString(key)) {
		t.Fatal("key spliced into the SQL")
	}
}

// TestPGEverySampleDatasetParity loads every sample dataset (every
// catalog type) into PostgreSQL by COPY and into DuckDB from the same
// CSV, and wants the same rows from both, raw and with every column
// pseudonymised.
func TestPGEverySampleDatasetParity(t *testing.T) {
	const n = 2000
	dsn := pgDSN(t)
	key := []byte("parity key, long enough for use")
	for i, d := range sample.Datasets() {
		t.Run(d.GetId(), func(t *testing.T) {
			table := fmt.Sprintf("sample_%d", i)
			var cols []string
			for _, c := range d.GetSchema().GetColumns() {
				typ, ok := pgCastType(c.GetType())
				if !ok {
					t.Fatalf("column %s: type %s", c.GetName(), c.GetType())
				}
				cols = append(cols, pgx.Identifier{c.GetName()}.Sanitize()+" "+typ)
			}
			pgExec(t, "DROP TABLE IF EXISTS public."+table, "CREATE TABLE public."+table+" ("+strings.Join(cols, ", ")+")")
			var csv bytes.Buffer
			if err := synth.WriteCSV(&csv, d, n, testSeed); err != nil {
				t.Fatal(err)
			}
			if got := pgCopyCSV(t, "public."+table, csv.Bytes()); got != n {
				t.Fatalf("COPY loaded %d rows", got)
			}
			p, err := OpenPostgres(context.Background(), dsn, []PGTable{{DatasetID: d.GetId(), Table: table}}, catalogOf(d))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !p.Serving(d.GetId()) {
				t.Fatalf("not served: %v", p.Check(context.Background()))
			}
			duck, err := OpenDuckDB(context.Background(), []Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{writeCSV(t, t.TempDir(), d, n)}}}, catalogOf(d))
			if err != nil {
				t.Fatal(err)
			}
			defer duck.Close()
			treatAll := map[string]yrdv1.ColumnTreatment{}
			for _, c := range d.GetSchema().GetColumns() {
				treatAll[c.GetName()] = pseudo
			}
			for name, dec := range map[string]*yrdv1.Decision{"raw": decision(d, rows, nil), "pseudonymised": decision(d, rows, treatAll)} {
				dec.RowCap = n
				sql, args, err := Compile(d, onDataset(d), dec, key)
				if err != nil {
					t.Fatal(err)
				}
				_, want := collect(t, duck, sql, args)
				r, err := p.Run(context.Background(), d.GetId(), onDataset(d), dec, key)
				if err != nil {
					t.Fatal(err)
				}
				_, got := drain(t, r)
				w, g := sortedRows(want), sortedRows(got)
				if len(w) != n || !slices.Equal(w, g) {
					for i := range min(len(w), len(g)) {
						if w[i] != g[i] {
							t.Fatalf("%s: %d vs %d rows; first difference:\nduckdb   %s\npostgres %s", name, len(w), len(g), w[i], g[i])
						}
					}
					t.Fatalf("%s: %d rows from DuckDB, %d from PostgreSQL", name, len(w), len(g))
				}
			}
		})
	}
}

// TestPGDoubleTextMatchesDuckDB checks pgDoubleText, on which DOUBLE
// pseudonyms depend, against DuckDB's own CAST(DOUBLE AS VARCHAR).
func TestPGDoubleTextMatchesDuckDB(t *testing.T) {
	duck, _ := openElderly(t)
	p, _ := openPGElderly(t)
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 45, 45.5, 0.1, 0.0001, 0.00001, -0.00001, 1.5e-7, 2.5e-300, 1e300,
		1e15, -1e15, 1e15 + 0.5, 1234567890123456.25, 4503599627370495.5, 999999999999999.9, 9007199254740992, 1e16, 1e17, 1e21, 1e22,
		123456789.125, 0.30000000000000004, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		e := rng.IntN(44) - 22
		v := (rng.Float64() - 0.5) * math.Pow(10, float64(e))
		vals = append(vals, v, math.Round(v), math.Round(v*100)/100)
	}
	c, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(c)
	for _, v := range vals {
		_, want := collect(t, duck, "SELECT CAST(CAST(? AS DOUBLE) AS VARCHAR)", []any{v})
		var got string
		if err := c.QueryRow(context.Background(), "SELECT "+pgDoubleText("$1::float8"), v).Scan(&got); err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if got != want[0][0] {
			t.Errorf("%v: postgres %q, duckdb %q", v, got, want[0][0])
		}
	}
}

// TestPGTextMatchesDuckDB checks that the other catalog types render as
// the same text in both databases, as pseudonyms hash that text.
func TestPGTextMatchesDuckDB(t *testing.T) {
	duck, _ := openElderly(t)
	p, _ := openPGElderly(t)
	c, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(c)
	for typ, vals := range map[string][]string{
		"DECIMAL":   {"0", "12.34", "-0.5", "12.34567", "99999999999999.9999", "-12.00005", "1e3"},
		"TIMESTAMP": {"2024-03-01 12:34:56", "2024-03-01 12:34:56.5", "2024-03-01 12:34:56.123456", "2024-03-01 00:00:00.01", "1970-01-01 00:00:00", "1900-02-28 23:59:59.999999"},
		"DATE":      {"2024-02-29", "1970-01-01", "0001-01-01", "9999-12-31"},
		"BOOLEAN":   {"true", "false"},
		"INTEGER":   {"0", "-2147483648", "2147483647"},
		"BIGINT":    {"-9223372036854775808", "9223372036854775807"},
		"VARCHAR":   {"", "浦东新区", "a'b\"c"},
	} {
		dt, _ := duckType(typ)
		pt, _ := pgCastType(typ)
		for _, v := range vals {
			_, want := collect(t, duck, "SELECT CAST(CAST(? AS "+dt+") AS VARCHAR)", []any{v})
			var got string
			if err := c.QueryRow(context.Background(), "SELECT CAST(CAST($1::text AS "+pt+") AS text)", v).Scan(&got); err != nil {
				t.Fatalf("%s %s: %v", typ, v, err)
			}
			if got != want[0][0] {
				t.Errorf("%s %s: postgres %q, duckdb %q", typ, v, got, want[0][0])
			}
		}
	}
}
