package node_test

// Adversarial tests of what an allowed requester can infer: differencing,
// identifiers in filters, min and max, groups below k, order and limit
// tricks (see adversarial_helpers_test.go).

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestAdversarialDifferencingOnImportantData: an analyst with an approved
// aggregates grant on IMPORTANT hospital visits tries to learn about one
// person by differencing two aggregates. Filtering on the direct
// identifier (patient_id <> 'X' and its disguises) is refused with rule
// identifier.direct and returns nothing. A pair of allowed queries whose
// filters differ by exactly one individual (one visit excluded by its
// non-identifying visit_id) on a group of more than k individuals, so that
// both pass the k floor: the second answer holds that group back (rule
// aggregate.difference, on the receipt, the trailer's summary and the
// audit record, which never name the group) and releases every other
// group; asked the other way round, the same. Every answer is noised
// (IMPORTANT data always is) and spends the organisation's budget for the
// dataset: two identical queries give different counts, and once the
// budget is spent the next query is ResourceExhausted with nothing
// returned. What the attacker learns: that some group was held back,
// never a count of k-1 or fewer people, and no exact count at all.
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestAdversarialDifferencingOnImportantData(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	direct := newAdvDirect(t, dd)
	hv := direct.src(advHealth)
	analyst := dd.analyst(t, "hangzhou")
	grant := advGrant(t, dd, analyst, advHealth, advHealthPurpose)

	// Differencing on the direct identifier, in every disguise the
	// grammar allows: refused before any data is read.
	someone := direct.query(t, "SELECT min(patient_id) FROM "+hv)[0][0].(string)
	for _, where := range []string{
		"patient_id <> '" + someone + "'",
		"NOT (patient_id = '" + someone + "')",
		"patient_id NOT IN ('" + someone + "')",
		"age >= 0 AND patient_id > '" + someone + "'",
		"age < 200 OR patient_id IS NULL",
	} {
		advRefused(t, analyst, advHealthPurpose, "SELECT department, count(*) FROM "+advHealth+" WHERE "+where+" GROUP BY department",
			codes.PermissionDenied, policy.RuleIdentifierDirect, "patient_id")
	}

	// A department with more than k patients, one of whom has exactly one
	// visit there: excluding that visit removes exactly one individual.
	dept, visit := advLoneVisit(t, direct, hv)
	all := "SELECT department, count(*) AS visits FROM " + advHealth + " GROUP BY department"
	less := "SELECT department, count(*) AS visits FROM " + advHealth + " WHERE visit_id <> '" + visit + "' GROUP BY department"
	_, exactInd := direct.groups(t, "SELECT department, count(*), count(DISTINCT patient_id) FROM "+hv+" GROUP BY department")
	released := atLeast(exactInd, exactInd, advK)
	spent := 0.0
	for i, pair := range [][2]string{{all, less}, {less, all}} {
		// A fresh organisation per order: the difference check is kept per
		// requesting organisation and dataset.
		conn := analyst
		if i == 1 {
			conn = advAnalyst(t, dd, "hangzhou", "hangzhou-other-lab")
			advGrant(t, dd, conn, advHealth, advHealthPurpose)
		}
		r1, _ := advOK(t, conn, advHealthPurpose, pair[0])
		if got := advGroups(t, r1); len(got) != len(released) {
			t.Fatalf("order %d: first answer has groups %v, want those of at least %d individuals %v", i, got, advK, released)
		}
		r2, rc2 := advOK(t, conn, advHealthPurpose, pair[1])
		got2 := advGroups(t, r2)
		if _, ok := got2[dept]; ok || len(got2) != len(released)-1 {
			t.Fatalf("order %d: the second answer released %v; want every group but %s (%d individuals, one fewer or more than before)", i, got2, dept, exactInd[dept])
		}
		sup := r2.trailer.GetCities()[0].GetSuppressed()
		if len(sup) != 1 || sup[0].GetRuleId() != policy.RuleDifference || sup[0].GetGroups() != 1 || strings.Contains(sup[0].GetReason(), dept) {
			t.Fatalf("order %d: suppression summary %v; want one group held back by %s, unnamed", i, sup, policy.RuleDifference)
		}
		if !slices.Contains(rc2.GetRuleIds(), policy.RuleDifference) || rc2.GetGrantId() == "" || rc2.GetNoise().GetEpsilon() != policy.DefaultDefaultQueryEpsilon {
			t.Fatalf("order %d: receipt %v; want rule %s, the grant and noise of epsilon %v", i, rc2, policy.RuleDifference, policy.DefaultDefaultQueryEpsilon)
		}
		if i == 0 {
			spent += 2 * policy.DefaultDefaultQueryEpsilon
			if left := rc2.GetNoise().GetBudgetRemaining(); left != policy.DefaultParams().GetPrivacyBudget()-spent || rc2.GetNoise().GetBudgetFamily() != advHealth {
				t.Fatalf("receipt noise %v; want %v left of the budget for %s", rc2.GetNoise(), policy.DefaultParams().GetPrivacyBudget()-spent, advHealth)
			}
		}
	}
	held := false
	for _, rec := range advAudit(t, dd, "nanjing", advHealth) {
		if rec.GetRows() > 0 && slices.Contains(rec.GetRuleIds(), policy.RuleDifference) && strings.Contains(rec.GetDetail(), "held back 1 groups") {
			held = true
		}
	}
	if !held {
		t.Fatalf("no release record on nanjing's audit trail says a group was held back by %s", policy.RuleDifference)
	}

	// Noise: two identical queries give different counts; the budget runs
	// out and the next query returns nothing.
	advUpdate(t, dd, advHealth, func(d *yrdv1.Dataset) { d.NoiseEpsilon = 1 })
	const noisyQ = "SELECT department, count(*) FROM " + advHealth + " GROUP BY department"
	var answers []map[string]int64
	for budget := policy.DefaultParams().GetPrivacyBudget() - spent; budget >= 1; budget-- {
		r, rc := advOK(t, analyst, advHealthPurpose, noisyQ)
		if nz := rc.GetNoise(); nz.GetEpsilon() != 1 || nz.GetBudgetRemaining() != budget-1 || rc.GetGrantId() != grant {
			t.Fatalf("receipt noise %v, grant %s; want epsilon 1, %v left, grant %s", nz, rc.GetGrantId(), budget-1, grant)
		}
		answers = append(answers, advGroups(t, r))
	}
	if len(answers) < 2 || sameGroups(answers[0], answers[1]) {
		t.Fatalf("identical noisy queries gave the same counts %v", answers)
	}
	advRefused(t, analyst, advHealthPurpose, noisyQ, codes.ResourceExhausted, "privacy budget exhausted", "hangzhou-analytics", advHealth)
	advRefused(t, analyst, advHealthPurpose, "SELECT count(*) FROM "+advHealth, codes.ResourceExhausted, "privacy budget exhausted")
	// Both refusals are on the owner's record under the budget rule.
	recs := withRule(t, dd.Cluster, dd.Index("nanjing"), node.RuleBudgetExhausted)
	if len(recs) != 2 {
		t.Fatalf("budget refusals on Nanjing's record: %v, want 2", recs)
	}
	for _, rec := range recs {
		if rec.GetRequester().GetOrg() != "hangzhou-analytics" || rec.GetDatasetId() != advHealth || rec.GetDecision() != yrdv1.Effect_EFFECT_DENY {
			t.Fatalf("budget refusal %v", rec)
		}
	}
}

