package querylang_test

import (
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/querylang"
)

// The lookups sit on every parse, decision and plan; they must cost no
// more than the maps and switches they replaced.

func BenchmarkAggregateByKey(b *testing.B) {
	keys := []string{"count", "count_distinct", "sum", "avg", "min", "max", "median"}
	for b.Loop() {
		for _, k := range keys {
			querylang.AggregateByKey(k)
		}
	}
}

func BenchmarkAggregateOf(b *testing.B) {
	for b.Loop() {
		for fn := count; fn <= maxFn; fn++ {
			querylang.AggregateOf(fn)
		}
	}
}

func BenchmarkComparisonWritten(b *testing.B) {
	ops := []string{"=", "<>", "!=", "<", "<=", ">", ">="}
	for b.Loop() {
		for _, op := range ops {
			querylang.ComparisonWritten(op)
		}
	}
}
