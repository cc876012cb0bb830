package node

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/merge"
	"github.com/yrd-exchange/yrdnode/internal/owner"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

// maxBatchRows bounds a requested batch size: what a receiver accepts.
const maxBatchRows = resultcodec.MaxRows

// queryService is the client face of queries: the requester's home node
// parses the question, sends it to the owner (itself, or another city's
// node over the fabric), and for a family fans it out and merges.
type queryService struct {
	yrdv1grpc.UnimplementedQueryServiceServer
	n *Node
}

func (s *queryService) Query(req *yrdv1.QueryRequest, stream yrdv1grpc.QueryService_QueryServer) error {
	return s.n.drainable(stream.Context(), func(ctx context.Context) error { return s.query(ctx, req, stream) })
}

func (s *queryService) query(ctx context.Context, req *yrdv1.QueryRequest, stream yrdv1grpc.QueryService_QueryServer) error {
	n := s.n
	p := principal(ctx)
	q, refs, err := parseQuestion(req)
	if err != nil {
		return err
	}
	if !slugPattern.MatchString(req.GetPurpose()) {
		return errorf(ErrInvalid, "purpose: %q must be a purpose slug such as elderly-care-planning", req.GetPurpose())
	}
	if req.GetBatchRows() > maxBatchRows {
		return errorf(ErrInvalid, "batch_rows: %d is over %d", req.GetBatchRows(), maxBatchRows)
	}
	release, err := n.acquireQuery(ctx, p, q)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := n.withQueryTimeout(ctx)
	defer cancel()
	// Linearizable: a grant revoked anywhere a moment ago is seen here.
	if err := n.readBarrier(ctx, yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); err != nil {
		return err
	}
	er := owner.Request{Query: q, Purpose: req.GetPurpose(), Principal: p, Explain: req.GetExplain(), BatchRows: int(req.GetBatchRows()),
		Columnar: req.GetColumnar()}
	if fam := q.GetFamily(); fam != "" {
		return n.fanOut(ctx, er, refs, stream.Send)
	}
	if err := validID("query.dataset", q.GetDatasetId()); err != nil {
		return err
	}
	ds, ok := n.catalog.GetDataset(q.GetDatasetId())
	if !ok {
		return errorf(ErrNotFound, "dataset %q not found", q.GetDatasetId())
	}
	if err := checkColumns("dataset "+ds.GetId(), refs, ds); err != nil {
		return err
	}
	return n.runAt(ctx, ds.GetOwnerCity(), er, stream.Send)
}

func (n *Node) withQueryTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.QueryTimeout)
}

// parseQuestion returns the structured query of req, parsing SQL text,
// and the columns it reads: with their positions in the text, if any.
func parseQuestion(req *yrdv1.QueryRequest) (*yrdv1.Query, []sqlq.ColumnRef, error) {
	switch x := req.GetQuestion().(type) {
	case *yrdv1.QueryRequest_Sql:
		q, refs, err := sqlq.ParseColumns(x.Sql)
		if err != nil {
			return nil, nil, errorf(ErrInvalid, "sql: %v", err)
		}
		return q, refs, nil
	case *yrdv1.QueryRequest_Query:
		if x.Query.GetSource() == nil {
			return nil, nil, errorf(ErrInvalid, "query: names no dataset or family")
		}
		return x.Query, sqlq.Columns(x.Query), nil
	}
	return nil, nil, errorf(ErrInvalid, "sql or query: one is required")
}

// checkColumns refuses a query that reads a column in none of the
// schemas of its datasets (one, or a family's), naming the first such
// column in the text and where it is. Checked here, before the owners
// see it, a misspelt GROUP BY column is not reported as some other
// column's fault by a later check, and a family query fails once, not as
// a partial result with every city refusing.
func checkColumns(what string, refs []sqlq.ColumnRef, datasets ...*yrdv1.Dataset) error {
	known := map[string]bool{}
	for _, d := range datasets {
		for _, c := range d.GetSchema().GetColumns() {
			known[c.GetName()] = true
		}
	}
	for _, r := range refs {
		if !known[r.Name] {
			return errorf(ErrInvalid, "unknown column %s (not in the schema of %s)", r, what)
		}
	}
	return nil
}

