package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

func queryCommands() []command {
	return []command{
		{name: "query", use: "'SQL'", summary: "run a SQL query where the data lives: rows, each city's status and signed receipts",
			long: queryHelp, outputs: []string{"table", "json", "csv"}, setup: runQuery},
		{name: "receipt", summary: "check result receipts offline", sub: []command{
			{name: "verify", use: "FILE", summary: "verify the owners' signatures on a receipts file (query --receipts)", setup: runReceiptVerify},
		}},
	}
}

const queryHelp = `Runs a query of the SQL subset (one dataset id, or family:STANDARD_SCHEMA_ID
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
back at all. 2 on a usage error.`

// tableBufferRows is how many rows table output holds to align columns;
// past it, rows stream out unaligned.
const tableBufferRows = 10000

func runQuery(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	purpose := fs.String("purpose", "", "why the data is used (required), one of the dataset's permitted purposes, e.g. elderly-care-planning")
	explain := fs.Bool("explain", false, "show each city's decision and plan; read no data")
	batchRows := fs.Int("batch-rows", 0, "rows per streamed batch (0: the node's default)")
	asRows := fs.Bool("rows", false, "ask the node for rows of values instead of packed columns (the output is the same; columns are smaller and faster)")
	receipts := fs.String("receipts", "", "write each city's result with its signed receipt to this file (JSON; check it with 'yrdnode receipt verify FILE')")
	sqlFile := fs.StringP("file", "f", "", "read the SQL from this file (- for standard input) instead of the argument")
	return func(ctx context.Context, pos []string) error {
		if !cf.changed("timeout") {
			cf.timeout = time.Minute
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
		sql, err := readQuerySQL(*sqlFile, pos)
		if err != nil {
			return err
		}
		if strings.TrimSpace(sql) == "" {
			return usageError{"usage: yrdnode query --purpose P [-o table|json|csv] [--explain] 'SQL'"}
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			q := queryArgs{sql: sql, purpose: *purpose, explain: *explain, batchRows: *batchRows, asRows: *asRows, receipts: *receipts}
			return streamQuery(ctx, env, cf, conn, q)
		})
	}
}

// readQuerySQL takes the SQL from the file named by -f (- for standard
// input) or else from the arguments, not from both.
func readQuerySQL(sqlFile string, pos []string) (string, error) {
	switch {
	case sqlFile != "" && len(pos) > 0:
		return "", usageError{"give the SQL as the argument or with -f, not both"}
	case sqlFile == "-":
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return "", err
		}
		return string(data), nil
	case sqlFile != "":
		data, err := os.ReadFile(sqlFile)
		if err != nil {
			return "", err
		}
		return string(data), nil
	}
	return strings.Join(pos, " "), nil
}

// queryArgs is one query as the flags asked for it.
type queryArgs struct {
	sql, purpose string
	explain      bool
	batchRows    int
	asRows       bool
	receipts     string // file to write the trailer with its receipts to
}

