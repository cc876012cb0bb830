package sqlq

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestFormatParseRandom builds random valid queries, including names and
// values that need quoting or escaping, and checks Parse(Format(q)) == q.
// It complements FuzzParse, whose inputs rarely reach deep valid queries.
func TestFormatParseRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		q := randomQuery(r)
		text := Format(q)
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("#%d: Parse(Format(q)) = Parse(%q): %v\nq = %v", i, text, err, prototext.Format(q))
		}
		if !proto.Equal(q, back) {
			t.Fatalf("#%d: round trip through %q changed\n%v\nto\n%v", i, text, prototext.Format(q), prototext.Format(back))
		}
	}
}

var randomNames = []string{
	"a", "age", "district", "_x1", "date", "timestamp", "count", "sum", "family",
	"order", "select", "null", "desc", "Mixed", "two words", `quo"te`, "人口", "a-b", "1st",
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func randomQuery(r *rand.Rand) *yrdv1.Query {
	q := &yrdv1.Query{}
	if r.IntN(2) == 0 {
		q.Source = &yrdv1.Query_DatasetId{DatasetId: pick(r, []string{elderly, "x.y", "limit", "a--b.c", "123"})}
	} else {
		q.Source = &yrdv1.Query_Family{Family: pick(r, []string{"yrd.elderly-population.v1", "a.v2"})}
	}
	aliases := map[string]bool{}
	for range r.IntN(4) {
		item := &yrdv1.SelectItem{}
		if r.IntN(2) == 0 {
			item.Item = &yrdv1.SelectItem_Column{Column: pick(r, randomNames)}
		} else {
			fn := yrdv1.AggregateFunction(1 + r.IntN(6))
			col := pick(r, randomNames)
			if fn == yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT && r.IntN(2) == 0 {
				col = ""
			}
			item.Item = &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: fn, Column: col}}
		}
		if a := pick(r, randomNames); r.IntN(2) == 0 && !aliases[a] {
			item.Alias = a
			aliases[a] = true
		}
		q.Select = append(q.Select, item)
	}
	if r.IntN(4) > 0 {
		q.Where = randomExpr(r, 0)
	}
	for range r.IntN(3) {
		q.GroupBy = append(q.GroupBy, pick(r, randomNames))
	}
	for range r.IntN(3) {
		o := &yrdv1.OrderItem{Descending: r.IntN(2) == 0}
		if len(q.Select) > 0 && r.IntN(2) == 0 {
			o.Key = &yrdv1.OrderItem_SelectIndex{SelectIndex: int32(r.IntN(len(q.Select)))}
		} else if c := pick(r, randomNames); !aliases[c] {
			// A column named like an alias would read back as the alias.
			o.Key = &yrdv1.OrderItem_Column{Column: c}
		} else {
			continue
		}
		q.OrderBy = append(q.OrderBy, o)
	}
	if r.IntN(2) == 0 {
		q.Limit = 1 + r.Uint64N(math.MaxUint64)
	}
	return q
}

func randomExpr(r *rand.Rand, depth int) *yrdv1.Expr {
	col := pick(r, randomNames)
	k := r.IntN(8)
	if depth > 6 {
		k = r.IntN(4)
	}
	switch k {
	case 0:
		return cmp(col, yrdv1.CompareOp(1+r.IntN(6)), randomLiteral(r))
	case 1:
		vs := make([]*yrdv1.Literal, 1+r.IntN(3))
		for i := range vs {
			vs[i] = randomLiteral(r)
		}
		return in(col, r.IntN(2) == 0, vs...)
	case 2:
		return between(col, r.IntN(2) == 0, randomLiteral(r), randomLiteral(r))
	case 3:
		return isNull(col, r.IntN(2) == 0)
	case 4:
		return not(randomExpr(r, depth+1))
	}
	ops := make([]*yrdv1.Expr, 2+r.IntN(3))
	for i := range ops {
		ops[i] = randomExpr(r, depth+1)
	}
	if k%2 == 0 {
		return and(ops...)
	}
	return or(ops...)
}

func randomLiteral(r *rand.Rand) *yrdv1.Literal {
	switch r.IntN(6) {
	case 0:
		return str(pick(r, []string{"", "x", "O'Brien", "''", "a\nb", "黄浦区", "--", "\"", "\t"}))
	case 1:
		return num(pick(r, []int64{0, 1, -1, math.MaxInt64, math.MinInt64, r.Int64() - r.Int64()}))
	case 2:
		for {
			f := math.Float64frombits(r.Uint64())
			if r.IntN(2) == 0 {
				f = pick(r, []float64{0, math.Copysign(0, -1), 0.1, 100, 1e21, 1e-7, 5e-324, math.MaxFloat64})
			}
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				return dbl(f)
			}
		}
	case 3:
		return boolean(r.IntN(2) == 0)
	case 4:
		return date(fmt.Sprintf("%04d-%02d-%02d", r.IntN(10000), 1+r.IntN(12), 1+r.IntN(28)))
	}
	return ts(pick(r, []string{"2024-01-31T08:00:00+08:00", "2024-01-31T00:00:00Z", "1999-12-31T23:59:59.999999999-05:30"}))
}