// runAt runs er on the node of city: here, or forwarded over the fabric.
func (n *Node) runAt(ctx context.Context, city string, er owner.Request, send func(*yrdv1.QueryResponse) error) error {
	if city == n.cfg.City {
		self, _ := n.catalog.Member(n.id.String())
		er.Outside = self.GetOutsideMainland()
		return n.owner.Execute(ctx, er, send)
	}
	id, err := n.nodeOf(city)
	if err != nil {
		return err
	}
	conn, err := n.peers.get(id)
	if err != nil {
		return errorf(ErrUnavailable, "%s: %v", city, err)
	}
	st, err := yrdv1grpc.NewPeerServiceClient(conn).Execute(ctx, &yrdv1.ExecuteRequest{Query: er.Query, Purpose: er.Purpose,
		Requester: er.Principal, Explain: er.Explain, BatchRows: uint32(er.BatchRows), Columnar: er.Columnar})
	if err != nil {
		return n.hopFailed("the node of", id.String(), err)
	}
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return n.hopFailed("the node of", id.String(), err)
		}
		if err := send(msg); err != nil {
			return err
		}
	}
}

// nodeOf finds the member node that serves city.
func (n *Node) nodeOf(city string) (peer.ID, error) {
	for _, m := range n.catalog.Members() {
		if m.GetCity() == city {
			return peer.Decode(m.GetPeerId())
		}
	}
	return "", errorf(ErrUnavailable, "no node of %s is a member of the delta cluster", city)
}

// cityPart is one owner's part of a family query.
type cityPart struct {
	ds     *yrdv1.Dataset
	header *yrdv1.ResultHeader
	rows   []*yrdv1.Row
	result *yrdv1.CityResult
}

// fanOut runs a family query on every owner in parallel, merges the parts
// that came back and reports every city's status; a city that is down,
// too slow or denying makes the result partial, never silently smaller.
func (n *Node) fanOut(ctx context.Context, er owner.Request, refs []sqlq.ColumnRef, send func(*yrdv1.QueryResponse) error) error {
	fam := er.Query.GetFamily()
	targets, err := n.familyDatasets(fam)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return errorf(ErrNotFound, "family %q: no dataset in the catalog has this standard schema id", fam)
	}
	if err := checkColumns("family "+fam, refs, targets...); err != nil {
		return err
	}
	m, err := merge.Plan(er.Query)
	if err != nil {
		return errorf(ErrInvalid, "%v", err)
	}
	parts := n.runParts(ctx, er, m, targets)
	if err := ctx.Err(); err != nil {
		return err
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].result.GetCity() < parts[j].result.GetCity() })
	header, trailer := mergeParts(er, m, parts)
	var rows []*yrdv1.Row
	if !er.Explain && !allFailed(parts) {
		// allFailed sees merge refusals too: mergeParts set their status.
		if header.Columns, rows, err = m.Result(); err != nil {
			return errorf(ErrInvalid, "merging the cities' parts: %v", err)
		}
	}
	return sendMerged(er, header, rows, trailer, send)
}

