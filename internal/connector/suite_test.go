package connector

import (
	"context"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The connector's behaviour, one suite run against each engine through
// the Engine interface: TestDuckDBEngine and TestPostgresEngine serve the
// same generated elderly rows and must pass the same assertions.

func TestDuckDBEngine(t *testing.T)   { runEngineSuite(t, openDuckEngine) }
func TestPostgresEngine(t *testing.T) { runEngineSuite(t, openPGEngine) }

// engineUnderTest is an Engine serving testRows rows of the elderly
// dataset, with what the suite needs beyond the interface.
type engineUnderTest struct {
	Engine
	name string
	d    *yrdv1.Dataset
	dl   dialect
	// table is the relation the rows live in, quoted, for hand-written SQL.
	table string
	// compile is the engine's exported compile function (CompileWith or
	// CompilePostgresWith).
	compile func(q *yrdv1.Query, dec *yrdv1.Decision, o Options) (string, []any, error)
	// run is the engine's Run: compile and run in one call.
	run func(ctx context.Context, q *yrdv1.Query, dec *yrdv1.Decision, key []byte) (ResultRows, error)
}

func openDuckEngine(t *testing.T) engineUnderTest {
	db, d := openElderly(t)
	return engineUnderTest{Engine: db, name: "duckdb", d: d, dl: duckDialect{}, table: quoteIdent(d.GetId()),
		compile: func(q *yrdv1.Query, dec *yrdv1.Decision, o Options) (string, []any, error) {
			return CompileWith(d, q, dec, o)
		},
		run: func(ctx context.Context, q *yrdv1.Query, dec *yrdv1.Decision, key []byte) (ResultRows, error) {
			r, err := db.Run(ctx, d.GetId(), q, dec, key)
			if err != nil {
				return nil, err
			}
			return r, nil
		}}
}

func openPGEngine(t *testing.T) engineUnderTest {
	p, tbl := openPGElderly(t)
	d := elderly(t)
	return engineUnderTest{Engine: p, name: "postgres", d: d, dl: pgDialect{table: tbl}, table: pgTableName(tbl),
		compile: func(q *yrdv1.Query, dec *yrdv1.Decision, o Options) (string, []any, error) {
			return CompilePostgresWith(d, tbl, q, dec, o)
		},
		run: func(ctx context.Context, q *yrdv1.Query, dec *yrdv1.Decision, key []byte) (ResultRows, error) {
			r, err := p.Run(ctx, d.GetId(), q, dec, key)
			if err != nil {
				return nil, err
			}
			return r, nil
		}}
}

// runEngineSuite runs every test of the suite on a fresh engine.
func runEngineSuite(t *testing.T, open func(t *testing.T) engineUnderTest) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, engineUnderTest)
	}{
		{"GroupByWithKSuppression", suiteGroupByWithKSuppression},
		{"AggregateOnlyRejectsRowQueries", suiteAggregateOnlyRejectsRowQueries},
		{"MaskingAndPseudonymisation", suiteMaskingAndPseudonymisation},
		{"LiteralInjection", suiteLiteralInjection},
		{"Filters", suiteFilters},
		{"UnknownColumn", suiteUnknownColumn},
		{"RowCap", suiteRowCap},
		{"Run", suiteRun},
		{"ConcurrentQueries", suiteConcurrentQueries},
		{"IndividualsColumnCountsDistinctPeoplePerGroup", suiteIndividualsColumn},
		{"SumBoundClampsEveryRow", suiteSumBoundClampsEveryRow},
		{"PersonKeysAreTheFilteredIndividuals", suitePersonKeys},
		{"GeneralisedQuasiIdentifiersShowBandsAndPrefixes", suiteGeneralisedBandsAndPrefixes},
		{"GeneralisedDatesTruncate", suiteGeneralisedDatesTruncate},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
}

// query runs SQL on the engine and returns the column names and rows.
func (e engineUnderTest) query(t testing.TB, sql string, args []any) ([]string, [][]any) {
	t.Helper()
	r, err := e.Exec(context.Background(), Statement{SQL: sql, Args: args})
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	return drain(t, r)
}

// runQuery runs q through the engine's Run.
func (e engineUnderTest) runQuery(t testing.TB, q *yrdv1.Query, dec *yrdv1.Decision, key []byte) ([]string, [][]any) {
	t.Helper()
	r, err := e.run(context.Background(), q, dec, key)
	if err != nil {
		t.Fatal(err)
	}
	return drain(t, r)
}

// param is the engine's placeholder for the n-th bound value v.
func (e engineUnderTest) param(t testing.TB, n int, v any) string {
	t.Helper()
	p, err := e.dl.placeholder(n, v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runPlan plans q on e and runs the Statement.
func runPlan(t *testing.T, e Engine, id string, q *yrdv1.Query, dec *yrdv1.Decision, o Options) ([]string, [][]any) {
	t.Helper()
	st, err := e.Plan(id, q, dec, o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Exec(context.Background(), st)
	if err != nil {
		t.Fatalf("%s: %v", st.SQL, err)
	}
	return drain(t, r)
}
