package node_test

// Inference tests: an analyst who asks several permitted questions and
// combines the answers. Each test builds an attack the way an analyst
// would, on the sample delta, says what the attacker learns, and asserts
// that it is nothing exact about one person.

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/pgtest"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// startInferenceDelta is the adversarial delta with Shanghai's elderly
// dataset releasing exact counts (the owner's choice: the only protection
// left against differencing is the difference check) and, for engine
// "postgres", its rows in a PostgreSQL table instead of a CSV file.
func startInferenceDelta(t *testing.T, engine string) *dataDelta {
	t.Helper()
	o := deltaOptions{adjust: func(d *yrdv1.Dataset) {
		if d.GetId() == advSHElderly {
			d.ExactAggregates = true
		}
	}}
	if engine == "postgres" {
		pg, err := pgtest.Start()
		if err != nil {
			t.Fatalf("PostgreSQL test server: %v", err)
		}
		t.Cleanup(pg.Stop)
		o.configure = func(i int, cfg *node.Config) {
			if i != 0 {
				return
			}
			cfg.Data.Files = slices.DeleteFunc(cfg.Data.Files, func(s connector.Source) bool {
				if s.DatasetID == advSHElderly {
					loadElderlyTable(t, pg.DSN, s.Paths[0])
					return true
				}
				return false
			})
			cfg.Data.Postgres = &node.PostgresData{DSN: pg.DSN, Tables: []connector.PGTable{{DatasetID: advSHElderly, Schema: "city_data", Table: "elderly"}}}
		}
	}
	return startAdvDelta(t, o)
}

// pairCase is a differencing pair: two filters of one district whose
// residents both pass k and differ by 1 to k-1 individuals.
type pairCase struct {
	name, first, second string // WHERE clauses
}

// TestInferenceDifferencingPairsAreHeldBack: pairs of exact count queries
// from one organisation on GENERAL data, built in several ways, whose
// groups differ by fewer than k individuals though each passes k: the
// second answer never carries the shifted group (the trailer says one
// group was held back by aggregate.difference), so subtracting the two
// answers reveals nothing about the few people in between. On the
// DuckDB and the PostgreSQL engine. The same pairs asked by another
// organisation are answered: the check is per organisation.
func TestInferenceDifferencingPairsAreHeldBack(t *testing.T) {
	for _, engine := range []string{"duckdb", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dd := startInferenceDelta(t, engine)
			direct := newAdvDirect(t, dd)
			src := direct.src(advSHElderly)
			district, age := inferenceTarget(t, direct, src)
			in := fmt.Sprintf("district = '%s' AND ", district)
			cases := []pairCase{
				{name: "complementary filters", first: in + "age IS NOT NULL", second: in + fmt.Sprintf("NOT (age = %d)", age)},
				{name: "overlapping ranges", first: in + fmt.Sprintf("age BETWEEN 0 AND %d", age), second: in + fmt.Sprintf("age BETWEEN 0 AND %d", age-1)},
				{name: "IN lists", first: in + fmt.Sprintf("age IN (%s)", ageList(-1)), second: in + fmt.Sprintf("age IN (%s)", ageList(age))},
				{name: "a range split around one age", first: in + "age >= 0", second: in + fmt.Sprintf("(age < %d OR age > %d)", age, age)},
			}
			for i, c := range cases {
				org := fmt.Sprintf("shanghai-lab-%d", i)
				conn := advAnalyst(t, dd, "shanghai", org)
				first, second := pairSQL(c.first), pairSQL(c.second)
				r1, _ := advOK(t, conn, elderlyPurpose, first)
				r2, rc2 := advOK(t, conn, elderlyPurpose, second)
				g1, g2 := advGroups(t, r1), advGroups(t, r2)
				for g, n := range g2 {
					if m, ok := g1[g]; ok && m != n && m-n < advK && n-m < advK {
						t.Fatalf("%s: group %s released as %d, then %d: the difference singles out %d people", c.name, g, m, n, m-n)
					}
				}
				if len(g2) != len(g1)-1 {
					t.Fatalf("%s: first answer %v, second %v; want the second to hold back exactly the shifted group", c.name, g1, g2)
				}
				sup := r2.trailer.GetCities()[0].GetSuppressed()
				if len(sup) != 1 || sup[0].GetRuleId() != policy.RuleDifference || sup[0].GetGroups() != 1 || !slices.Contains(rc2.GetRuleIds(), policy.RuleDifference) {
					t.Fatalf("%s: suppression %v, rules %v; want one group held back by %s", c.name, sup, rc2.GetRuleIds(), policy.RuleDifference)
				}
				if rc2.GetNoise() != nil {
					t.Fatalf("%s: exact counts carried noise %v", c.name, rc2.GetNoise())
				}
				// Another organisation asking only the second question gets it.
				other := advAnalyst(t, dd, "shanghai", org+"-other")
				if r, _ := advOK(t, other, elderlyPurpose, second); len(advGroups(t, r)) != len(g2)+1 {
					t.Fatalf("%s: a fresh organisation got %d groups, want %d", c.name, len(r.rows), len(g2)+1)
				}
			}
		})
	}
}

