package merge_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The result does not depend on the order owners answered in.
func TestAddOrderIrrelevant(t *testing.T) {
	cities, tabs := randomDelta(7, 5, 300)
	for _, sql := range []string{
		"SELECT district, count(*) AS n, sum(score), avg(score), avg(age), min(score), max(age) FROM fam GROUP BY district ORDER BY n DESC LIMIT 10",
		"SELECT person_id, score FROM fam ORDER BY score DESC LIMIT 20",
	} {
		var first []*yrdv1.Row
		for p := range 6 {
			order := slices.Clone(cities)
			r := rand.New(rand.NewPCG(uint64(p), 1))
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			_, rows := runFamily(t, parse(t, sql), order, tabs, nil)
			if p == 0 {
				first = rows
			} else if !slices.EqualFunc(first, rows, func(a, b *yrdv1.Row) bool { return proto.Equal(a, b) }) {
				t.Fatalf("%s: owners in order %v give a different result", sql, order)
			}
		}
	}
}

// randomDelta is n cities of rows random people each: districts shared
// by some cities, ages, scores (DOUBLE), and NULLs.
func randomDelta(seed uint64, n, rows int) ([]string, map[string]table) {
	r := rand.New(rand.NewPCG(seed, 2))
	cols := append(slices.Clone(elderlyCols), "score")
	types := append(slices.Clone(elderlyTypes), "DOUBLE")
	maybe := func(v *yrdv1.Value) *yrdv1.Value {
		if r.IntN(12) == 0 {
			return null()
		}
		return v
	}
	var cities []string
	tabs := map[string]table{}
	for c := range n {
		city := fmt.Sprintf("city%02d", c)
		cities = append(cities, city)
		tb := table{cols: cols, types: types}
		for i := range rows - c*rows/(2*n) { // cities of different sizes
			tb.rows = append(tb.rows, []*yrdv1.Value{
				vs(fmt.Sprintf("%s-%05d", city, i)),
				maybe(vs(fmt.Sprintf("d%02d", r.IntN(15)+c))), // d00-d14 for city00, d01-d15 for city01...
				maybe(vi(int64(60 + r.IntN(45)))),
				vs([]string{"F", "M"}[r.IntN(2)]),
				maybe(vb(r.IntN(3) == 0)),
				maybe(vi(int64(r.IntN(7)))),
				maybe(vf(math.Round(r.Float64()*1e4) / 100)),
			})
		}
		tabs[city] = tb
	}
	return cities, tabs
}

// Merged results equal a brute-force evaluation over the union of every
// owner's rows (with suppression: over the rows the owners released),
// for random data and a range of queries.
func TestAgainstBruteForce(t *testing.T) {
	queries := []string{
		"SELECT district, count(*) AS n, sum(age), avg(age), min(age), max(age), count(care_level) FROM fam GROUP BY district ORDER BY n DESC LIMIT 5",
		"SELECT care_level, avg(score) AS mean_score, sum(score), min(district), max(district) FROM fam GROUP BY care_level",
		"SELECT count(*), sum(care_level), avg(care_level), min(score), max(score) FROM fam",
		"SELECT count(*) AS n FROM fam GROUP BY district, living_alone ORDER BY n DESC, 1",
		"SELECT living_alone, gender, max(age) AS oldest, avg(age) FROM fam GROUP BY living_alone, gender ORDER BY living_alone DESC, gender",
		"SELECT district, avg(age) AS a FROM fam GROUP BY district ORDER BY a DESC, district LIMIT 4",
		"SELECT sum(score) AS total, avg(score), count(score) FROM fam GROUP BY district ORDER BY total LIMIT 3",
		"SELECT gender FROM fam GROUP BY gender",
		"SELECT district, age, person_id FROM fam ORDER BY age DESC, person_id LIMIT 7",
		"SELECT person_id FROM fam ORDER BY care_level, age DESC, person_id LIMIT 10",
		"SELECT * FROM fam LIMIT 3",
		"SELECT * FROM fam ORDER BY score, person_id LIMIT 4",
		"SELECT person_id, score FROM fam ORDER BY score DESC LIMIT 25",
	}
	for seed := range uint64(4) {
		cities, tabs := randomDelta(seed, 3+int(seed), 400)
		owners := map[string]owner{}
		for i, c := range cities {
			owners[c] = owner{pg: i%2 == 1}
		}
		for _, sql := range queries {
			q := parse(t, sql)
			cols, rows := runFamily(t, q, cities, tabs, owners)
			var all []table
			for _, c := range cities {
				all = append(all, tabs[c])
			}
			refCols, ref := eval(t, onDataset(q, "all"), union(all...), owner{})
			if d := sameResult(cols, refCols, rows, ref); d != "" {
				t.Errorf("seed %d: %s: %s", seed, sql, d)
			}
			if len(rows) == 0 {
				t.Errorf("seed %d: %s: no rows; the test proves little", seed, sql)
			}
			if q.GetGroupBy() == nil {
				continue
			}
			// With suppression at k: the merge combines exactly what
			// the owners released.
			const k = 9
			ks := map[string]owner{}
			var released []table
			for _, c := range cities {
				ks[c] = owner{k: k, pg: owners[c].pg}
				released = append(released, releasedRows(t, q, tabs[c], k))
			}
			cols, rows = runFamily(t, q, cities, tabs, ks)
			refCols, ref = eval(t, onDataset(q, "all"), union(released...), owner{})
			if d := sameResult(cols, refCols, rows, ref); d != "" {
				t.Errorf("seed %d: %s at k=%d: %s", seed, sql, k, d)
			}
		}
	}
}

// releasedRows is the rows of tb in groups (by q's GROUP BY) of at least
// k rows.
func releasedRows(t testing.TB, q *yrdv1.Query, tb table, k int) table {
	t.Helper()
	key := func(r []*yrdv1.Value) string {
		var b strings.Builder
		for _, g := range q.GetGroupBy() {
			fmt.Fprintf(&b, "%T:%v|", r[tb.col(t, g)].GetKind(), r[tb.col(t, g)].GetKind())
		}
		return b.String()
	}
	n := map[string]int{}
	for _, r := range tb.rows {
		n[key(r)]++
	}
	out := table{cols: tb.cols, types: tb.types}
	for _, r := range tb.rows {
		if n[key(r)] >= k {
			out.rows = append(out.rows, r)
		}
	}
	return out
}