// advLoneVisit finds a department with more than k patients and, in it, a
// patient with exactly one visit there: the department and that visit.
func advLoneVisit(t *testing.T, direct *advDirect, hv string) (dept, visit string) {
	t.Helper()
	found := direct.query(t, `SELECT department, min(visit_id) FROM (
		SELECT department, patient_id, min(visit_id) AS visit_id FROM `+hv+` WHERE department IS NOT NULL
		GROUP BY department, patient_id HAVING count(*) = 1) GROUP BY department
		HAVING department IN (SELECT department FROM `+hv+` GROUP BY department HAVING count(DISTINCT patient_id) > ?)
		ORDER BY department LIMIT 1`, advK)
	if len(found) == 0 {
		t.Fatalf("the data has no department of more than %d patients with a one-visit patient", advK)
	}
	return found[0][0].(string), found[0][1].(string)
}

// TestAdversarialDirectIdentifierNeverFiltersGroupsOrOrders: filtering,
// grouping or ordering on a direct identifier, in rows or aggregates, is
// refused with PermissionDenied naming rule identifier.direct and the
// column, on GENERAL (person_id) and on IMPORTANT data under an approved
// grant (patient_id), forwarded from another city; nothing is returned and
// every refusal is on the owner's audit record as a denial.
func TestAdversarialDirectIdentifierNeverFiltersGroupsOrOrders(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{})
	direct := newAdvDirect(t, dd)
	analyst := dd.analyst(t, "hangzhou")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)
	for _, c := range []struct {
		id, purpose, key string
		queries          []string
	}{
		{advSHElderly, elderlyPurpose, "person_id", []string{
			"SELECT district, count(*) FROM %[1]s WHERE %[2]s = '%[3]s' GROUP BY district",
			"SELECT district, age FROM %[1]s WHERE %[2]s <> '%[3]s'",
			"SELECT district FROM %[1]s WHERE %[2]s IN ('%[3]s')",
			"SELECT count(*) FROM %[1]s WHERE %[2]s BETWEEN '%[3]s' AND '%[3]s'",
			"SELECT %[2]s, count(*) FROM %[1]s GROUP BY %[2]s",
			"SELECT %[2]s, district FROM %[1]s ORDER BY %[2]s LIMIT 1",
			"SELECT district FROM %[1]s ORDER BY %[2]s DESC LIMIT 1",
		}},
		{advHealth, advHealthPurpose, "patient_id", []string{
			"SELECT department, count(*) FROM %[1]s WHERE %[2]s = '%[3]s' GROUP BY department",
			"SELECT count(*) FROM %[1]s WHERE NOT (%[2]s <> '%[3]s')",
			"SELECT sum(cost) FROM %[1]s WHERE %[2]s >= '%[3]s' AND age > 0",
			"SELECT %[2]s, count(*) FROM %[1]s GROUP BY %[2]s",
			"SELECT department, %[2]s, count(*) FROM %[1]s GROUP BY department, %[2]s ORDER BY 3 LIMIT 1",
			"SELECT count(DISTINCT department) FROM %[1]s WHERE %[2]s IS NOT NULL",
		}},
	} {
		someone := direct.query(t, "SELECT min("+c.key+") FROM "+direct.src(c.id))[0][0].(string)
		for _, q := range c.queries {
			advRefused(t, analyst, c.purpose, fmt.Sprintf(q, c.id, c.key, someone), codes.PermissionDenied, policy.RuleIdentifierDirect, c.key)
		}
		owner := dd.datasets[c.id].GetOwnerCity()
		denied := 0
		for _, rec := range advAudit(t, dd, owner, c.id) {
			if slices.Contains(rec.GetRuleIds(), policy.RuleIdentifierDirect) {
				if rec.GetDecision() != yrdv1.Effect_EFFECT_DENY || rec.GetRequester().GetCity() != "hangzhou" || rec.GetRows() != 0 {
					t.Fatalf("%s: audit record %v", c.id, rec)
				}
				denied++
			}
		}
		if denied != len(c.queries) {
			t.Fatalf("%s: %d denials on the owner's record, want %d", c.id, denied, len(c.queries))
		}
	}
}