// pairSQL counts the residents a filter selects, by district.
func pairSQL(where string) string {
	return "SELECT district, count(*) AS n FROM " + advSHElderly + " WHERE " + where + " GROUP BY district"
}

// inferenceTarget is a district with more than 2k residents and the
// highest age that exactly one of them has (so that most are younger).
func inferenceTarget(t *testing.T, direct *advDirect, src string) (string, int64) {
	t.Helper()
	rows := direct.query(t, `SELECT district, age FROM `+src+` WHERE district IS NOT NULL AND age IS NOT NULL
		AND district IN (SELECT district FROM `+src+` GROUP BY district HAVING count(*) > ?)
		GROUP BY district, age HAVING count(*) = 1 ORDER BY age DESC, district LIMIT 1`, 2*advK)
	if len(rows) == 0 {
		t.Fatal("setup: no district has an age held by exactly one resident")
	}
	return rows[0][0].(string), rows[0][1].(int64)
}

// ageList lists the ages 50..120 except skip.
func ageList(skip int64) string {
	var out []string
	for a := int64(50); a <= 120; a++ {
		if a != skip {
			out = append(out, fmt.Sprint(a))
		}
	}
	return strings.Join(out, ", ")
}

// TestInferenceTotalThenBreakdown: a total asked once and a breakdown
// asked later cannot be subtracted. The breakdown by gender of a
// district whose residents of unknown gender number 1 to k-1 (held back
// by k) has groups that each pass k and differ from the total by more
// than k, but together they differ from it by those few: the whole
// breakdown is held back. Asked the other way round (breakdown first),
// the total is held back.
func TestInferenceTotalThenBreakdown(t *testing.T) {
	dd := startInferenceDelta(t, "duckdb")
	direct := newAdvDirect(t, dd)
	src := direct.src(advSHElderly)
	rows := direct.query(t, `SELECT district FROM `+src+` WHERE district IS NOT NULL GROUP BY district
		HAVING count(*) FILTER (WHERE gender IS NULL) BETWEEN 1 AND ? AND count(*) FILTER (WHERE gender = 'F') >= ?
		AND count(*) FILTER (WHERE gender = 'M') >= ? ORDER BY district LIMIT 1`, advK-1, advK+10, advK+10)
	if len(rows) == 0 {
		t.Fatal("setup: no district with both genders over k and 1 to k-1 residents of unknown gender")
	}
	district := rows[0][0].(string)
	total := "SELECT district, count(*) AS n FROM " + advSHElderly + " WHERE district = '" + district + "' GROUP BY district"
	breakdown := "SELECT gender, count(*) AS n FROM " + advSHElderly + " WHERE district = '" + district + "' GROUP BY gender"
	for i, order := range [][2]string{{total, breakdown}, {breakdown, total}} {
		conn := advAnalyst(t, dd, "shanghai", fmt.Sprintf("shanghai-lab-%d", i))
		advOK(t, conn, elderlyPurpose, order[0])
		r, rc := advOK(t, conn, elderlyPurpose, order[1])
		if len(r.rows) != 0 {
			t.Fatalf("order %d: %v released; the total less the breakdown would count the residents of unknown gender", i, advGroups(t, r))
		}
		sup := r.trailer.GetCities()[0].GetSuppressed()
		if len(sup) != 1 || sup[0].GetRuleId() != policy.RuleDifference || !slices.Contains(rc.GetRuleIds(), policy.RuleDifference) {
			t.Fatalf("order %d: suppression %v; want %s", i, sup, policy.RuleDifference)
		}
	}
}

