package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

func queryCommands() []command {
	return []command{
		{name: "query", summary: "run a SQL query where the data lives: rows, each city's status and signed receipts", run: runQuery},
		{name: "receipt", summary: "check result receipts offline", sub: []command{
			{name: "verify", summary: "verify the owners' signatures on a receipts file (query --receipts)", run: runReceiptVerify},
		}},
	}
}

const queryHelp = `Usage: yrdnode query [flags] 'SQL'

Runs a query of the SQL subset (one dataset id, or family:STANDARD_SCHEMA_ID
for every city's dataset of that schema) at your home node, which sends it to
the owners; each owner decides under its rules, runs it on its own data and
signs a receipt. Rows go to standard output as they arrive; a summary (rows,
derived level, each city's status) goes to standard error.

  yrdnode query --purpose elderly-care-planning \
    'SELECT district, count(*), avg(age) FROM family:yrd.elderly-population.v1 GROUP BY district'

Output (-o): table (aligned columns; NULL shown as NULL), json (JSON Lines:
one object per row keyed by column name, numbers as numbers, NULL as null) or
csv (RFC 4180 with a header line; NULL is the empty field).

Exit status: 0 when a result came back, even a partial one: a family result
missing a city's part prints "PARTIAL RESULT: CITY: REASON" to standard error
and still exits 0. 1 on an error (bad SQL, with its line and column; permission
denied, with the rule; limits; an unreachable node) or when no city's part came
back at all. 2 on a usage error.

Flags:
`

// tableBufferRows is how many rows table output holds to align columns;
// past it, rows stream out unaligned.
const tableBufferRows = 10000

func runQuery(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "query")
	cf := addClientFlags(fs, env)
	cf.outputs = []string{"table", "json", "csv"}
	cf.timeout = time.Minute
	fs.Lookup("timeout").DefValue = cf.timeout.String()
	fs.Lookup("o").Usage = "output: table, json (JSON Lines, one object per row) or csv"
	purpose := fs.String("purpose", "", "why the data is used (required), one of the dataset's permitted purposes, e.g. elderly-care-planning")
	explain := fs.Bool("explain", false, "show each city's decision and plan; read no data")
	batchRows := fs.Int("batch-rows", 0, "rows per streamed batch (0: the node's default)")
	asRows := fs.Bool("rows", false, "ask the node for rows of values instead of packed columns (the output is the same; columns are smaller and faster)")
	receipts := fs.String("receipts", "", "write each city's result with its signed receipt to this file (JSON; check it with 'yrdnode receipt verify FILE')")
	sqlFile := fs.String("f", "", "read the SQL from this file (- for standard input) instead of the argument")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), queryHelp)
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := cf.check(); err != nil {
		return err
	}
	if *explain && cf.output == "csv" {
		return usageError{"--explain reads no rows; use -o table or -o json"}
	}
	if *purpose == "" {
		return usageError{"--purpose is required: why the data is used, e.g. --purpose elderly-care-planning"}
	}
	if *batchRows < 0 || *batchRows > math.MaxUint32 {
		return usageError{fmt.Sprintf("--batch-rows: %d is not a row count", *batchRows)}
	}
	var sql string
	switch {
	case *sqlFile != "" && len(pos) > 0:
		return usageError{"give the SQL as the argument or with -f, not both"}
	case *sqlFile == "-":
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		sql = string(data)
	case *sqlFile != "":
		data, err := os.ReadFile(*sqlFile)
		if err != nil {
			return err
		}
		sql = string(data)
	default:
		sql = strings.Join(pos, " ")
	}
	if strings.TrimSpace(sql) == "" {
		return usageError{"usage: yrdnode query --purpose P [-o table|json|csv] [--explain] 'SQL'"}
	}
	return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		return streamQuery(ctx, env, cf, conn, sql, *purpose, *explain, *batchRows, *asRows, *receipts)
	})
}

