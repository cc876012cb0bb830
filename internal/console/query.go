package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The query page: an analyst writes SQL of the node's subset and a
// purpose, then explains it (each city's decision, before anything is
// read or spent) or runs it (rows, each city's status, signed receipts).
// The node parses, decides, runs and audits; the page shows what it
// answered. The last outcome stays in the session, so that reloading the
// page or downloading the rows and receipts never runs the query again: a
// second run would spend privacy budget again and leave a second audit
// record.

// queryTimeout bounds one query from the console; the node's own query
// timeout usually ends it first.
const queryTimeout = 5 * time.Minute

func (c *Console) routeQuery(mux *http.ServeMux) {
	mux.HandleFunc("GET /query", c.withSession(c.queryPage))
	mux.HandleFunc("POST /query", c.withSession(c.queryPost))
	mux.HandleFunc("GET /query/result.csv", c.withSession(c.queryCSV))
	mux.HandleFunc("GET /query/receipts", c.withSession(c.queryReceipts))
}

// queryForm is the SQL and purpose as the person typed them.
type queryForm struct {
	SQL, Purpose string
}

// queryView is the query page: the form, its purposes to pick from, and
// what the last explain, run or error gave.
type queryView struct {
	Form     queryForm
	Purposes []string
	Error    *sqlErrorView
	Explain  *explainView
	Result   *resultView
}

// queryPage shows the form with the session's last outcome, if any.
func (c *Console) queryPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := queryView{Purposes: c.purposes(r.Context(), s)}
	if last := s.query.get(); last != nil {
		v.Form = last.form
		lang := language(r)
		if last.explain {
			v.Explain = buildExplain(last, lang)
		} else {
			v.Result = buildResult(last, lang)
		}
	}
	c.page(w, r, s, "query", "query", v)
}

// queryPost explains or runs the query, keeps the outcome in the session
// and sends the browser to GET /query (so a reload shows it again rather
// than running the query again). An error is shown at once, with the SQL
// back in the form.
func (c *Console) queryPost(w http.ResponseWriter, r *http.Request, s *session) {
	form := queryForm{SQL: r.PostFormValue("sql"), Purpose: strings.TrimSpace(r.PostFormValue("purpose"))}
	explain := r.PostFormValue("action") == "explain"
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	out, err := c.runQuery(ctx, s, form, explain)
	if err != nil {
		c.queryError(w, r, s, form, err)
		return
	}
	s.query.set(out)
	c.log.Info("console query", "org", s.who.GetOrg(), "name", s.who.GetName(), "explain", explain, "rows", out.total)
	http.Redirect(w, r, "/query", http.StatusSeeOther)
}

// runQuery asks the node, as the signed-in person, exactly what the CLI
// asks for `yrdnode query` (columns preferred, the node's batch size).
func (c *Console) runQuery(ctx context.Context, s *session, form queryForm, explain bool) (*queryOutcome, error) {
	req := &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: form.SQL}, Purpose: form.Purpose,
		Explain: explain, Columnar: true}
	stream, err := c.api.query.Query(s.creds.outgoing(ctx), req)
	if err != nil {
		return nil, err
	}
	out := newQueryOutcome(form, explain)
	if err := out.read(stream); err != nil {
		return nil, err
	}
	out.finish()
	return out, nil
}

// queryError shows what the node answered, in the form with the SQL as
// it was sent; for a syntax error, the SQL with the line and column the
// node named marked. A session whose credentials the node no longer
// accepts ends, as on every page.
func (c *Console) queryError(w http.ResponseWriter, r *http.Request, s *session, form queryForm, err error) {
	st := status.Convert(err)
	var bad badResult
	if errors.As(err, &bad) {
		st = status.New(codes.Internal, bad.Error())
	}
	if st.Code() == codes.Unauthenticated {
		c.apiError(w, r, s, err)
		return
	}
	v := queryView{Form: form, Purposes: c.purposes(r.Context(), s)}
	v.Error = sqlError(form.SQL, st)
	d := c.sessionData(s, "query", v)
	d.Problem = st.Code().String() + ": " + st.Message()
	c.render(w, r, httpStatus(st.Code()), "query", d)
}

// purposes are the permitted purposes of the datasets in the catalog, to
// pick from; the node still judges whatever is typed. A person who may
// not list the catalog simply gets no suggestions. They are read once a
// session, not on every query page: the whole catalog is paged through
// for them, and suggestions may lag a newly published purpose.
func (c *Console) purposes(ctx context.Context, s *session) []string {
	// Not bound to this request: a cancelled first page must not leave
	// the session without suggestions.
	s.purposesOnce.Do(func() { s.purposes = c.readPurposes(context.WithoutCancel(ctx), s) })
	return s.purposes
}

func (c *Console) readPurposes(ctx context.Context, s *session) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := map[string]bool{}
	token := ""
	for range 20 { // pages of 500: far more than any catalog of the delta
		resp, err := c.api.catalog.ListDatasets(s.creds.outgoing(ctx), &yrdv1.ListDatasetsRequest{PageSize: 500, PageToken: token})
		if err != nil {
			break
		}
		for _, d := range resp.GetDatasets() {
			for _, p := range d.GetPermittedPurposes() {
				seen[p] = true
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return slices.Clip(out)
}

// queryCSV serves the last result's rows as the CLI's `-o csv` prints
// them, from the session's memory: nothing is run again.
func (c *Console) queryCSV(w http.ResponseWriter, r *http.Request, s *session) {
	last := s.query.get()
	switch {
	case last == nil || last.explain:
		c.refuse(w, r, s, http.StatusNotFound, c.tr(r, "query.no_result"))
		return
	case !last.kept:
		c.refuse(w, r, s, http.StatusConflict, c.tr(r, "query.not_kept"))
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="result.csv"`)
	if err := last.writeCSV(w); err != nil {
		c.log.Warn("console: writing a result's CSV", "err", err)
	}
}

// queryReceipts serves the last result's trailer with each city's signed
// receipt, as `yrdnode query --receipts FILE` saves it, so that
// `yrdnode receipt verify FILE` checks what the console downloaded.
func (c *Console) queryReceipts(w http.ResponseWriter, r *http.Request, s *session) {
	last := s.query.get()
	if last == nil || last.explain || !last.hasReceipts() {
		c.refuse(w, r, s, http.StatusNotFound, c.tr(r, "query.no_receipts"))
		return
	}
	data, err := receiptsFile(last.trailer)
	if err != nil {
		c.refuse(w, r, s, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="receipts.json"`)
	w.Write(data)
}