// streamQuery runs one query and prints its result as it arrives: the
// rows to standard output, then what each city said to standard error.
func streamQuery(ctx context.Context, env Env, cf *clientFlags, conn *grpc.ClientConn, q queryArgs) error {
	req := &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: q.sql}, Purpose: q.purpose, Explain: q.explain, BatchRows: uint32(q.batchRows),
		Columnar: !q.asRows}
	stream, err := yrdv1grpc.NewQueryServiceClient(conn).Query(ctx, req)
	if err != nil {
		return queryErr(cf, q.sql, err)
	}
	out := bufio.NewWriterSize(env.Stdout, 64<<10)
	res := &resultReader{w: newRowWriter(out, cf.output, q.explain), digest: receipt.NewDigest()}
	// Rows going to the terminal show progress themselves; rows going to
	// a file or a pipe get a line on the terminal that counts them.
	stop := func() {}
	if !isTerminal(env.Stdout) {
		stop = startProgress(env, func() string { return fmt.Sprintf("query: %d rows so far", res.rows.Load()) })
	}
	trailer, err := res.read(stream)
	stop()
	var ended streamEnded
	if errors.As(err, &ended) {
		out.Flush()
		return streamError(cf, q.sql, ended.err)
	}
	if err != nil {
		return err
	}
	header := res.header
	if header == nil {
		header = &yrdv1.ResultHeader{}
	}
	if err := res.w.finish(trailer); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if err := saveReceipts(q.receipts, trailer); err != nil {
		return err
	}
	if !q.explain {
		querySummary(env.Stderr, header, trailer, res.rows.Load())
	}
	if err := reportCities(env.Stderr, trailer); err != nil {
		return err
	}
	if err := checkReceiptDigest(q, trailer, res.digest); err != nil {
		return err
	}
	if q.receipts != "" {
		fmt.Fprintf(env.Stderr, "receipts: %s (check with 'yrdnode receipt verify %s')\n", q.receipts, q.receipts)
	}
	return nil
}

// newRowWriter is the rowWriter for the output format, or for --explain.
func newRowWriter(out *bufio.Writer, output string, explain bool) rowWriter {
	switch {
	case explain:
		return &explainWriter{w: out, json: output == "json"}
	case output == "json":
		return &jsonRows{w: out}
	case output == "csv":
		return &csvRows{w: csv.NewWriter(out)}
	}
	return &tableRows{w: out}
}

// resultReader takes a query's stream apart: one header, then batches of
// rows or columns, then the trailer. It hands every row to its rowWriter
// and to the digest that the receipt is checked against.
type resultReader struct {
	w      rowWriter
	digest *receipt.Digest
	header *yrdv1.ResultHeader
	rows   atomic.Uint64 // read by the progress line
}

// streamEnded wraps an error of the stream itself (not of its content),
// which the caller reports with streamError after flushing the rows.
type streamEnded struct{ err error }

func (e streamEnded) Error() string { return e.err.Error() }

// read receives the stream up to its trailer. A failed or cut stream
// comes back as streamEnded; a malformed one as a plain error.
func (r *resultReader) read(stream grpc.ServerStreamingClient[yrdv1.QueryResponse]) (*yrdv1.ResultTrailer, error) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil, streamEnded{err}
		}
		switch x := msg.GetPart().(type) {
		case *yrdv1.QueryResponse_Header:
			if r.header != nil {
				return nil, errors.New("the node sent a second result header")
			}
			r.header = x.Header
			if err := r.w.header(r.header); err != nil {
				return nil, err
			}
		case *yrdv1.QueryResponse_Batch:
			if err := r.addRows(x.Batch.GetRows()); err != nil {
				return nil, err
			}
		case *yrdv1.QueryResponse_Columns:
			if err := r.addColumns(x.Columns); err != nil {
				return nil, err
			}
		case *yrdv1.QueryResponse_Trailer:
			return x.Trailer, nil
		}
	}
}

// addColumns takes a column batch, what the CLI asks for; a node may
// still send rows (addRows).
func (r *resultReader) addColumns(cols *yrdv1.ColumnBatch) error {
	if r.header == nil {
		return errors.New("the node sent rows before the result header")
	}
	if err := resultcodec.Check(cols, r.header.GetColumns()); err != nil {
		return fmt.Errorf("the node sent a bad column batch: %v", err)
	}
	rs, err := resultcodec.ColumnsToRows(cols)
	if err != nil {
		return fmt.Errorf("the node sent a bad column batch: %v", err)
	}
	return r.addRows(rs)
}

// addRows checks each row against the header and prints it.
func (r *resultReader) addRows(rs []*yrdv1.Row) error {
	if r.header == nil {
		return errors.New("the node sent rows before the result header")
	}
	for _, row := range rs {
		if len(row.GetValues()) != len(r.header.GetColumns()) {
			return fmt.Errorf("the node sent a row of %d values for %d columns", len(row.GetValues()), len(r.header.GetColumns()))
		}
		r.digest.Add(row)
		if err := r.w.row(row.GetValues()); err != nil {
			return err
		}
	}
	r.rows.Add(uint64(len(rs)))
	return r.w.flush()
}

