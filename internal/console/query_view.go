package console

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// What the query page draws from an outcome. Enum values become message
// keys (query.status.ok, query.effect.allow_rows, ...) so that both
// languages name them; reasons and plans are shown as the node said them.

// explainView is each city's decision and plan before anything is read:
// what `yrdnode query --explain` prints.
type explainView struct {
	LevelKey, LevelClass string
	Cities               []explainCity
}

// explainCity is one owner's decision, or why it gave none.
type explainCity struct {
	City, Name, DatasetID string
	HasPlan               bool
	Status, StatusKey     string // without a plan: how the city's part ended
	Reason                string
	Node                  string
	Effect, EffectKey     string // Effect: the API's word, for tests and styling
	Deny                  bool
	Decision              *yrdv1.Decision
	Rules                 string
	LevelKey              string
	Columns               []columnView
	Noise                 *yrdv1.NoisePlan
	Plan                  string
}

// columnView is a result column with how the owner treats it.
type columnView struct {
	Name, Type, TreatmentKey string
}

// buildExplain pairs each city of the trailer with its plan in the
// header, as the CLI does, then adds plans no city of the trailer names.
func buildExplain(o *queryOutcome, lang string) *explainView {
	v := &explainView{LevelKey: levelKey(o.header.GetDerivedLevel()), LevelClass: levelClass(o.header.GetDerivedLevel())}
	shown := map[*yrdv1.CityPlan]bool{}
	for _, c := range o.trailer.GetCities() {
		var plan *yrdv1.CityPlan
		for _, p := range o.header.GetPlans() {
			if !shown[p] && p.GetCity() == c.GetCity() && p.GetDatasetId() == c.GetDatasetId() {
				plan = p
				break
			}
		}
		if plan == nil {
			v.Cities = append(v.Cities, explainCity{City: c.GetCity(), Name: cityName(c.GetCity(), lang), DatasetID: c.GetDatasetId(),
				Status: statusWord(c.GetStatus()), StatusKey: statusKey(c.GetStatus()), Reason: cityReason(c)})
			continue
		}
		shown[plan] = true
		v.Cities = append(v.Cities, planView(plan, lang))
	}
	for _, p := range o.header.GetPlans() {
		if !shown[p] {
			v.Cities = append(v.Cities, planView(p, lang))
		}
	}
	return v
}

func planView(p *yrdv1.CityPlan, lang string) explainCity {
	d := p.GetDecision()
	e := explainCity{City: p.GetCity(), Name: cityName(p.GetCity(), lang), DatasetID: p.GetDatasetId(), HasPlan: true,
		Node: p.GetNode(), Effect: effectWord(d.GetEffect()), EffectKey: effectKey(d.GetEffect()), Deny: d.GetEffect() == yrdv1.Effect_EFFECT_DENY, Decision: d,
		Rules: strings.Join(d.GetRuleIds(), ", "), LevelKey: levelKey(d.GetDerivedLevel()), Noise: p.GetNoise(),
		Plan: strings.TrimSpace(p.GetPlan())}
	for _, c := range d.GetColumns() {
		e.Columns = append(e.Columns, columnView{Name: c.GetColumn(), TreatmentKey: treatmentKey(c.GetTreatment())})
	}
	return e
}

// resultView is a run's result: its rows (the first shownRows), each
// city's part and each receipt's verification.
type resultView struct {
	Columns              []columnView
	NumCols              []bool // right-aligned: BIGINT and DOUBLE
	Rows                 [][]cell
	Total                uint64
	Shown                int
	More, Kept           bool
	LevelKey, LevelClass string
	Partial, Truncated   bool
	NothingBack          bool // no city's part came back
	Cities               []cityView
	Receipts             []receiptView
	HasReceipts          bool
	DigestProblem        string
}

// cityView is one owner's part of a result.
type cityView struct {
	City, Name, DatasetID string
	Status, StatusKey     string // Status: the CLI's word, for tests and styling
	OK                    bool
	Reason                string
	Rows                  uint64
	Truncated             bool
	Suppressed            []*yrdv1.Suppression
	Noise                 *yrdv1.NoiseApplied
}

// receiptView is one city's receipt as verifying it found it.
type receiptView struct {
	City, Name, DatasetID string
	Has, OK               bool
	Problem, Reason       string
	Receipt               *yrdv1.ResultReceipt
	EffectKey             string
}

