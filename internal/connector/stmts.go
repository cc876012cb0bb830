package connector

import (
	"context"
	"database/sql"

	lru "github.com/hashicorp/golang-lru/v2"
)

// maxCachedStatements bounds the prepared statements a DuckDB keeps.
const maxCachedStatements = 256

// statements keeps prepared statements by their SQL text. A node runs the
// same few plan shapes again and again, with the values bound as
// parameters; DuckDB's parse, bind and plan of a sketch plan cost about
// as much as running it over a small dataset, and a prepared statement
// skips them. DuckDB rebinds a prepared statement by itself when a view it
// reads was replaced or dropped (see TestPreparedStatementSeesReplacedView),
// so the cache needs no purge when checks recreate views.
type statements struct {
	db    *sql.DB
	cache *lru.Cache[string, *sql.Stmt]
}

func newStatements(db *sql.DB) *statements {
	// Evicted statements are closed; database/sql defers the close of a
	// statement until the rows a query on it returned are closed.
	cache, err := lru.NewWithEvict(maxCachedStatements, func(_ string, s *sql.Stmt) { s.Close() })
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &statements{db: db, cache: cache}
}

// query runs query with args through its prepared statement, preparing
// and keeping it on first use. A statement that fails to prepare is not
// kept.
func (s *statements) query(ctx context.Context, query string, args []any) (*sql.Rows, error) {
	st, ok := s.cache.Get(query)
	if !ok {
		var err error
		if st, err = s.db.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if prev, loaded, _ := s.cache.PeekOrAdd(query, st); loaded {
			st.Close() // another query prepared it meanwhile
			st = prev
		}
	}
	return st.QueryContext(ctx, args...)
}

// close closes every kept statement.
func (s *statements) close() {
	s.cache.Purge()
}