// TestInferenceRepeatedNoisyQueriesRunOutOfBudget: the same noisy count
// asked again and again (and rewritten so that no cache could tell) gets
// fresh noise each time, and the organisation's budget for the family
// runs out after budget/epsilon answers. What the attacker learns: the
// mean of 20 answers at epsilon 0.5, whose standard deviation is
// StdDev(2)/sqrt(20) ≈ 0.6 people — not the exact count, and the budget
// for every elderly-population dataset of the delta is gone for the year.
func TestInferenceRepeatedNoisyQueriesRunOutOfBudget(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	direct := newAdvDirect(t, dd)
	exact := direct.query(t, "SELECT count(*) FROM "+direct.src(advSHElderly)+" WHERE age >= 80")[0][0].(int64)
	conn := dd.analyst(t, "hangzhou")
	eps := policy.DefaultDefaultQueryEpsilon
	want := int(policy.DefaultParams().GetPrivacyBudget() / eps)
	var answers []int64
	for i := 0; ; i++ {
		sql := fmt.Sprintf("SELECT count(*) FROM %s WHERE age >= 80 AND age > %d", advSHElderly, -i)
		r, err := advQuery(testCtx(t), conn, elderlyPurpose, sql)
		if err != nil {
			if i != want {
				t.Fatalf("refused after %d answers, want %d: %v", i, want, err)
			}
			advRefused(t, conn, elderlyPurpose, sql, codes.ResourceExhausted, "privacy budget exhausted", "yrd.elderly-population.v1")
			break
		}
		if len(r.rows) != 1 {
			t.Fatalf("answer %d: %d rows", i, len(r.rows))
		}
		answers = append(answers, cell(r.rows[0].GetValues()[0]).(int64))
	}
	// The budget is per family: Nanjing's elderly dataset is refused too.
	advRefused(t, conn, elderlyPurpose, "SELECT count(*) FROM "+advNJElderly, codes.ResourceExhausted, "privacy budget exhausted")
	distinct := map[int64]bool{}
	var sum float64
	for _, a := range answers {
		distinct[a] = true
		sum += float64(a)
	}
	if len(distinct) < 3 {
		t.Fatalf("%d noisy answers took only %d values %v: the noise is not fresh", len(answers), len(distinct), answers)
	}
	t.Logf("exact %d; mean of %d noisy answers %.2f (off by %.2f)", exact, len(answers), sum/float64(len(answers)), math.Abs(sum/float64(len(answers))-float64(exact)))
}