// TestAdversarialMinMaxOfPersonalColumnsRefused: min or max would release
// one person's value, so over a PERSONAL or SENSITIVE column it is refused
// (rule aggregate.no-minmax-personal, naming the call) on GENERAL and on
// IMPORTANT data, grouped or not; min/max over a non-personal column is
// allowed where the owner releases exact aggregates (min and max carry no
// noise) and equals the direct computation over groups of at least k.
func TestAdversarialMinMaxOfPersonalColumnsRefused(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{adjust: func(d *yrdv1.Dataset) {
		if d.GetId() == advSHElderly {
			d.ExactAggregates = true
		}
	}})
	direct := newAdvDirect(t, dd)
	analyst := dd.analyst(t, "nanjing")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)
	for _, c := range []struct{ purpose, sql, call string }{
		{elderlyPurpose, "SELECT district, min(age) FROM " + advSHElderly + " GROUP BY district", "min(age)"},
		{elderlyPurpose, "SELECT max(care_level) FROM " + advSHElderly, "max(care_level)"},
		{elderlyPurpose, "SELECT gender, max(age), count(*) FROM " + advSHElderly + " GROUP BY gender", "max(age)"},
		{elderlyPurpose, "SELECT district, max(person_id) FROM " + advSHElderly + " GROUP BY district", "max(person_id)"},
		{advHealthPurpose, "SELECT department, max(cost) FROM " + advHealth + " GROUP BY department", "max(cost)"},
		{advHealthPurpose, "SELECT min(visit_date) FROM " + advHealth + " WHERE department = '内科'", "min(visit_date)"},
		{advHealthPurpose, "SELECT department, min(diagnosis) FROM " + advHealth + " GROUP BY department", "min(diagnosis)"},
	} {
		advRefused(t, analyst, c.purpose, c.sql, codes.PermissionDenied, policy.RuleNoMinMaxPersonal, c.call)
	}

	// district is not personal information: its min and max per gender
	// are released, over groups of at least k only.
	r, _ := advOK(t, analyst, elderlyPurpose, "SELECT gender, min(district), max(district) FROM "+advSHElderly+" GROUP BY gender")
	want := map[string][2]string{}
	for _, row := range direct.query(t, "SELECT gender, min(district), max(district) FROM "+direct.src(advSHElderly)+
		" GROUP BY gender HAVING count(DISTINCT person_id) >= ?", advK) {
		want[advKey(row[0])] = [2]string{row[1].(string), row[2].(string)}
	}
	if len(r.rows) != len(want) {
		t.Fatalf("%d groups, want %d", len(r.rows), len(want))
	}
	for _, row := range r.rows {
		v := row.GetValues()
		if w := want[advKey(cell(v[0]))]; cell(v[1]) != w[0] || cell(v[2]) != w[1] {
			t.Fatalf("gender %v: min/max %v %v, want %v", cell(v[0]), cell(v[1]), cell(v[2]), w)
		}
	}
}

