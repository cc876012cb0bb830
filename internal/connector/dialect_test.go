package connector

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestPGDialectSpelling: PostgreSQL's placeholders are numbered and cast
// to the type of their Go value, identifiers are quoted verbatim (a "?"
// or a quote in one is no placeholder), and the keyed hash is spelled as
// PostgreSQL computes DuckDB's pseudonym.
func TestPGDialectSpelling(t *testing.T) {
	d := &yrdv1.Dataset{Id: "t", Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
		{Name: `a?"b`, Type: "VARCHAR"}, {Name: "x", Type: "VARCHAR"}, {Name: "y", Type: "BIGINT"}, {Name: "z", Type: "BOOLEAN"},
		{Name: "person_id", Type: "VARCHAR", IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_DIRECT},
	}}}
	q := onDataset(d)
	q.Select = []*yrdv1.SelectItem{col(`a?"b`)}
	q.Where = &yrdv1.Expr{Node: &yrdv1.Expr_And{And: &yrdv1.Logical{Operands: []*yrdv1.Expr{
		eqString("x", "s"),
		{Node: &yrdv1.Expr_In{In: &yrdv1.InList{Column: "y", Values: []*yrdv1.Literal{literal(1), literal(2.5)}}}},
		{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{Column: "z", Op: yrdv1.CompareOp_COMPARE_OP_EQ, Value: literal(true)}}},
	}}}}
	q.Limit = 10
	sql, args, err := CompilePostgres(d, PGTable{Table: "t"}, q, decision(d, rows, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"a?""b"`, `"x" = $1::text`, `("y" IN ($2::bigint, $3::double precision))`, `"z" = $4::boolean`, `LIMIT $5::bigint`} {
		if !strings.Contains(sql, want) {
			t.Errorf("no %s in %s", want, sql)
		}
	}
	if len(args) != 5 || strings.Count(sql, "$") != 5 {
		t.Errorf("%d arguments for %d placeholders: %s", len(args), strings.Count(sql, "$"), sql)
	}
	if _, err := (pgDialect{}).placeholder(1, []byte("x")); err == nil {
		t.Error("a []byte argument got a placeholder")
	}
	// The keyed hash, in PostgreSQL's spelling.
	q = onDataset(d)
	q.Select = []*yrdv1.SelectItem{col("person_id")}
	sql, _, err = CompilePostgres(d, PGTable{Table: "t"}, q, decision(d, rows, map[string]yrdv1.ColumnTreatment{"person_id": pseudo}), []byte("a pseudonym key, long enough"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `substr(encode(sha256(convert_to($1::text || CAST("person_id" AS text), 'UTF8')), 'hex'), 1, 16)`; !strings.Contains(sql, want) {
		t.Errorf("hash: %s", sql)
	}
}

// TestPlaceholdersMatchArguments: in every sketch and plain plan, each
// bound value has its placeholder, in text order: DuckDB's "?" one per
// argument, PostgreSQL's $1..$n each once and ascending, cast to the type
// of the value bound.
func TestPlaceholdersMatchArguments(t *testing.T) {
	d := elderly(t)
	pgParam := regexp.MustCompile(`\$([0-9]+)::(text|bigint|double precision|boolean)`)
	for _, sh := range elderlyShapes(d) {
		for _, o := range []Options{sh.o, {Sketch: testSketch, PseudonymKey: sh.o.PseudonymKey, SumBound: sh.o.SumBound}} {
			for _, fast := range []bool{true, false} {
				o.personUnique, o.cellRows = fast, true
				duck, err := compileStatement(duckDialect{}, d, sh.q, sh.dec, o)
				if err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(duck.SQL, "?"); n != len(duck.Args) {
					t.Errorf("%s: %d placeholders for %d arguments: %s", sh.name, n, len(duck.Args), duck.SQL)
				}
				pg, err := compileStatement(pgDialect{table: PGTable{Table: "t"}}, d, sh.q, sh.dec, o)
				if err != nil {
					t.Fatal(err)
				}
				ms := pgParam.FindAllStringSubmatch(pg.SQL, -1)
				if len(ms) != len(pg.Args) || strings.Count(pg.SQL, "$") != len(pg.Args) {
					t.Fatalf("%s: %d placeholders for %d arguments: %s", sh.name, len(ms), len(pg.Args), pg.SQL)
				}
				for i, m := range ms {
					want, _ := (pgDialect{}).placeholder(i+1, pg.Args[i])
					if m[1] != strconv.Itoa(i+1) || "$"+m[1]+"::"+m[2] != want {
						t.Fatalf("%s: placeholder %d is $%s::%s, want %s: %s", sh.name, i+1, m[1], m[2], want, pg.SQL)
					}
				}
			}
		}
	}
}
