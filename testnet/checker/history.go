package checker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// Op is one recorded call.
type Op struct {
	Client int       `json:"client"`
	In     Input     `json:"input"`
	Out    Output    `json:"output"`
	Call   time.Time `json:"call"`
	Return time.Time `json:"return"` // zero for an unknown outcome: it may take effect any time after Call
	Err    string    `json:"error,omitempty"`
}

// History collects operations from concurrent clients.
type History struct {
	mu  sync.Mutex
	ops []Op
}

func (h *History) add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Node is one city's endpoint as the clients use it.
type Node struct {
	City      string
	Publisher *grpc.ClientConn // a publisher of the org CITY-chaos
	CDO       *grpc.ClientConn // a CDO of that org
	Analyst   *grpc.ClientConn // reads and grant requests
}

// Org is the organisation that owns a city's checker datasets.
func Org(city string) string { return city + "-chaos" }

// writeResult classifies a write's error: definite outcomes, or unknown
// (a timeout or UNAVAILABLE may have been applied).
func writeResult(err error) Result {
	switch status.Code(err) {
	case codes.OK:
		return OK
	case codes.AlreadyExists:
		return Exists
	case codes.FailedPrecondition:
		return Conflict
	case codes.NotFound:
		return NotFound
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated:
		return Rejected
	case codes.Unavailable:
		// gRPC's own client-side error: this client could not connect
		// at all, so the call was never sent. (A node that cannot reach
		// the leader says so in its own words: unknown.)
		if dialFailed(err) {
			return Rejected
		}
	}
	return Unknown
}

// Client records its calls in a History.
type Client struct {
	ID      int
	H       *History
	Timeout time.Duration
}

// record runs call and records it; reads that fail are dropped (they
// change nothing), writes that fail without a definite answer are
// recorded as unknown.
func (c *Client) record(ctx context.Context, in Input, call func(ctx context.Context) (Output, error)) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	out, err := call(ctx)
	end := time.Now()
	read := in.Kind == Get || in.Kind == GetGrnt
	if err != nil {
		out = Output{Result: writeResult(err)}
		if read && out.Result != NotFound {
			return out, err
		}
	}
	op := Op{Client: c.ID, In: in, Out: out, Call: start, Return: end}
	if err != nil {
		op.Err = err.Error()
	}
	if out.Result == Unknown {
		op.Return = time.Time{}
	}
	c.H.add(op)
	if errors.Is(ctx.Err(), context.Canceled) {
		return out, ctx.Err()
	}
	return out, err
}

// Dataset is the checker's dataset for key, owned by city, with value as
// its title.
func Dataset(key, city, value string) *yrdv1.Dataset {
	return &yrdv1.Dataset{Id: key, OwnerCity: city, OwnerOrg: Org(city), Title: value, Sector: "civil-affairs",
		Level: yrdv1.ClassificationLevel_LEVEL_GENERAL, DataRights: &yrdv1.DataRights{Holder: Org(city)},
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{{Name: "a", Type: "INTEGER", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_NONE}}}}
}

// Publish publishes key (owned by n's city) with value at n.
func (c *Client) Publish(ctx context.Context, n Node, key, value string) (Output, error) {
	in := Input{Kind: Publish, Key: key, Value: value, Node: n.City}
	return c.record(ctx, in, func(ctx context.Context) (Output, error) {
		r, err := yrdv1grpc.NewCatalogServiceClient(n.Publisher).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: Dataset(key, n.City, value)})
		return Output{Result: OK, Version: r.GetDataset().GetVersion(), Value: r.GetDataset().GetTitle()}, err
	})
}

// Update sets key's value at n if its version is expected.
func (c *Client) Update(ctx context.Context, n Node, key string, expected uint64, value string) (Output, error) {
	in := Input{Kind: Update, Key: key, Value: value, Expected: expected, Node: n.City}
	return c.record(ctx, in, func(ctx context.Context) (Output, error) {
		r, err := yrdv1grpc.NewCatalogServiceClient(n.Publisher).UpdateDataset(ctx, &yrdv1.UpdateDatasetRequest{Dataset: Dataset(key, n.City, value), ExpectedVersion: expected})
		return Output{Result: OK, Version: r.GetDataset().GetVersion(), Value: r.GetDataset().GetTitle()}, err
	})
}