// TestInferenceSensitiveAggregatesNeedAGrant: sums and averages of a
// SENSITIVE column (care_level, health-derived) on GENERAL data are
// refused without a grant that allows personal data, also when the column
// is only filtered or grouped on; under such a grant they are answered
// with noise, never exactly.
func TestInferenceSensitiveAggregatesNeedAGrant(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	conn := dd.analyst(t, "hangzhou")
	for _, sql := range []string{
		"SELECT district, sum(care_level) FROM " + advSHElderly + " GROUP BY district",
		"SELECT district, avg(care_level) FROM " + advSHElderly + " GROUP BY district",
		"SELECT care_level, count(*) FROM " + advSHElderly + " GROUP BY care_level",
		"SELECT count(*) FROM " + advSHElderly + " WHERE care_level >= 5",
	} {
		advRefused(t, conn, elderlyPurpose, sql, codes.PermissionDenied, policy.RuleSensitiveGrant)
	}
	advGrantOf(t, dd, conn, &yrdv1.RequestGrantRequest{DatasetId: advSHElderly, Purpose: elderlyPurpose,
		ResultForm: yrdv1.ResultForm_RESULT_FORM_ROWS, AllowPersonal: true})
	r, rc := advOK(t, conn, elderlyPurpose, "SELECT district, sum(care_level) FROM "+advSHElderly+" GROUP BY district")
	if len(r.rows) == 0 || rc.GetNoise() == nil || !slices.Contains(rc.GetRuleIds(), policy.RuleNoise) {
		t.Fatalf("under a personal grant: %d rows, noise %v, rules %v; want noisy sums", len(r.rows), rc.GetNoise(), rc.GetRuleIds())
	}
}

// TestInferenceQuasiIdentifiersAreGeneralisedNotTokenised: in rows, age
// (a quasi-identifier with 5-year bands) shows only its band, equal for
// everyone in it, and gender (a quasi-identifier without a
// generalisation) is left out of SELECT * and refused when named: no
// token per value that could be counted or decoded by its frequencies.
func TestInferenceQuasiIdentifiersAreGeneralisedNotTokenised(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	direct := newAdvDirect(t, dd)
	conn := dd.analyst(t, "hangzhou")
	r, _ := advOK(t, conn, elderlyPurpose, "SELECT * FROM "+advSHElderly)
	ageCol := -1
	for i, c := range r.header.GetColumns() {
		switch c.GetName() {
		case "gender":
			t.Fatalf("gender is in the rows as %v", c.GetTreatment())
		case "age":
			ageCol = i
			if c.GetTreatment() != yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED {
				t.Fatalf("age is %v", c.GetTreatment())
			}
		}
	}
	bands := map[int64]int{}
	for _, row := range r.rows {
		if v, ok := cell(row.GetValues()[ageCol]).(int64); ok {
			if v%5 != 0 {
				t.Fatalf("age %d is not a 5-year band", v)
			}
			bands[v]++
		}
	}
	want := map[int64]int{}
	for _, row := range direct.query(t, "SELECT CAST(floor(age / 5) * 5 AS BIGINT), count(*) FROM "+direct.src(advSHElderly)+" WHERE age IS NOT NULL GROUP BY 1") {
		want[row[0].(int64)] = int(row[1].(int64))
	}
	if fmt.Sprint(bands) != fmt.Sprint(want) {
		t.Fatalf("bands %v, want %v", bands, want)
	}
	advRefused(t, conn, elderlyPurpose, "SELECT district, gender FROM "+advSHElderly, codes.InvalidArgument, `"gender" is withheld`)
}

