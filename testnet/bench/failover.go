package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// writersPerVoter is how many writers each voter's city has during a
// failover run.
const writersPerVoter = 2

// RunFailover writes continuously through every voter's city while it kills
// the leader's process kills times (SIGKILL), each after a steady spell,
// and measures from each kill to the first write acknowledged by a
// surviving city that started after the kill; the killed city is started
// again before the next kill.
func RunFailover(ctx context.Context, t *chaos.Testnet, kills int, steady time.Duration) (*Failover, error) {
	w, err := newFailoverWriters(ctx, t)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	w.start(wctx)
	defer func() { stop(); w.wg.Wait() }()
	f := &Failover{Command: fmt.Sprintf("yrdnode testnet bench --parts failover (%d kills of the leader, %d writers per voter)", kills, writersPerVoter)}
	for range kills {
		if err := sleepCtx(ctx, steady); err != nil {
			return nil, err
		}
		rec, err := w.killLeader(ctx, f)
		if err != nil {
			return nil, err
		}
		f.Recovery = append(f.Recovery, rec)
	}
	if err := sleepCtx(ctx, steady); err != nil {
		return nil, err
	}
	stop()
	w.wg.Wait()
	f.Timeline = w.samples
	return f, nil
}

// failoverWriters publish through every voter and record every write.
type failoverWriters struct {
	t       *chaos.Testnet
	voters  []int
	conns   []yrdv1grpc.CatalogServiceClient
	t0      time.Time
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []Sample
	acks    []failoverAck
}

type failoverAck struct {
	started, at time.Time
	city        int
}

func newFailoverWriters(ctx context.Context, t *chaos.Testnet) (*failoverWriters, error) {
	w := &failoverWriters{t: t, t0: time.Now()}
	for i, c := range t.State.Cities {
		if !c.Voter {
			continue
		}
		conn, err := t.Procs.ConnAs(i, c.ID+"-bench", yrdv1.Role_ROLE_PUBLISHER)
		if err != nil {
			return nil, err
		}
		w.voters, w.conns = append(w.voters, i), append(w.conns, yrdv1grpc.NewCatalogServiceClient(conn))
	}
	return w, nil
}

func (w *failoverWriters) start(ctx context.Context) {
	for v := range w.voters {
		for n := range writersPerVoter {
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.write(ctx, v, n)
			}()
		}
	}
}

// write publishes until ctx ends, each write bounded by 2 s.
func (w *failoverWriters) write(ctx context.Context, v, n int) {
	city := w.t.State.Cities[w.voters[v]].ID
	template := benchDataset(city)
	for i := 0; ctx.Err() == nil; i++ {
		d := proto.Clone(template).(*yrdv1.Dataset)
		d.Id = fmt.Sprintf("%s.bench.failover-%d-%d-%d", city, w.t0.UnixNano(), n, i)
		started := time.Now()
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := w.conns[v].PublishDataset(octx, &yrdv1.PublishDatasetRequest{Dataset: d})
		cancel()
		done := time.Now()
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.samples = append(w.samples, Sample{At: started.Sub(w.t0), Latency: done.Sub(started), OK: err == nil})
		if err == nil {
			w.acks = append(w.acks, failoverAck{started: started, at: done, city: w.voters[v]})
		}
		w.mu.Unlock()
		if err != nil {
			sleepCtx(ctx, 20*time.Millisecond) // a refused connection fails at once: do not spin
		}
	}
}

// killLeader kills the leader's process, waits for a survivor's
// acknowledged write that started after the kill, and starts the killed
// city again.
func (w *failoverWriters) killLeader(ctx context.Context, f *Failover) (time.Duration, error) {
	leader, err := w.t.Procs.Leader(ctx)
	if err != nil {
		return 0, err
	}
	killed := time.Now()
	if err := w.t.Procs.Kill(leader); err != nil {
		return 0, err
	}
	f.Kills = append(f.Kills, killed.Sub(w.t0))
	deadline := time.Now().Add(time.Minute)
	for {
		if at, ok := w.firstAckAfter(killed, leader); ok {
			return at.Sub(killed), restart(ctx, w.t, leader)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: no write acknowledged within a minute of killing %s", w.t.State.Cities[leader].ID)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func (w *failoverWriters) firstAckAfter(killed time.Time, leader int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, a := range w.acks {
		if a.city != leader && a.started.After(killed) && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	return first, !first.IsZero()
}

// sleepCtx waits d or until ctx ends: the steady spells of a benchmark.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