// Get reads key at n, linearizably.
func (c *Client) Get(ctx context.Context, n Node, key string) (Output, error) {
	in := Input{Kind: Get, Key: key, Node: n.City}
	return c.record(ctx, in, func(ctx context.Context) (Output, error) {
		r, err := yrdv1grpc.NewCatalogServiceClient(n.Analyst).GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: key,
			Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		return Output{Result: OK, Version: r.GetDataset().GetVersion(), Value: r.GetDataset().GetTitle()}, err
	})
}

// List lists the datasets of city's checker org at n, linearizably, and
// records it as one get per key of keys (absent keys as not found): a
// multi-key read split per key is a weaker but sound check.
func (c *Client) List(ctx context.Context, n Node, city string, keys []string) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	r, err := yrdv1grpc.NewCatalogServiceClient(n.Analyst).ListDatasets(ctx, &yrdv1.ListDatasetsRequest{OwnerOrg: Org(city),
		PageSize: 1000, Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
	end := time.Now()
	if err != nil {
		return err
	}
	if r.GetNextPageToken() != "" {
		return fmt.Errorf("list of %s: more than one page", Org(city))
	}
	got := map[string]*yrdv1.Dataset{}
	for _, d := range r.GetDatasets() {
		got[d.GetId()] = d
	}
	for _, k := range keys {
		out := Output{Result: NotFound}
		if d, ok := got[k]; ok {
			out = Output{Result: OK, Version: d.GetVersion(), Value: d.GetTitle()}
		}
		c.H.add(Op{Client: c.ID, In: Input{Kind: Get, Key: k, Node: n.City}, Out: out, Call: start, Return: end})
	}
	return nil
}

// Decide approves or revokes grant id at its owner's node n.
func (c *Client) Decide(ctx context.Context, n Node, id string, kind Kind) (Output, error) {
	in := Input{Kind: kind, Key: id, Node: n.City}
	return c.record(ctx, in, func(ctx context.Context) (Output, error) {
		g := yrdv1grpc.NewGrantServiceClient(n.CDO)
		req := &yrdv1.DecideGrantRequest{Id: id}
		var r *yrdv1.DecideGrantResponse
		var err error
		if kind == Approve {
			r, err = g.ApproveGrant(ctx, req)
		} else {
			r, err = g.RevokeGrant(ctx, req)
		}
		return Output{Result: OK, Value: grantState(r.GetGrant().GetState())}, err
	})
}

// GetGrant reads grant id at n, linearizably.
func (c *Client) GetGrant(ctx context.Context, n Node, id string) (Output, error) {
	in := Input{Kind: GetGrnt, Key: id, Node: n.City}
	return c.record(ctx, in, func(ctx context.Context) (Output, error) {
		r, err := yrdv1grpc.NewGrantServiceClient(n.Analyst).GetGrant(ctx, &yrdv1.GetGrantRequest{Id: id,
			Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		return Output{Result: OK, Value: grantState(r.GetGrant().GetState())}, err
	})
}

func grantState(s yrdv1.GrantState) string {
	switch s {
	case yrdv1.GrantState_GRANT_STATE_REQUESTED:
		return grantRequested
	case yrdv1.GrantState_GRANT_STATE_APPROVED:
		return grantApproved
	case yrdv1.GrantState_GRANT_STATE_REVOKED:
		return grantRevoked
	}
	return s.String()
}

// RequestGrant asks, as n's analyst, for a grant on dataset; the grant
// enters the history (as REQUESTED) only once its id is known.
func (c *Client) RequestGrant(ctx context.Context, n Node, dataset string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	r, err := yrdv1grpc.NewGrantServiceClient(n.Analyst).RequestGrant(ctx, &yrdv1.RequestGrantRequest{DatasetId: dataset,
		Purpose: "chaos-testing", ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES})
	return r.GetGrant().GetId(), err
}

// dialFailed says whether err is gRPC's client-side failure to connect.
func dialFailed(err error) bool {
	msg := status.Convert(err).Message()
	return status.Code(err) == codes.Unavailable && strings.HasPrefix(msg, "connection error:")
}