// TestInferenceExplainShowsNoiseBeforeSpending: --explain of a noisy
// aggregate shows each measured quantity's share of epsilon, its expected
// error and the budget left, and spends nothing: the next real query
// still sees the whole budget.
func TestInferenceExplainShowsNoiseBeforeSpending(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	conn := dd.analyst(t, "hangzhou")
	const sql = "SELECT district, count(*), avg(age) FROM " + advSHElderly + " GROUP BY district"
	budget := policy.DefaultParams().GetPrivacyBudget()
	for range 2 {
		ex, err := runQuery(testCtx(t), conn, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sql}, Purpose: elderlyPurpose, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		nz := ex.header.GetPlans()[0].GetNoise()
		eps := policy.DefaultDefaultQueryEpsilon
		if nz.GetEpsilon() != eps || nz.GetBudget() != budget || nz.GetBudgetRemaining() != budget || nz.GetBudgetFamily() != "yrd.elderly-population.v1" {
			t.Fatalf("explain noise %v; want epsilon %v and the whole budget of %v left", nz, eps, budget)
		}
		// count(*), sum(age) and count(age): three quantities share epsilon.
		var got []string
		for _, m := range nz.GetMeasurements() {
			got = append(got, m.GetAggregate())
			if math.Abs(m.GetEpsilon()-eps/3) > 1e-12 || !(m.GetExpectedError() > 0) || !(m.GetStdDev() >= m.GetExpectedError()) {
				t.Fatalf("measurement %v", m)
			}
			if m.GetAggregate() == "sum(age)" && m.GetSumBound() != 120 {
				t.Fatalf("sum(age) clamps at %v, want the column's bound 120", m.GetSumBound())
			}
		}
		if slices.Sort(got); !slices.Equal(got, []string{"count(*)", "count(age)", "sum(age)"}) {
			t.Fatalf("measured %v", got)
		}
	}
	_, rc := advOK(t, conn, elderlyPurpose, sql)
	if left := rc.GetNoise().GetBudgetRemaining(); left != budget-policy.DefaultDefaultQueryEpsilon {
		t.Fatalf("after two explains and one query %v left, want %v", left, budget-policy.DefaultDefaultQueryEpsilon)
	}
}

// TestInferenceDifferencingOnImportantDataInPostgreSQL: the differencing
// pair of TestAdversarialDifferencingOnImportantData (all visits by
// department, then all but one patient's only visit) against Nanjing's
// IMPORTANT hospital visits kept in a PostgreSQL table (no unique person
// key, so the engine's distinct path): the second answer holds the
// shifted department back, and every answer is noised.
func TestInferenceDifferencingOnImportantDataInPostgreSQL(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("PostgreSQL test server: %v", err)
	}
	t.Cleanup(pg.Stop)
	var ds *yrdv1.Dataset
	dd := startAdvDelta(t, deltaOptions{
		adjust: func(d *yrdv1.Dataset) {
			if d.GetId() == advHealth {
				ds = d
			}
		},
		configure: func(i int, cfg *node.Config) {
			cfg.Data.Files = slices.DeleteFunc(cfg.Data.Files, func(s connector.Source) bool {
				if s.DatasetID == advHealth {
					loadTable(t, pg.DSN, ds, "visits", s.Paths[0])
					cfg.Data.Postgres = &node.PostgresData{DSN: pg.DSN, Tables: []connector.PGTable{{DatasetID: advHealth, Schema: "city_data", Table: "visits"}}}
					return true
				}
				return false
			})
		}})
	direct := newAdvDirect(t, dd)
	dept, visit := advLoneVisit(t, direct, direct.src(advHealth))
	analyst := dd.analyst(t, "shanghai")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)
	r1, rc1 := advOK(t, analyst, advHealthPurpose, "SELECT department, count(*) FROM "+advHealth+" GROUP BY department")
	r2, rc2 := advOK(t, analyst, advHealthPurpose, "SELECT department, count(*) FROM "+advHealth+" WHERE visit_id <> '"+visit+"' GROUP BY department")
	g1, g2 := advGroups(t, r1), advGroups(t, r2)
	if _, ok := g1[dept]; !ok || len(g2) != len(g1)-1 {
		t.Fatalf("first answer %v, second %v; want the second to hold back %s", g1, g2, dept)
	}
	if _, ok := g2[dept]; ok || !strings.Contains(r2.header.GetPlans()[0].GetPlan(), `"city_data"."visits"`) {
		t.Fatalf("%s released from %s", dept, r2.header.GetPlans()[0].GetPlan())
	}
	if rc1.GetNoise() == nil || rc2.GetNoise() == nil || !slices.Contains(rc2.GetRuleIds(), policy.RuleDifference) {
		t.Fatalf("receipts %v / %v; want noise on both and %s on the second", rc1, rc2, policy.RuleDifference)
	}
}
