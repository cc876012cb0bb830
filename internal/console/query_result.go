package console

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// What a session keeps of its last result: the page draws the first
// shownRows; the CSV download needs them all, which are kept up to
// keptRows rows and about keptBytes of text. A bigger result is shown
// in part and its rows cannot be downloaded (the page says so, and that
// the CLI streams any size); its receipts always can.
const (
	shownRows = 1000
	keptRows  = 100_000
	keptBytes = 32 << 20
	// cellBytes is what one cell costs beyond its text, roughly.
	cellBytes = 24
)

// queryMemory is a session's last query outcome. An outcome is never
// changed once set, so readers share it.
type queryMemory struct {
	mu   sync.Mutex
	last *queryOutcome
}

func (m *queryMemory) get() *queryOutcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *queryMemory) set(o *queryOutcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = o
}

// cell is one value as the page and the CSV show it.
type cell struct {
	Text string
	Null bool
}

// queryOutcome is one explain or run as the node answered it.
type queryOutcome struct {
	form    queryForm
	explain bool
	header  *yrdv1.ResultHeader
	trailer *yrdv1.ResultTrailer
	rows    [][]cell // all of them while kept, else the first shownRows
	kept    bool
	bytes   int
	total   uint64
	digest  *receipt.Digest
	// digestProblem says that a one-dataset result's rows are not those
	// its receipt signs for.
	digestProblem string
	checks        []receiptCheck
}

// receiptCheck is what verifying one city's receipt found.
type receiptCheck struct {
	result  *yrdv1.CityResult
	problem string // "" when it verified
}

func newQueryOutcome(form queryForm, explain bool) *queryOutcome {
	return &queryOutcome{form: form, explain: explain, kept: true, digest: receipt.NewDigest()}
}

// badResult is a stream that breaks the protocol (rows before the
// header, a malformed column batch): the node's fault, not the query's.
type badResult struct{ msg string }

func (e badResult) Error() string { return "the node sent a malformed result: " + e.msg }

// read receives the stream up to its trailer, as the CLI does: one
// header, then batches of rows or columns, then the trailer.
func (o *queryOutcome) read(stream grpc.ServerStreamingClient[yrdv1.QueryResponse]) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return badResult{"it ended without its trailer"}
		}
		if err != nil {
			return err
		}
		switch x := msg.GetPart().(type) {
		case *yrdv1.QueryResponse_Header:
			if o.header != nil {
				return badResult{"a second result header"}
			}
			o.header = x.Header
		case *yrdv1.QueryResponse_Batch:
			if err := o.addRows(x.Batch.GetRows()); err != nil {
				return err
			}
		case *yrdv1.QueryResponse_Columns:
			if err := o.addColumns(x.Columns); err != nil {
				return err
			}
		case *yrdv1.QueryResponse_Trailer:
			o.trailer = x.Trailer
			return nil
		}
	}
}

func (o *queryOutcome) addColumns(cols *yrdv1.ColumnBatch) error {
	if o.header == nil {
		return badResult{"rows before the result header"}
	}
	if err := resultcodec.Check(cols, o.header.GetColumns()); err != nil {
		return badResult{err.Error()}
	}
	rows, err := resultcodec.ColumnsToRows(cols)
	if err != nil {
		return badResult{err.Error()}
	}
	return o.addRows(rows)
}

// addRows checks each row against the header, adds it to the digest the
// receipt is checked against and keeps its text while within bounds.
func (o *queryOutcome) addRows(rows []*yrdv1.Row) error {
	if o.header == nil {
		return badResult{"rows before the result header"}
	}
	n := len(o.header.GetColumns())
	for _, row := range rows {
		if len(row.GetValues()) != n {
			return badResult{fmt.Sprintf("a row of %d values for %d columns", len(row.GetValues()), n)}
		}
		o.digest.Add(row)
		o.total++
		if !o.kept && len(o.rows) >= shownRows {
			continue
		}
		cells := make([]cell, n)
		for i, v := range row.GetValues() {
			cells[i].Text, cells[i].Null = resultcodec.Text(v)
			o.bytes += len(cells[i].Text) + cellBytes
		}
		o.rows = append(o.rows, cells)
		if o.kept && (len(o.rows) > keptRows || o.bytes > keptBytes) {
			o.kept = false
			o.rows = append([][]cell(nil), o.rows[:min(len(o.rows), shownRows)]...) // let the rest go
		}
	}
	return nil
}

// finish checks what came: a one-dataset result's rows against its
// receipt (they pass from the owner unchanged, so they must be exactly
// what it signed; a family's are merged, so need not be), and every
// city's receipt, as `yrdnode receipt verify` does.
func (o *queryOutcome) finish() {
	if o.header == nil {
		o.header = &yrdv1.ResultHeader{}
	}
	cs := o.trailer.GetCities()
	if !o.explain && len(cs) == 1 && cs[0].GetReceipt() != nil && isDatasetQuery(o.form.SQL) {
		if err := receipt.CheckDigest(cs[0].GetReceipt(), o.digest); err != nil {
			o.digestProblem = err.Error()
		}
	}
	o.digest = nil
	for _, c := range cs {
		if c.GetReceipt() == nil {
			o.checks = append(o.checks, receiptCheck{result: c})
			continue
		}
		check := receiptCheck{result: c}
		if err := receipt.VerifyPart(c.GetReceipt(), c.GetCity(), c.GetDatasetId()); err != nil {
			check.problem = err.Error()
		}
		o.checks = append(o.checks, check)
	}
}

// isDatasetQuery reports whether sql reads one dataset rather than a
// family (the node parsed it already; this only tells the two apart).
func isDatasetQuery(sql string) bool {
	q, err := sqlq.Parse(sql)
	return err == nil && q.GetDatasetId() != ""
}

func (o *queryOutcome) hasReceipts() bool {
	for _, c := range o.trailer.GetCities() {
		if c.GetReceipt() != nil {
			return true
		}
	}
	return false
}

// writeCSV writes the rows as `yrdnode query -o csv` prints them: RFC 4180
// with a header line of the column names, CRLF line ends, NULL as the
// empty field.
func (o *queryOutcome) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	names := make([]string, len(o.header.GetColumns()))
	for i, c := range o.header.GetColumns() {
		names[i] = c.GetName()
	}
	if err := cw.Write(names); err != nil {
		return err
	}
	rec := make([]string, len(names))
	for _, row := range o.rows {
		for i, c := range row {
			rec[i] = c.Text
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// receiptsFile is the trailer as `yrdnode query --receipts FILE` writes
// it, which `yrdnode receipt verify FILE` reads.
func receiptsFile(t *yrdv1.ResultTrailer) ([]byte, error) {
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(t)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
