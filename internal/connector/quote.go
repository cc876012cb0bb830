package connector

import (
	"fmt"
	"strings"
)

// quoteIdent double-quotes an identifier for DuckDB. Identifiers only ever
// come from the catalog or the operator's configuration, but quoting them
// still keeps a column named like a keyword (or containing a quote) from
// changing the statement's meaning.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteString makes a SQL string literal. It is used only for values that
// DuckDB cannot take as parameters in DDL (file paths, column type maps of
// read_csv in a CREATE VIEW); requester text never reaches it.
func quoteString(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("string contains a NUL byte: %q", s)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}