// familyDatasets lists every dataset of the standard schema fam.
func (n *Node) familyDatasets(fam string) ([]*yrdv1.Dataset, error) {
	var targets []*yrdv1.Dataset
	token := ""
	for {
		page, next, err := n.catalog.ListDatasets(store.ListFilter{StandardSchemaID: fam, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		targets = append(targets, page...)
		if next == "" {
			return targets, nil
		}
		token = next
	}
}

// runParts runs m's partial query on the owner of each target in
// parallel and returns what each sent, or why it failed.
func (n *Node) runParts(ctx context.Context, er owner.Request, m *merge.Merge, targets []*yrdv1.Dataset) []*cityPart {
	// Owners get a little less time than the whole query, so that the
	// coordinator can still report a slow city instead of failing.
	partCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		partCtx, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/10))
		defer cancel()
	}
	parts := make([]*cityPart, len(targets))
	var wg sync.WaitGroup
	for i, ds := range targets {
		parts[i] = &cityPart{ds: ds, result: &yrdv1.CityResult{City: ds.GetOwnerCity(), DatasetId: ds.GetId()}}
		wg.Add(1)
		go func(part *cityPart) {
			defer wg.Done()
			sub := er
			sub.Query = m.Partial(part.ds.GetId())
			sub.Columnar = false // the merge consumes rows
			if err := n.runAt(partCtx, part.ds.GetOwnerCity(), sub, part.receive); err != nil {
				part.rows = nil
				part.result.Status, part.result.Reason = cityStatus(partCtx, err), status.Convert(toStatus(err)).Message()
			}
		}(parts[i])
	}
	wg.Wait()
	return parts
}

// receive keeps one message of the owner's answer.
func (part *cityPart) receive(msg *yrdv1.QueryResponse) error {
	switch x := msg.GetPart().(type) {
	case *yrdv1.QueryResponse_Header:
		part.header = x.Header
	case *yrdv1.QueryResponse_Batch:
		part.rows = append(part.rows, x.Batch.GetRows()...)
	case *yrdv1.QueryResponse_Columns:
		// Not asked for, but a valid answer all the same.
		rows, err := resultcodec.ColumnsToRows(x.Columns)
		if err != nil {
			return errorf(ErrInternal, "%s: %v", part.ds.GetOwnerCity(), err)
		}
		part.rows = append(part.rows, rows...)
	case *yrdv1.QueryResponse_Trailer:
		if cs := x.Trailer.GetCities(); len(cs) == 1 {
			part.result = cs[0]
		}
	}
	return nil
}

// mergeParts adds the parts that came back to m, in city order, and
// gathers the cities' plans and statuses into the header and trailer.
func mergeParts(er owner.Request, m *merge.Merge, parts []*cityPart) (*yrdv1.ResultHeader, *yrdv1.ResultTrailer) {
	header := &yrdv1.ResultHeader{}
	trailer := &yrdv1.ResultTrailer{}
	for _, part := range parts {
		trailer.Cities = append(trailer.Cities, part.result)
		if part.header != nil {
			header.Plans = append(header.Plans, part.header.GetPlans()...)
			if part.header.GetDerivedLevel() > header.DerivedLevel {
				header.DerivedLevel = part.header.GetDerivedLevel()
			}
		}
		if part.result.GetStatus() != yrdv1.CityStatus_CITY_STATUS_OK {
			trailer.Partial = true
			continue
		}
		if part.result.GetTruncated() {
			// A cut part would merge into silently wrong totals.
			trailer.Truncated = true
			if m.Aggregate() {
				trailer.Partial = true
			}
		}
		if er.Explain {
			continue
		}
		// Keyed by dataset: one city may own two datasets of a family.
		if err := m.Add(part.ds.GetId(), part.header.GetColumns(), part.rows); err != nil {
			// Add keeps nothing of a part it refuses (e.g. a column one
			// city pseudonymises and another shows raw): report that city.
			part.result.Status, part.result.Reason = yrdv1.CityStatus_CITY_STATUS_FAILED, "its part cannot be merged with the others: "+err.Error()
			trailer.Partial = true
		}
	}
	return header, trailer
}

