package sqlq

import "testing"

// benchQuery is a typical aggregate query of the exchange.
const benchQuery = `SELECT district, sex, count(*) AS n, avg(age) AS mean_age
FROM family:yrd.elderly-population.v1
WHERE age >= 60 AND (living_alone = TRUE OR care_level IN ('B', 'C'))
  AND registered BETWEEN DATE '2020-01-01' AND DATE '2024-12-31'
GROUP BY district, sex
ORDER BY n DESC, district
LIMIT 100`

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(benchQuery)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchQuery); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	q, err := Parse(benchQuery)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Format(q)
	}
}
