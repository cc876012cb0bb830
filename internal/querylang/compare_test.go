package querylang_test

import (
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestEveryOperatorOnce(t *testing.T) {
	table := querylang.Comparisons()
	seen := map[yrdv1.CompareOp]int{}
	for i, c := range table {
		seen[c.Op]++
		if int(c.Op) != i+1 {
			t.Errorf("entry %d is %v, want enum value %d", i, c.Op, i+1)
		}
	}
	for v := range yrdv1.CompareOp_name {
		op := yrdv1.CompareOp(v)
		want := 1
		if op == yrdv1.CompareOp_COMPARE_OP_UNSPECIFIED {
			want = 0
		}
		if seen[op] != want {
			t.Errorf("%v is in the table %d times, want %d", op, seen[op], want)
		}
		if c, ok := querylang.ComparisonOf(op); ok != (want == 1) || ok && c.Op != op {
			t.Errorf("ComparisonOf(%v) = %v, %v", op, c.Op, ok)
		}
	}
	if len(table) != len(yrdv1.CompareOp_name)-1 {
		t.Errorf("table has %d entries, the enum %d values", len(table), len(yrdv1.CompareOp_name))
	}
	if _, ok := querylang.ComparisonOf(99); ok {
		t.Error("ComparisonOf(99) found an entry")
	}
}

// TestWhatTheOperatorsWere: sqlq/parse.go compareOps and flipped,
// sqlq/format.go opText and connector/expr.go compareOps.
func TestWhatTheOperatorsWere(t *testing.T) {
	written := map[string]yrdv1.CompareOp{
		"=": yrdv1.CompareOp_COMPARE_OP_EQ, "<>": yrdv1.CompareOp_COMPARE_OP_NE, "!=": yrdv1.CompareOp_COMPARE_OP_NE,
		"<": yrdv1.CompareOp_COMPARE_OP_LT, "<=": yrdv1.CompareOp_COMPARE_OP_LE,
		">": yrdv1.CompareOp_COMPARE_OP_GT, ">=": yrdv1.CompareOp_COMPARE_OP_GE,
	}
	for text, op := range written {
		if c, ok := querylang.ComparisonWritten(text); !ok || c.Op != op {
			t.Errorf("ComparisonWritten(%q) = %v, %v; want %v", text, c.Op, ok, op)
		}
	}
	for _, bad := range []string{"", "==", "=<", "<=>", "~", "!"} {
		if c, ok := querylang.ComparisonWritten(bad); ok {
			t.Errorf("ComparisonWritten(%q) = %v", bad, c.Op)
		}
	}
	for op, want := range map[yrdv1.CompareOp]struct {
		sql     string
		flipped yrdv1.CompareOp
	}{
		yrdv1.CompareOp_COMPARE_OP_EQ: {"=", yrdv1.CompareOp_COMPARE_OP_EQ},
		yrdv1.CompareOp_COMPARE_OP_NE: {"<>", yrdv1.CompareOp_COMPARE_OP_NE},
		yrdv1.CompareOp_COMPARE_OP_LT: {"<", yrdv1.CompareOp_COMPARE_OP_GT},
		yrdv1.CompareOp_COMPARE_OP_LE: {"<=", yrdv1.CompareOp_COMPARE_OP_GE},
		yrdv1.CompareOp_COMPARE_OP_GT: {">", yrdv1.CompareOp_COMPARE_OP_LT},
		yrdv1.CompareOp_COMPARE_OP_GE: {">=", yrdv1.CompareOp_COMPARE_OP_LE},
	} {
		c, _ := querylang.ComparisonOf(op)
		if c.SQL != want.sql || c.Flipped != want.flipped {
			t.Errorf("%v: %q flips to %v; want %q, %v", op, c.SQL, c.Flipped, want.sql, want.flipped)
		}
		// Flipping twice is the identity, and the flip is in the table.
		if f, ok := querylang.ComparisonOf(c.Flipped); !ok || f.Flipped != op {
			t.Errorf("%v: flipping twice gives %v", op, f.Flipped)
		}
	}
}
