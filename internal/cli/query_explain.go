package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// explainWriter prints each city's decision and plan, for people or as
// JSON Lines of the header and trailer messages.
type explainWriter struct {
	w    *bufio.Writer
	json bool
	h    *yrdv1.ResultHeader
}

func (e *explainWriter) header(h *yrdv1.ResultHeader) error { e.h = h; return nil }

func (e *explainWriter) row([]*yrdv1.Value) error {
	return errors.New("the node sent rows for an explain request")
}

func (e *explainWriter) flush() error { return nil }

func (e *explainWriter) finish(t *yrdv1.ResultTrailer) error {
	if e.h == nil {
		e.h = &yrdv1.ResultHeader{}
	}
	if e.json {
		line := protojson.MarshalOptions{UseProtoNames: true}
		for _, m := range []proto.Message{
			&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: e.h}},
			&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: t}},
		} {
			data, err := line.Marshal(m)
			if err != nil {
				return err
			}
			e.w.Write(append(data, '\n'))
		}
		return nil
	}
	w := e.w
	fmt.Fprintf(w, "derived level %s\n", levelName(e.h.GetDerivedLevel()))
	shown := map[*yrdv1.CityPlan]bool{}
	for _, c := range t.GetCities() {
		var plan *yrdv1.CityPlan
		for _, p := range e.h.GetPlans() {
			if !shown[p] && p.GetCity() == c.GetCity() && p.GetDatasetId() == c.GetDatasetId() {
				plan = p
				break
			}
		}
		fmt.Fprintf(w, "\n%s: %s\n", c.GetCity(), c.GetDatasetId())
		if plan == nil {
			fmt.Fprintf(w, "  %s: %s\n", cityStatusName(c.GetStatus()), oneLineText(cityReason(c)))
			continue
		}
		shown[plan] = true
		explainPlan(w, plan)
	}
	for _, p := range e.h.GetPlans() {
		if !shown[p] {
			fmt.Fprintf(w, "\n%s: %s\n", p.GetCity(), p.GetDatasetId())
			explainPlan(w, p)
		}
	}
	return nil
}

func explainPlan(w io.Writer, p *yrdv1.CityPlan) {
	d := p.GetDecision()
	fmt.Fprintf(w, "  decision: %s (policy v%d; rules %s)\n", effectName(d.GetEffect()), d.GetPolicyVersion(), strings.Join(d.GetRuleIds(), ", "))
	if d.GetReason() != "" {
		fmt.Fprintf(w, "  reason:   %s\n", oneLineText(d.GetReason()))
	}
	var notes []string
	if d.GetMinGroupSize() > 0 {
		notes = append(notes, fmt.Sprintf("groups of at least %d", d.GetMinGroupSize()))
	}
	if d.GetRowCap() > 0 {
		notes = append(notes, fmt.Sprintf("at most %d rows", d.GetRowCap()))
	}
	if d.GetGrantId() != "" {
		notes = append(notes, "grant "+d.GetGrantId())
	}
	if d.GetCrossBorder() {
		notes = append(notes, "cross-border")
	}
	notes = append(notes, "level "+levelName(d.GetDerivedLevel()), "node "+p.GetNode())
	fmt.Fprintf(w, "  limits:   %s\n", strings.Join(notes, "; "))
	if len(d.GetColumns()) > 0 {
		var rows [][]string
		for _, c := range d.GetColumns() {
			rows = append(rows, []string{"  " + c.GetColumn(), strings.ToLower(trimEnum(c.GetTreatment().String(), "COLUMN_TREATMENT_"))})
		}
		table(w, []string{"  COLUMN", "TREATMENT"}, rows)
	}
	explainNoise(w, p.GetNoise())
	fmt.Fprintln(w, "  plan:")
	for _, l := range strings.Split(strings.TrimSpace(p.GetPlan()), "\n") {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

// explainNoise shows, before anything is spent, the noise an answer will
// carry and the budget it draws on.
func explainNoise(w io.Writer, n *yrdv1.NoisePlan) {
	if n == nil {
		return
	}
	fmt.Fprintf(w, "  noise:    %s, epsilon %g from %s's budget (%g of %g left this year)\n",
		n.GetMechanism(), n.GetEpsilon(), n.GetBudgetFamily(), n.GetBudgetRemaining(), n.GetBudget())
	var rows [][]string
	for _, m := range n.GetMeasurements() {
		bound := ""
		if m.GetSumBound() > 0 {
			bound = fmt.Sprintf("%g", m.GetSumBound())
		}
		rows = append(rows, []string{"  " + m.GetAggregate(), fmt.Sprintf("%g", m.GetEpsilon()), bound,
			fmt.Sprintf("%.3g", m.GetExpectedError()), fmt.Sprintf("%.3g", m.GetStdDev())})
	}
	table(w, []string{"  MEASURES", "EPSILON", "CLAMP", "EXPECTED ERROR", "STD DEV"}, rows)
}