// streamError says why the stream ended before its trailer.
func streamError(cf *clientFlags, sql string, err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the node ended the result without its trailer: the rows above may be incomplete")
	}
	return queryErr(cf, sql, err)
}

// saveReceipts writes the trailer, with each city's signed receipt, to
// the --receipts file, if one was named.
func saveReceipts(path string, trailer *yrdv1.ResultTrailer) error {
	if path == "" {
		return nil
	}
	data, err := jsonOut.Marshal(trailer)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("--receipts: %v", err)
	}
	return nil
}

// reportCities says on w which cities' parts were truncated, missing,
// suppressed in part or noised, and fails if no city's part came back.
func reportCities(w io.Writer, trailer *yrdv1.ResultTrailer) error {
	ok := 0
	for _, c := range trailer.GetCities() {
		if c.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			ok++
			if c.GetTruncated() {
				fmt.Fprintf(w, "TRUNCATED: %s's part stopped at the policy's row cap (%d rows); add a LIMIT or narrow the query\n", c.GetCity(), c.GetRows())
			}
		} else {
			fmt.Fprintf(w, "PARTIAL RESULT: %s: %s\n", c.GetCity(), oneLineText(cityReason(c)))
		}
		for _, s := range c.GetSuppressed() {
			fmt.Fprintf(w, "SUPPRESSED: %s held back %d group(s) (rule %s): %s\n", c.GetCity(), s.GetGroups(), s.GetRuleId(), oneLineText(s.GetReason()))
		}
		if nz := c.GetReceipt().GetNoise(); nz != nil {
			fmt.Fprintf(w, "NOISE: %s's counts and sums carry %s noise (epsilon %g; %g left of the budget for %s)\n",
				c.GetCity(), nz.GetMechanism(), nz.GetEpsilon(), nz.GetBudgetRemaining(), nz.GetBudgetFamily())
		}
	}
	if trailer.GetPartial() && len(trailer.GetCities()) == 0 {
		fmt.Fprintln(w, "PARTIAL RESULT: the node says the result is partial but names no city")
	}
	if ok == 0 && len(trailer.GetCities()) > 0 {
		return errors.New("no city's part of the result came back (see above)")
	}
	return nil
}

// checkReceiptDigest checks a one-dataset query's rows against its
// receipt: they pass from the owner through the home node unchanged, so
// they must be exactly the rows the receipt signs for. (A family's rows
// are merged from the owners' parts: they need not be.)
func checkReceiptDigest(q queryArgs, trailer *yrdv1.ResultTrailer, digest *receipt.Digest) error {
	cs := trailer.GetCities()
	if q.explain || len(cs) != 1 || cs[0].GetReceipt() == nil || !isDatasetQuery(q.sql) {
		return nil
	}
	if err := receipt.CheckDigest(cs[0].GetReceipt(), digest); err != nil {
		return fmt.Errorf("the rows received do not match %s's signed receipt: %v", cs[0].GetCity(), err)
	}
	return nil
}

// isDatasetQuery reports whether sql reads one dataset rather than a family.
func isDatasetQuery(sql string) bool {
	q, err := sqlq.Parse(sql)
	return err == nil && q.GetDatasetId() != ""
}

// queryErr is callErr, plus for a syntax error the offending line of the
// SQL with a caret under the column the node named.
func queryErr(cf *clientFlags, sql string, err error) error {
	e := cf.callErr(err)
	if status.Code(err) != codes.InvalidArgument {
		return e
	}
	line, col, ok := sqlq.ErrorPosition(status.Convert(err).Message())
	if !ok {
		return e
	}
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