func buildResult(o *queryOutcome, lang string) *resultView {
	h, t := o.header, o.trailer
	v := &resultView{Rows: o.rows[:min(len(o.rows), shownRows)], Total: o.total, Kept: o.kept,
		LevelKey: levelKey(h.GetDerivedLevel()), LevelClass: levelClass(h.GetDerivedLevel()),
		Partial: t.GetPartial(), Truncated: t.GetTruncated(), DigestProblem: o.digestProblem}
	v.Shown = len(v.Rows)
	v.More = v.Total > uint64(v.Shown)
	for _, c := range h.GetColumns() {
		v.Columns = append(v.Columns, columnView{Name: c.GetName(), Type: c.GetType(), TreatmentKey: treatmentKey(c.GetTreatment())})
		k := resultcodec.KindOfType(c.GetType())
		v.NumCols = append(v.NumCols, k == resultcodec.Ints || k == resultcodec.Doubles)
	}
	ok := 0
	for _, c := range t.GetCities() {
		cv := cityView{City: c.GetCity(), Name: cityName(c.GetCity(), lang), DatasetID: c.GetDatasetId(),
			Status: statusWord(c.GetStatus()), StatusKey: statusKey(c.GetStatus()), OK: c.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK,
			Rows: c.GetRows(), Truncated: c.GetTruncated(), Suppressed: c.GetSuppressed(), Noise: c.GetReceipt().GetNoise()}
		if !cv.OK {
			cv.Reason = cityReason(c)
		} else {
			ok++
		}
		v.Cities = append(v.Cities, cv)
	}
	v.NothingBack = ok == 0 && len(t.GetCities()) > 0
	for _, ch := range o.checks {
		c := ch.result
		rv := receiptView{City: c.GetCity(), Name: cityName(c.GetCity(), lang), DatasetID: c.GetDatasetId(),
			Has: c.GetReceipt() != nil, OK: c.GetReceipt() != nil && ch.problem == "", Problem: ch.problem,
			Reason: cityReason(c), Receipt: c.GetReceipt(), EffectKey: effectKey(c.GetReceipt().GetEffect())}
		v.HasReceipts = v.HasReceipts || rv.Has
		v.Receipts = append(v.Receipts, rv)
	}
	return v
}

func cityReason(c *yrdv1.CityResult) string {
	if c.GetReason() != "" {
		return c.GetReason()
	}
	return statusWord(c.GetStatus())
}

// enumWord is an enum value's name without its prefix, in lower case:
// CITY_STATUS_NOT_SERVED → not_served.
func statusWord(s yrdv1.CityStatus) string { return enumWord(s.String(), "CITY_STATUS_") }
func statusKey(s yrdv1.CityStatus) string  { return "query.status." + statusWord(s) }
func effectWord(e yrdv1.Effect) string     { return enumWord(e.String(), "EFFECT_") }
func effectKey(e yrdv1.Effect) string      { return "query.effect." + effectWord(e) }
func levelKey(l yrdv1.ClassificationLevel) string {
	return "query.level." + levelClass(l)
}
func levelClass(l yrdv1.ClassificationLevel) string {
	if l == yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED {
		return "unspecified" // no input came back to derive a level from
	}
	return enumWord(l.String(), "LEVEL_")
}
func treatmentKey(t yrdv1.ColumnTreatment) string {
	return "query.treatment." + enumWord(t.String(), "COLUMN_TREATMENT_")
}

// sqlErrorView is the SQL of a refused query with the line and column
// the node named marked: what the CLI shows with a caret.
type sqlErrorView struct {
	Line, Column int
	Lines        []sqlLine
}

// sqlLine is one line of the SQL; on the offending line, Mark is the
// character at the column (a space past the line's end).
type sqlLine struct {
	No                  int
	Before, Mark, After string
	Err                 bool
}

// sqlError marks the place an InvalidArgument answer names in sql, or
// returns nil when it names none (or one outside the text).
func sqlError(sql string, st *status.Status) *sqlErrorView {
	if st.Code() != codes.InvalidArgument {
		return nil
	}
	line, col, ok := sqlq.ErrorPosition(st.Message())
	if !ok {
		return nil
	}
	lines := strings.Split(sql, "\n")
	if line < 1 || line > len(lines) || col < 1 {
		return nil
	}
	v := &sqlErrorView{Line: line, Column: col}
	for i, text := range lines {
		text = strings.TrimRight(text, "\r")
		l := sqlLine{No: i + 1, Before: text}
		if i+1 == line {
			// Columns count runes, a tab being one, as the parser does.
			runes := []rune(text)
			if col > len(runes)+1 {
				return nil
			}
			l.Err, l.Before, l.Mark = true, string(runes[:col-1]), " "
			if col <= len(runes) {
				l.Mark, l.After = string(runes[col-1]), string(runes[col:])
			}
		}
		v.Lines = append(v.Lines, l)
	}
	return v
}
