package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// rowWriter prints a result in one output format.
type rowWriter interface {
	header(h *yrdv1.ResultHeader) error
	row(vals []*yrdv1.Value) error
	// flush hands what is printed so far on, after each batch.
	flush() error
	finish(t *yrdv1.ResultTrailer) error
}

// tableRows aligns up to tableBufferRows rows, then streams the rest.
type tableRows struct {
	w         *bufio.Writer
	names     []string
	buf       [][]string
	streaming bool
}

func (t *tableRows) header(h *yrdv1.ResultHeader) error {
	for _, c := range h.GetColumns() {
		t.names = append(t.names, c.GetName())
	}
	return nil
}

func (t *tableRows) row(vals []*yrdv1.Value) error {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = tableCell(v)
	}
	if t.streaming {
		_, err := fmt.Fprintln(t.w, strings.TrimRight(strings.Join(cells, "  "), " "))
		return err
	}
	t.buf = append(t.buf, cells)
	if len(t.buf) >= tableBufferRows {
		table(t.w, t.names, t.buf)
		t.buf, t.streaming = nil, true
	}
	return nil
}

func (t *tableRows) flush() error {
	if t.streaming {
		return t.w.Flush()
	}
	return nil
}

func (t *tableRows) finish(*yrdv1.ResultTrailer) error {
	if !t.streaming && len(t.names) > 0 {
		table(t.w, t.names, t.buf)
	}
	return nil
}

// tableCell is a value as people read it; control characters are quoted
// so that data cannot break the layout or drive the terminal.
func tableCell(v *yrdv1.Value) string {
	s, null := resultcodec.Text(v)
	if null {
		return "NULL"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

// jsonRows prints JSON Lines: one object per row, keys in column order.
type jsonRows struct {
	w    *bufio.Writer
	keys [][]byte // `{"name":` then `,"name":`
	line []byte
}

func (j *jsonRows) header(h *yrdv1.ResultHeader) error {
	for i, c := range h.GetColumns() {
		k := []byte{','}
		if i == 0 {
			k = []byte{'{'}
		}
		k = appendJSONText(k, c.GetName())
		j.keys = append(j.keys, append(k, ':'))
	}
	return nil
}

func (j *jsonRows) row(vals []*yrdv1.Value) error {
	b := j.line[:0]
	if len(vals) == 0 {
		b = append(b, '{')
	}
	for i, v := range vals {
		b = append(b, j.keys[i]...)
		b = appendJSONValue(b, v)
	}
	b = append(b, '}', '\n')
	j.line = b
	_, err := j.w.Write(b)
	return err
}

func (j *jsonRows) flush() error { return j.w.Flush() }

func (j *jsonRows) finish(*yrdv1.ResultTrailer) error { return nil }

func appendJSONValue(b []byte, v *yrdv1.Value) []byte {
	switch x := v.GetKind().(type) {
	case *yrdv1.Value_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *yrdv1.Value_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return appendJSONText(b, resultcodec.FormatDouble(x.DoubleValue)) // as protojson writes them
		}
		return append(b, resultcodec.FormatDouble(x.DoubleValue)...)
	case *yrdv1.Value_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case nil:
		return append(b, "null"...)
	}
	s, _ := resultcodec.Text(v)
	return appendJSONText(b, s)
}

// appendJSONText appends s as a JSON string, without HTML escaping.
func appendJSONText(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes; invalid UTF-8 becomes U+FFFD
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// csvRows prints RFC 4180 CSV with a header line; NULL is the empty field.
type csvRows struct {
	w   *csv.Writer
	rec []string
}

func (c *csvRows) header(h *yrdv1.ResultHeader) error {
	names := make([]string, len(h.GetColumns()))
	for i, col := range h.GetColumns() {
		names[i] = col.GetName()
	}
	c.w.UseCRLF = true
	return c.w.Write(names)
}

func (c *csvRows) row(vals []*yrdv1.Value) error {
	c.rec = c.rec[:0]
	for _, v := range vals {
		s, _ := resultcodec.Text(v)
		c.rec = append(c.rec, s)
	}
	return c.w.Write(c.rec)
}

func (c *csvRows) flush() error {
	c.w.Flush()
	return c.w.Error()
}

func (c *csvRows) finish(*yrdv1.ResultTrailer) error { return c.flush() }

// querySummary prints the rows, the derived level and each city's part.
func querySummary(w io.Writer, h *yrdv1.ResultHeader, t *yrdv1.ResultTrailer, rows uint64) {
	noun := "rows"
	if rows == 1 {
		noun = "row"
	}
	fmt.Fprintf(w, "%d %s; derived level %s\n", rows, noun, levelName(h.GetDerivedLevel()))
	if len(t.GetCities()) == 0 {
		return
	}
	var cells [][]string
	for _, c := range t.GetCities() {
		note := ""
		if c.GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK {
			note = oneLineText(cityReason(c))
		} else if n := c.GetReceipt().GetNoise(); n != nil {
			note = fmt.Sprintf("%s noise, epsilon %g (budget left %g)", n.GetMechanism(), n.GetEpsilon(), n.GetBudgetRemaining())
		}
		cells = append(cells, []string{c.GetCity(), cityStatusName(c.GetStatus()), strconv.FormatUint(c.GetRows(), 10), note})
	}
	table(w, []string{"CITY", "STATUS", "ROWS", "NOTE"}, cells)
}

func effectName(e yrdv1.Effect) string { return strings.ToLower(trimEnum(e.String(), "EFFECT_")) }

func cityStatusName(s yrdv1.CityStatus) string {
	return strings.ToLower(strings.ReplaceAll(trimEnum(s.String(), "CITY_STATUS_"), "_", " "))
}

func cityReason(c *yrdv1.CityResult) string {
	if c.GetReason() != "" {
		return c.GetReason()
	}
	return cityStatusName(c.GetStatus())
}

// oneLineText keeps a reason on one line of a summary.
func oneLineText(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}