// streamQuery runs one query and prints its result as it arrives.
func streamQuery(ctx context.Context, env Env, cf *clientFlags, conn *grpc.ClientConn, sql, purpose string, explain bool, batchRows int, asRows bool, receipts string) error {

	req := &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: sql}, Purpose: purpose, Explain: explain, BatchRows: uint32(batchRows),
		Columnar: !asRows}
	stream, err := yrdv1grpc.NewQueryServiceClient(conn).Query(ctx, req)
	if err != nil {
		return queryErr(cf, sql, err)
	}
	out := bufio.NewWriterSize(env.Stdout, 64<<10)
	var w rowWriter
	switch {
	case explain:
		w = &explainWriter{w: out, json: cf.output == "json"}
	case cf.output == "json":
		w = &jsonRows{w: out}
	case cf.output == "csv":
		w = &csvRows{w: csv.NewWriter(out)}
	default:
		w = &tableRows{w: out}
	}
	var header *yrdv1.ResultHeader
	var trailer *yrdv1.ResultTrailer
	digest := receipt.NewDigest()
	var rows uint64
	addRows := func(rs []*yrdv1.Row) error {
		if header == nil {
			return errors.New("the node sent rows before the result header")
		}
		for _, r := range rs {
			if len(r.GetValues()) != len(header.GetColumns()) {
				return fmt.Errorf("the node sent a row of %d values for %d columns", len(r.GetValues()), len(header.GetColumns()))
			}
			digest.Add(r)
			if err := w.row(r.GetValues()); err != nil {
				return err
			}
		}
		rows += uint64(len(rs))
		return w.flush()
	}
	for trailer == nil {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			out.Flush()
			return errors.New("the node ended the result without its trailer: the rows above may be incomplete")
		}
		if err != nil {
			out.Flush()
			return queryErr(cf, sql, err)
		}
		switch x := msg.GetPart().(type) {
		case *yrdv1.QueryResponse_Header:
			if header != nil {
				return errors.New("the node sent a second result header")
			}
			header = x.Header
			if err := w.header(header); err != nil {
				return err
			}
		case *yrdv1.QueryResponse_Batch:
			if err := addRows(x.Batch.GetRows()); err != nil {
				return err
			}
		case *yrdv1.QueryResponse_Columns:
			// Asked for; a node may still send rows (RowBatch), above.
			if header == nil {
				return errors.New("the node sent rows before the result header")
			}
			if err := resultcodec.Check(x.Columns, header.GetColumns()); err != nil {
				return fmt.Errorf("the node sent a bad column batch: %v", err)
			}
			rs, err := resultcodec.ColumnsToRows(x.Columns)
			if err != nil {
				return fmt.Errorf("the node sent a bad column batch: %v", err)
			}
			if err := addRows(rs); err != nil {
				return err
			}
		case *yrdv1.QueryResponse_Trailer:
			trailer = x.Trailer
		}
	}
	if header == nil {
		header = &yrdv1.ResultHeader{}
	}
	if err := w.finish(trailer); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if receipts != "" {
		data, err := jsonOut.Marshal(trailer)
		if err != nil {
			return err
		}
		if err := os.WriteFile(receipts, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("--receipts: %v", err)
		}
	}
	if !explain {
		querySummary(env.Stderr, header, trailer, rows)
	}
	ok := 0
	for _, c := range trailer.GetCities() {
		if c.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			ok++
			if c.GetTruncated() {
				fmt.Fprintf(env.Stderr, "TRUNCATED: %s's part stopped at the policy's row cap (%d rows); add a LIMIT or narrow the query\n", c.GetCity(), c.GetRows())
			}
		} else {
			fmt.Fprintf(env.Stderr, "PARTIAL RESULT: %s: %s\n", c.GetCity(), oneLineText(cityReason(c)))
		}
		for _, s := range c.GetSuppressed() {
			fmt.Fprintf(env.Stderr, "SUPPRESSED: %s held back %d group(s) (rule %s): %s\n", c.GetCity(), s.GetGroups(), s.GetRuleId(), oneLineText(s.GetReason()))
		}
		if nz := c.GetReceipt().GetNoise(); nz != nil {
			fmt.Fprintf(env.Stderr, "NOISE: %s's counts and sums carry %s noise (epsilon %g; %g left of the budget for %s)\n",
				c.GetCity(), nz.GetMechanism(), nz.GetEpsilon(), nz.GetBudgetRemaining(), nz.GetBudgetFamily())
		}
	}
	if trailer.GetPartial() && len(trailer.GetCities()) == 0 {
		fmt.Fprintln(env.Stderr, "PARTIAL RESULT: the node says the result is partial but names no city")
	}
	if ok == 0 && len(trailer.GetCities()) > 0 {
		return errors.New("no city's part of the result came back (see above)")
	}
	// A one-dataset query's rows pass from the owner through the home node
	// unchanged, so they must be exactly the rows its receipt signs for. (A
	// family's rows are merged from the owners' parts: they need not be.)
	if cs := trailer.GetCities(); !explain && len(cs) == 1 && cs[0].GetReceipt() != nil && isDatasetQuery(sql) {
		if err := receipt.CheckDigest(cs[0].GetReceipt(), digest); err != nil {
			return fmt.Errorf("the rows received do not match %s's signed receipt: %v", cs[0].GetCity(), err)
		}
	}
	if receipts != "" {
		fmt.Fprintf(env.Stderr, "receipts: %s (check with 'yrdnode receipt verify %s')\n", receipts, receipts)
	}
	return nil
}