// sendMerged sends the merged result: the header, the rows in batches,
// then the trailer.
func sendMerged(er owner.Request, header *yrdv1.ResultHeader, rows []*yrdv1.Row, trailer *yrdv1.ResultTrailer,
	send func(*yrdv1.QueryResponse) error) error {
	if err := send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Header{Header: header}}); err != nil {
		return err
	}
	batch := er.BatchRows
	if batch <= 0 {
		batch = owner.DefaultBatchRows
	}
	for len(rows) > 0 {
		k := min(batch, len(rows))
		msg := &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: rows[:k]}}}
		if er.Columnar {
			// Merged rows that have no column form (a value not of its
			// column's kind) go as rows, which a columnar client accepts.
			if cbatch, err := resultcodec.RowsToColumns(header.GetColumns(), rows[:k]); err == nil {
				msg.Part = &yrdv1.QueryResponse_Columns{Columns: cbatch}
			}
		}
		if err := send(msg); err != nil {
			return err
		}
		trailer.Rows += uint64(k)
		rows = rows[k:]
	}
	return send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Trailer{Trailer: trailer}})
}

func allFailed(parts []*cityPart) bool {
	for _, p := range parts {
		if p.result.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			return false
		}
	}
	return true
}

// cityStatus classifies why an owner's part failed.
func cityStatus(ctx context.Context, err error) yrdv1.CityStatus {
	if ctx.Err() != nil {
		return yrdv1.CityStatus_CITY_STATUS_DEADLINE_EXCEEDED
	}
	switch status.Code(toStatus(err)) {
	case codes.PermissionDenied:
		return yrdv1.CityStatus_CITY_STATUS_DENIED
	case codes.FailedPrecondition:
		return yrdv1.CityStatus_CITY_STATUS_NOT_SERVED
	case codes.Unavailable:
		return yrdv1.CityStatus_CITY_STATUS_UNAVAILABLE
	case codes.DeadlineExceeded:
		return yrdv1.CityStatus_CITY_STATUS_DEADLINE_EXCEEDED
	}
	return yrdv1.CityStatus_CITY_STATUS_FAILED
}

// Execute runs a query for a member's requester on a dataset this node
// owns. The requester's city is the calling member's, whatever the
// request says: a node vouches only for its own city's principals.
func (s *peerService) Execute(req *yrdv1.ExecuteRequest, stream yrdv1grpc.PeerService_ExecuteServer) error {
	return s.n.drainable(stream.Context(), func(ctx context.Context) error { return s.execute(ctx, req, stream) })
}

func (s *peerService) execute(ctx context.Context, req *yrdv1.ExecuteRequest, stream yrdv1grpc.PeerService_ExecuteServer) error {
	m, err := s.callerMember(ctx)
	if err != nil {
		return err
	}
	if m.GetCity() == "" {
		return errorf(ErrPermissionDenied, "peer %s is not a registered city node", m.GetPeerId())
	}
	p := req.GetRequester()
	if p.GetOrg() == "" || p.GetName() == "" {
		return errorf(ErrInvalid, "requester: organisation and name are required")
	}
	p.City = m.GetCity()
	if req.GetQuery().GetDatasetId() == "" {
		return errorf(ErrInvalid, "query: an owner runs queries on one dataset id")
	}
	if req.GetBatchRows() > maxBatchRows {
		return errorf(ErrInvalid, "batch_rows: %d is over %d", req.GetBatchRows(), maxBatchRows)
	}
	release, err := s.n.acquireQuery(ctx, p, req.GetQuery())
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := s.n.withQueryTimeout(ctx)
	defer cancel()
	// The owner decides with its own replica, so it reads linearizably
	// itself: the home node's barrier does not make this replica current,
	// and a grant revoked (or a dataset re-graded) a moment ago must be
	// seen here.
	if err := s.n.readBarrier(ctx, yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); err != nil {
		return err
	}
	return s.n.owner.Execute(ctx, owner.Request{Query: req.GetQuery(), Purpose: req.GetPurpose(), Principal: p, Outside: m.GetOutsideMainland(),
		Explain: req.GetExplain(), BatchRows: int(req.GetBatchRows()), Columnar: req.GetColumnar()}, stream.Send)
}