// TestAdversarialFilterShrinkingGroupBelowKIsSuppressed: an allowed
// aggregate whose filter leaves some groups with fewer than k individuals
// (checked directly on the CSV: they exist, with 1 to k-1 individuals)
// returns exactly the groups of at least k and none of the shrunk ones.
// A dataset's min_group_size raises k: groups that the default k would
// release but the dataset's k does not are absent, and the plan and the
// receipt carry the dataset's k. Rows cannot be filtered on a column the
// result withholds or pseudonymises (general.hidden-predicate), while a
// filter on a non-personal column the rows do not show gives exactly the
// matching rows.
func TestAdversarialFilterShrinkingGroupBelowKIsSuppressed(t *testing.T) {
	const datasetK = 40
	dd := startAdvDelta(t, deltaOptions{noiseOff: true, adjust: func(d *yrdv1.Dataset) {
		if d.GetId() == advHZElderly {
			d.MinGroupSize = datasetK
		}
	}})
	direct := newAdvDirect(t, dd)
	for _, c := range []struct {
		id, from string
		k        int64
		lo       int64 // groups with lo ≤ individuals < k must exist and be hidden
	}{
		{advSHElderly, "hangzhou", advK, 1},
		{advHZElderly, "shanghai", datasetK, advK},
	} {
		src := direct.src(c.id)
		const q = "SELECT district, count(*), count(DISTINCT person_id) FROM %s WHERE age >= ? GROUP BY district"
		// The lowest age floor that leaves a hidden group and a shown one.
		var floor int64 = -1
		var rows, ind map[string]int64
		for a := int64(60); a < 110 && floor < 0; a++ {
			rows, ind = direct.groups(t, fmt.Sprintf(q, src), a)
			var hidden, shown bool
			for _, n := range ind {
				hidden = hidden || (n >= c.lo && n < c.k)
				shown = shown || n >= c.k
			}
			if hidden && shown {
				floor = a
			}
		}
		if floor < 0 {
			t.Fatalf("%s: no age floor leaves groups of %d to %d individuals next to larger ones", c.id, c.lo, c.k-1)
		}
		r, rc := advOK(t, dd.analyst(t, c.from), elderlyPurpose,
			fmt.Sprintf("SELECT district, count(*) AS n FROM %s WHERE age >= %d GROUP BY district ORDER BY n", c.id, floor))
		got, want := advGroups(t, r), atLeast(rows, ind, c.k)
		if !sameGroups(got, want) {
			t.Fatalf("%s, age >= %d: released %v, want exactly the groups of at least %d individuals %v (all: %v)", c.id, floor, got, c.k, want, ind)
		}
		for g, n := range ind {
			if _, ok := got[g]; ok && n < c.k {
				t.Fatalf("%s: group %s of %d individuals released", c.id, g, n)
			}
		}
		if rc.GetMinGroupSize() != uint32(c.k) || r.header.GetPlans()[0].GetDecision().GetMinGroupSize() != uint32(c.k) {
			t.Fatalf("%s: receipt k %d, plan k %d, want %d", c.id, rc.GetMinGroupSize(), r.header.GetPlans()[0].GetDecision().GetMinGroupSize(), c.k)
		}
	}

	analyst := dd.analyst(t, "nanjing")
	for _, sql := range []string{
		"SELECT district FROM " + advSHElderly + " WHERE care_level >= 5", // withheld
		"SELECT district FROM " + advSHElderly + " WHERE age > 95",        // pseudonymised
		"SELECT district, gender FROM " + advSHElderly + " WHERE gender = 'F' AND district = '浦东新区'",
	} {
		advRefused(t, analyst, elderlyPurpose, sql, codes.PermissionDenied, policy.RuleGeneralHiddenPredicate)
	}
	district := direct.query(t, "SELECT min(district) FROM "+direct.src(advSHElderly))[0][0].(string)
	want := direct.query(t, "SELECT count(*) FROM "+direct.src(advSHElderly)+" WHERE district = ?", district)[0][0].(int64)
	r, _ := advOK(t, analyst, elderlyPurpose, "SELECT age, living_alone FROM "+advSHElderly+" WHERE district = '"+district+"'")
	if int64(len(r.rows)) != want {
		t.Fatalf("rows in %s: %d, want %d", district, len(r.rows), want)
	}
	for _, col := range r.header.GetColumns() {
		if col.GetTreatment() == yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW {
			t.Fatalf("personal column %s left raw", col.GetName())
		}
	}
}