// isDatasetQuery reports whether sql reads one dataset rather than a family.
func isDatasetQuery(sql string) bool {
	q, err := sqlq.Parse(sql)
	return err == nil && q.GetDatasetId() != ""
}

var sqlPosition = regexp.MustCompile(`line (\d+), column (\d+)`)

// queryErr is callErr, plus for a syntax error the offending line of the
// SQL with a caret under the column the node named.
func queryErr(cf *clientFlags, sql string, err error) error {
	e := cf.callErr(err)
	if status.Code(err) != codes.InvalidArgument {
		return e
	}
	m := sqlPosition.FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		return e
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	lines := strings.Split(sql, "\n")
	if line < 1 || line > len(lines) || col < 1 {
		return e
	}
	// Columns count runes, a tab being one; show tabs as one space so the
	// caret lines up.
	text := []rune(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimRight(lines[line-1], "\r")))
	if col > len(text)+1 {
		return e
	}
	return fmt.Errorf("%w\n  %s\n  %s^", e, string(text), strings.Repeat(" ", displayWidth(string(text[:col-1]))))
}

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
	s, null := valueText(v)
	if null {
		return "NULL"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

// valueText is a value's text form, and whether it is NULL.
func valueText(v *yrdv1.Value) (string, bool) {
	switch x := v.GetKind().(type) {
	case *yrdv1.Value_StringValue:
		return x.StringValue, false
	case *yrdv1.Value_IntValue:
		return strconv.FormatInt(x.IntValue, 10), false
	case *yrdv1.Value_DoubleValue:
		return formatDouble(x.DoubleValue), false
	case *yrdv1.Value_BoolValue:
		return strconv.FormatBool(x.BoolValue), false
	case *yrdv1.Value_DateValue:
		return x.DateValue, false
	case *yrdv1.Value_TimestampValue:
		return x.TimestampValue, false
	}
	return "", true
}

// formatDouble prints the shortest text that reads back as the same
// double, without an exponent unless the number is very large or small.
func formatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a != 0 && (a >= 1e21 || a < 1e-6) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
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

func (j *jsonRows) flush() error                      { return j.w.Flush() }
func (j *jsonRows) finish(*yrdv1.ResultTrailer) error { return nil }

func appendJSONValue(b []byte, v *yrdv1.Value) []byte {
	switch x := v.GetKind().(type) {
	case *yrdv1.Value_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *yrdv1.Value_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return appendJSONText(b, formatDouble(x.DoubleValue)) // as protojson writes them
		}
		return append(b, formatDouble(x.DoubleValue)...)
	case *yrdv1.Value_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case nil:
		return append(b, "null"...)
	}
	s, _ := valueText(v)
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
		s, _ := valueText(v)
		c.rec = append(c.rec, s)
	}
	return c.w.Write(c.rec)
}

func (c *csvRows) flush() error {
	c.w.Flush()
	return c.w.Error()
}

func (c *csvRows) finish(*yrdv1.ResultTrailer) error { return c.flush() }

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

func runReceiptVerify(_ context.Context, env Env, args []string) error {
	fs := newFlags(env, "receipt verify")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"usage: yrdnode receipt verify FILE (as written by 'yrdnode query --receipts FILE')"}
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var t yrdv1.ResultTrailer
	if err := protojson.Unmarshal(data, &t); err != nil {
		return fmt.Errorf("%s: not a receipts file written by 'yrdnode query --receipts': %v", pos[0], err)
	}
	var cells [][]string
	checked, failed := 0, 0
	for _, c := range t.GetCities() {
		r := c.GetReceipt()
		if r == nil {
			cells = append(cells, []string{c.GetCity(), c.GetDatasetId(), "no receipt (" + oneLineText(cityReason(c)) + ")"})
			continue
		}
		checked++
		err := receipt.Verify(r)
		if err == nil && (r.GetCity() != c.GetCity() || r.GetDatasetId() != c.GetDatasetId()) {
			err = fmt.Errorf("the receipt is for %s / %s, not %s / %s", r.GetCity(), r.GetDatasetId(), c.GetCity(), c.GetDatasetId())
		}
		verdict := fmt.Sprintf("OK: signed by %s; %d rows, %s, policy v%d, audit #%d", r.GetNode(), r.GetRows(), effectName(r.GetEffect()), r.GetPolicyVersion(), r.GetAuditSeq())
		if err != nil {
			failed++
			verdict = "FAILED: " + err.Error()
		}
		cells = append(cells, []string{c.GetCity(), c.GetDatasetId(), verdict})
	}
	if len(cells) > 0 {
		table(env.Stdout, []string{"CITY", "DATASET", "RECEIPT"}, cells)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d receipts in %s fail verification", failed, checked, pos[0])
	}
	if checked == 0 {
		return fmt.Errorf("%s holds no receipt to verify", pos[0])
	}
	return nil
}
