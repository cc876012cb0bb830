package querylang

import (
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Comparison is what one comparison operator means.
type Comparison struct {
	// Op is the wire enum.
	Op yrdv1.CompareOp
	// SQL is the operator as SQL writes it, in DuckDB and PostgreSQL
	// alike, and as canonical query text shows it.
	SQL string
	// Also is another spelling a requester may write ("!=" for "<>"), or "".
	Also string
	// Flipped is the operator with its operands swapped: 5 < age is
	// age > 5, so LT flips to GT.
	Flipped yrdv1.CompareOp
}

// comparisons is the table: one entry per CompareOp but UNSPECIFIED, in
// enum order.
var comparisons = [...]Comparison{
	{Op: yrdv1.CompareOp_COMPARE_OP_EQ, SQL: "=", Flipped: yrdv1.CompareOp_COMPARE_OP_EQ},
	{Op: yrdv1.CompareOp_COMPARE_OP_NE, SQL: "<>", Also: "!=", Flipped: yrdv1.CompareOp_COMPARE_OP_NE},
	{Op: yrdv1.CompareOp_COMPARE_OP_LT, SQL: "<", Flipped: yrdv1.CompareOp_COMPARE_OP_GT},
	{Op: yrdv1.CompareOp_COMPARE_OP_LE, SQL: "<=", Flipped: yrdv1.CompareOp_COMPARE_OP_GE},
	{Op: yrdv1.CompareOp_COMPARE_OP_GT, SQL: ">", Flipped: yrdv1.CompareOp_COMPARE_OP_LT},
	{Op: yrdv1.CompareOp_COMPARE_OP_GE, SQL: ">=", Flipped: yrdv1.CompareOp_COMPARE_OP_LE},
}

// Comparisons returns the table, in enum order; the caller may keep it.
func Comparisons() []Comparison { return append([]Comparison(nil), comparisons[:]...) }

// ComparisonOf is the entry of op; false for UNSPECIFIED and unknown values.
func ComparisonOf(op yrdv1.CompareOp) (Comparison, bool) {
	// The table is in enum order from 1, which the tests check.
	if i := int(op) - 1; i >= 0 && i < len(comparisons) {
		return comparisons[i], true
	}
	return Comparison{}, false
}

// ComparisonWritten is the entry of an operator as a requester wrote it,
// in either spelling: "<>" and "!=" are both NE.
func ComparisonWritten(text string) (Comparison, bool) {
	for i := range comparisons { // by index: no copy of the entries passed over
		if c := &comparisons[i]; c.SQL == text || c.Also == text && text != "" {
			return *c, true
		}
	}
	return Comparison{}, false
}
