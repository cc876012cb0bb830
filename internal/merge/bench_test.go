package merge_test

import (
	"fmt"
	"testing"

	"github.com/yrd-exchange/yrdnode/internal/merge"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// BenchmarkMerge merges 5 owners' partial results of 1,000 groups each
// (count, sum, avg, min and max of age by district, most groups in
// several cities) and orders and cuts the merged groups: one op is Plan,
// five Adds and Result.
func BenchmarkMerge(b *testing.B) {
	const owners, groups = 5, 1000
	q := parse(b, "SELECT district, count(*) AS n, sum(age), avg(age) AS mean_age, min(age), max(age) FROM fam GROUP BY district ORDER BY n DESC, mean_age LIMIT 10")
	cols := []*yrdv1.ResultColumn{rc("district", "VARCHAR"), rc("n", "BIGINT"), rc("sum(age)", "BIGINT"),
		rc("__yrd_sum_4", "BIGINT"), rc("__yrd_count_4", "BIGINT"), rc("min(age)", "BIGINT"), rc("max(age)", "BIGINT")}
	parts := make([][]*yrdv1.Row, owners)
	for o := range owners {
		for g := range groups {
			n := int64(10 + (g*7+o*13)%90)
			sum := n * int64(70+(g+o)%20)
			parts[o] = append(parts[o], row(vs(fmt.Sprintf("district-%04d", g+o*150)), vi(n), vi(sum), vi(sum), vi(n), vi(60+int64(g%5)), vi(95+int64(o))))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := merge.Plan(q)
		if err != nil {
			b.Fatal(err)
		}
		for o, rows := range parts {
			if err := m.Add(fmt.Sprintf("city%d", o), cols, rows); err != nil {
				b.Fatal(err)
			}
		}
		_, rows, err := m.Result()
		if err != nil || len(rows) != 10 {
			b.Fatal(len(rows), err)
		}
	}
}