// TestAdversarialOrderLimitTricksOnImportantData: on IMPORTANT data (an
// approved aggregates grant) ORDER BY a count ascending with LIMIT 1 gives
// the smallest group of at least k individuals, never a smaller one that
// exists under k; OFFSET and HAVING are rejected by the parser with line
// and column (InvalidArgument); a row query, however limited, is refused
// with rule important.aggregates-only. Nothing is returned when refused.
func TestAdversarialOrderLimitTricksOnImportantData(t *testing.T) {
	dd := startAdvDelta(t, deltaOptions{noiseOff: true})
	direct := newAdvDirect(t, dd)
	hv := direct.src(advHealth)
	analyst := dd.analyst(t, "shanghai")
	advGrant(t, dd, analyst, advHealth, advHealthPurpose)

	const q = "SELECT department, count(*), count(DISTINCT patient_id) FROM %s WHERE age >= ? GROUP BY department"
	var floor int64 = -1
	var rows, ind map[string]int64
	for a := int64(0); a < 110 && floor < 0; a++ {
		rows, ind = direct.groups(t, fmt.Sprintf(q, hv), a)
		var under, over bool
		for _, n := range ind {
			under = under || n < advK
			over = over || n >= advK
		}
		if under && over {
			floor = a
		}
	}
	if floor < 0 {
		t.Fatal("no age floor leaves departments under and over k")
	}
	smallest, smallestAll := int64(-1), int64(-1)
	for g, n := range rows {
		if smallestAll < 0 || n < smallestAll {
			smallestAll = n
		}
		if ind[g] >= advK && (smallest < 0 || n < smallest) {
			smallest = n
		}
	}
	if smallestAll >= smallest {
		t.Fatalf("setup: no group under k is smaller than the smallest released one")
	}
	for _, order := range []string{"n", "2", "count(*)", "n ASC"} {
		r, rc := advOK(t, analyst, advHealthPurpose, fmt.Sprintf(
			"SELECT department, count(*) AS n FROM %s WHERE age >= %d GROUP BY department ORDER BY %s LIMIT 1", advHealth, floor, order))
		got := advGroups(t, r)
		if len(got) != 1 {
			t.Fatalf("ORDER BY %s LIMIT 1: %d rows", order, len(r.rows))
		}
		for g, n := range got {
			if n != smallest || rows[g] != n || ind[g] < advK {
				t.Fatalf("ORDER BY %s LIMIT 1: %s with %d visits (%d individuals), want the smallest group of at least %d individuals, %d visits",
					order, g, n, ind[g], advK, smallest)
			}
		}
		if rc.GetRows() != 1 || rc.GetIndividuals() < uint64(advK) {
			t.Fatalf("receipt: %d rows, %d individuals", rc.GetRows(), rc.GetIndividuals())
		}
	}

	for _, c := range []struct{ sql, want string }{
		{"SELECT department, count(*) FROM " + advHealth + " GROUP BY department ORDER BY 2 LIMIT 1 OFFSET 1", "OFFSET"},
		{"SELECT department, count(*) FROM " + advHealth + " GROUP BY department HAVING count(*) < 10", "HAVING"},
		{"SELECT department, count(*) FROM " + advHealth + " GROUP BY department ORDER BY 2 OFFSET 3", "OFFSET"},
	} {
		advRefused(t, analyst, advHealthPurpose, c.sql, codes.InvalidArgument, "line 1, column", c.want)
	}
	for _, sql := range []string{
		"SELECT department, age FROM " + advHealth + " WHERE age >= 90",
		"SELECT * FROM " + advHealth + " LIMIT 1",
		"SELECT visit_id FROM " + advHealth + " ORDER BY visit_id LIMIT 1",
	} {
		advRefused(t, analyst, advHealthPurpose, sql, codes.PermissionDenied, policy.RuleImportantAggregatesOnly)
	}
}
