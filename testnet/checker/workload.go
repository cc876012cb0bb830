package checker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Workload describes the clients' load.
type Workload struct {
	Nodes        []Node
	Clients      int           // concurrent clients
	KeysPerCity  int           // datasets per city the clients write
	MaxOps       int           // per client: the load is bounded in count...
	Duration     time.Duration // ...and in time
	OpTimeout    time.Duration
	Seed         uint64
	Log          *slog.Logger
	GrantsTarget func(city string) string // the dataset grants are requested on, per city
}

// Key is the checker dataset k of city.
func Key(city string, k int) string { return fmt.Sprintf("%s.chaos.k%02d", city, k) }

// GrantTarget is the dataset of city that grants are asked for; Setup
// publishes it.
func GrantTarget(city string) string { return city + ".chaos.grants" }

// Keys are the checker datasets of city.
func (w *Workload) Keys(city string) []string {
	out := make([]string, w.KeysPerCity)
	for k := range out {
		out[k] = Key(city, k)
	}
	return out
}

// Setup publishes each city's grant target (retrying until acknowledged
// or ctx ends).
func Setup(ctx context.Context, nodes []Node, timeout time.Duration) error {
	c := &Client{ID: -1, H: &History{}, Timeout: timeout}
	for _, n := range nodes {
		for {
			_, err := c.Publish(ctx, n, GrantTarget(n.City), "grants")
			if err == nil || writeResult(err) == Exists {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("publishing %s: %w", GrantTarget(n.City), err)
			}
		}
	}
	return nil
}

// Run drives the clients until each has done MaxOps operations, Duration
// has passed or ctx ends, and returns the history.
func (w *Workload) Run(ctx context.Context, h *History) {
	ctx, cancel := context.WithTimeout(ctx, w.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for i := range w.Clients {
		wg.Add(1)
		go func() { // owned by Run: ends at MaxOps or ctx's end
			defer wg.Done()
			w.client(ctx, &Client{ID: i, H: h, Timeout: w.OpTimeout})
		}()
	}
	wg.Wait()
}

// clientState is what one client remembers between operations.
type clientState struct {
	rng     *rand.Rand
	version map[string]uint64 // last version seen per key
	// quietUntil: after a write with an unknown outcome the client only
	// reads for a while, so unknown writes (each open to the end of the
	// history, which makes checking exponential) stay few.
	quietUntil time.Time
	grants     []grantRef
	n          int
}

type grantRef struct {
	id    string
	owner int // index of the owner's node
	step  int // 0 requested, 1 approve sent, 2 revoke sent
}

func (w *Workload) client(ctx context.Context, c *Client) {
	st := &clientState{rng: rand.New(rand.NewPCG(w.Seed, uint64(c.ID))), version: map[string]uint64{}}
	for ; st.n < w.MaxOps && ctx.Err() == nil; st.n++ {
		if err := w.step(ctx, c, st); err != nil && dialFailed(err) {
			// The node is down: pace the retries (workload, not ordering).
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// step does one random operation.
func (w *Workload) step(ctx context.Context, c *Client, st *clientState) error {
	owner := st.rng.IntN(len(w.Nodes))
	any := w.Nodes[st.rng.IntN(len(w.Nodes))]
	key := Key(w.Nodes[owner].City, st.rng.IntN(w.KeysPerCity))
	value := fmt.Sprintf("c%d-%d", c.ID, st.n)
	r := st.rng.IntN(100)
	if time.Now().Before(st.quietUntil) && (r < 35 || r >= 80) {
		r = 50
	}
	switch {
	case r < 35:
		v, seen := st.version[key]
		var out Output
		var err error
		if !seen {
			out, err = c.Publish(ctx, w.Nodes[owner], key, value)
		} else if v == 0 { // exists, version not yet seen
			out, err = c.Get(ctx, any, key)
		} else {
			out, err = c.Update(ctx, w.Nodes[owner], key, v, value)
		}
		if out.Result == OK || out.Result == Exists {
			st.version[key] = max(out.Version, st.version[key])
		} else if out.Result == Unknown {
			st.quietUntil = time.Now().Add(time.Second)
		}
		return err
	case r < 70:
		out, err := c.Get(ctx, any, key)
		if err == nil {
			st.version[key] = out.Version
		}
		return err
	case r < 80:
		city := w.Nodes[owner].City
		return c.List(ctx, any, city, w.Keys(city))
	}
	return w.grantStep(ctx, c, st, owner, any)
}

// grantStep requests a grant, or moves one of the client's grants on
// (approve, then revoke), or reads one.
func (w *Workload) grantStep(ctx context.Context, c *Client, st *clientState, owner int, any Node) error {
	if len(st.grants) == 0 || st.rng.IntN(3) == 0 {
		id, err := c.RequestGrant(ctx, any, GrantTarget(w.Nodes[owner].City))
		if err == nil {
			st.grants = append(st.grants, grantRef{id: id, owner: owner})
		}
		return err
	}
	g := &st.grants[st.rng.IntN(len(st.grants))]
	switch {
	case g.step == 0 || (g.step == 1 && st.rng.IntN(2) == 0):
		kind := Approve
		if g.step == 1 {
			kind = Revoke
		}
		out, err := c.Decide(ctx, w.Nodes[g.owner], g.id, kind)
		if out.Result == Unknown {
			st.quietUntil = time.Now().Add(time.Second)
		}
		g.step++
		return err
	}
	_, err := c.GetGrant(ctx, any, g.id)
	return err
}
