package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// pollEvery is how often each city is asked whether a change has reached
// it: the resolution of Propagation's figures.
const pollEvery = 5 * time.Millisecond

// Propagation publishes n datasets, one at a time, through the leader's
// city and measures, for each, the time from its acknowledgement until
// every city's own replica serves it (stale reads, which a city answers
// from its replica alone).
func Propagation(ctx context.Context, t *chaos.Testnet, n int) (Single, error) {
	leader, err := t.Procs.Leader(ctx)
	if err != nil {
		return Single{}, err
	}
	city := t.State.Cities[leader].ID
	pub, err := t.Procs.ConnAs(leader, city+"-bench", yrdv1.Role_ROLE_PUBLISHER)
	if err != nil {
		return Single{}, err
	}
	conns := make([]*grpc.ClientConn, len(t.State.Cities))
	for i := range conns {
		if conns[i], err = t.Procs.Conn(i); err != nil {
			return Single{}, err
		}
	}
	template := benchDataset(city)
	run := time.Now().UnixNano()
	var all []time.Duration
	for k := range n {
		d := proto.Clone(template).(*yrdv1.Dataset)
		d.Id = fmt.Sprintf("%s.bench.spread-%d-%d", city, run, k)
		if _, err := yrdv1grpc.NewCatalogServiceClient(pub).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			return Single{}, fmt.Errorf("bench: publish %s: %w", d.Id, err)
		}
		acked := time.Now()
		last, err := readableEverywhere(ctx, conns, d.Id)
		if err != nil {
			return Single{}, err
		}
		all = append(all, last.Sub(acked))
	}
	p := summarise(1, all, 0)
	return Single{Name: fmt.Sprintf("catalog change on the leader readable on all %d cities (%d changes, polled every %v)", len(conns), n, pollEvery),
		Value: float64(p.P99) / float64(time.Millisecond), Unit: "ms p99", Point: &p}, nil
}

// readableEverywhere polls every city until its replica serves id and
// returns when the last one did.
func readableEverywhere(ctx context.Context, conns []*grpc.ClientConn, id string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var mu sync.Mutex
	var last time.Time
	var firstErr error
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := pollUntilServed(ctx, yrdv1grpc.NewCatalogServiceClient(conn), id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if at.After(last) {
				last = at
			}
		}()
	}
	wg.Wait()
	return last, firstErr
}

func pollUntilServed(ctx context.Context, cl yrdv1grpc.CatalogServiceClient, id string) (time.Time, error) {
	req := &yrdv1.GetDatasetRequest{Id: id, Consistency: yrdv1.ReadConsistency_READ_CONSISTENCY_STALE}
	for {
		if _, err := cl.GetDataset(ctx, req); err == nil {
			return time.Now(), nil
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return time.Time{}, fmt.Errorf("bench: %s never became readable: %w", id, err)
		}
	}
}

// FanoutResult is a family query asked while some owners were down.
type FanoutResult struct {
	Owners   int           // owners the query went to
	Answered []string      // cities whose part came back
	Missing  []string      // cities named as missing, with their reasons
	Down     []string      // cities that were stopped
	Latency  time.Duration // of the query with them down
}

// Fanout stops down owners (non-voters other than the first city), asks
// the first city a family query over the elderly population as an
// analyst, and starts them again.
func Fanout(ctx context.Context, t *chaos.Testnet, down int) (FanoutResult, error) {
	var victims []int
	for i := len(t.State.Cities) - 1; i > 0 && len(victims) < down; i-- {
		if !t.State.Cities[i].Voter {
			victims = append(victims, i)
		}
	}
	if len(victims) < down {
		return FanoutResult{}, fmt.Errorf("bench: %d non-voters to stop, want %d", len(victims), down)
	}
	analyst, err := t.Procs.ConnAs(0, t.State.Cities[0].ID+"-analytics", yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		return FanoutResult{}, err
	}
	// A row query: it spends no privacy budget, which a count over every
	// owner's part would (each part spends its own epsilon).
	q := &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: "SELECT district FROM family:" + sample.ElderlyPopulationSchemaID + " LIMIT 5"},
		Purpose: "elderly-care-planning"}
	cl := yrdv1grpc.NewQueryServiceClient(analyst)
	if err := everyOwnerAnswers(ctx, cl, q); err != nil {
		return FanoutResult{}, err
	}
	var r FanoutResult
	for _, i := range victims {
		if err := t.Procs.Kill(i); err != nil {
			return FanoutResult{}, err
		}
		r.Down = append(r.Down, t.State.Cities[i].ID)
	}
	start := time.Now()
	parts, err := familyParts(ctx, cl, q)
	r.Latency = time.Since(start)
	if rerr := restart(ctx, t, victims...); err == nil {
		err = rerr
	}
	if err != nil {
		return FanoutResult{}, err
	}
	r.Owners = len(parts)
	for _, p := range parts {
		if p.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			r.Answered = append(r.Answered, p.GetCity())
		} else {
			r.Missing = append(r.Missing, p.GetCity()+" ("+p.GetReason()+")")
		}
	}
	slices.Sort(r.Missing)
	return r, nil
}

// everyOwnerAnswers explains q until every owner would answer (an owner
// serves its dataset once it has checked its files), for up to 2 minutes.
// Explaining reads no data and spends no privacy budget.
func everyOwnerAnswers(ctx context.Context, cl yrdv1grpc.QueryServiceClient, q *yrdv1.QueryRequest) error {
	q = proto.Clone(q).(*yrdv1.QueryRequest)
	q.Explain = true
	deadline := time.Now().Add(2 * time.Minute)
	for {
		parts, err := familyParts(ctx, cl, q)
		ok := err == nil && len(parts) > 0
		for _, p := range parts {
			ok = ok && p.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: the family query never had every owner's part (%v): %v", err, parts)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil { // polling for a condition
			return err
		}
	}
}

// restart starts the stopped cities again and waits until they serve.
func restart(ctx context.Context, t *chaos.Testnet, cities ...int) error {
	for _, i := range cities {
		if err := t.Procs.Start(i); err != nil {
			return err
		}
		if err := t.Procs.WaitServing(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// familyParts runs q and returns its trailer's per-city results.
func familyParts(ctx context.Context, cl yrdv1grpc.QueryServiceClient, q *yrdv1.QueryRequest) ([]*yrdv1.CityResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stream, err := cl.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	var parts []*yrdv1.CityResult
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bench: family query: %w", err)
		}
		if tr := resp.GetTrailer(); tr != nil {
			parts = tr.GetCities()
		}
	}
}
