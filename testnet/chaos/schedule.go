package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Episode is one fault and its undoing.
type Episode string

const (
	KillLeader        Episode = "kill-leader"        // kill -9 the leader, restart it
	KillFollower      Episode = "kill-follower"      // kill -9 a follower, restart it
	PauseFollower     Episode = "pause-follower"     // SIGSTOP a follower, SIGCONT it
	PauseLeader       Episode = "pause-leader"       // SIGSTOP the leader, SIGCONT it
	IsolateLeader     Episode = "isolate-leader"     // partition the leader alone, heal
	PartitionMinority Episode = "partition-minority" // partition a minority of voters, heal
	OneWayCut         Episode = "one-way-cut"        // drop leader → one follower only, heal
	LossSpike         Episode = "loss"               // 30% loss on one city, heal
	DelaySpike        Episode = "delay"              // +50 ms on one city (netns mode: the delayer), heal
	RestartAll        Episode = "restart-all"        // stop every city cleanly, start all
)

// AllEpisodes are the episodes a seeded schedule picks from.
var AllEpisodes = []Episode{KillLeader, KillFollower, PauseFollower, PauseLeader, IsolateLeader,
	PartitionMinority, OneWayCut, LossSpike, DelaySpike, RestartAll}

// Schedule says which faults to inject and for how long.
type Schedule struct {
	Seed     uint64
	Duration time.Duration // the schedule ends after this
	// Episodes, if set, run in this order (once each) instead of a seeded
	// random choice from AllEpisodes.
	Episodes []Episode
	Hold     time.Duration // how long a fault lasts (a random part is added)
	Gap      time.Duration // healthy time between faults
	// CheckTimeout bounds porcupine's search.
	CheckTimeout time.Duration
}

// RunSchedule injects faults until the schedule ends or ctx does, and
// leaves the network healed and every city running.
func (t *Testnet) RunSchedule(ctx context.Context, s Schedule) error {
	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b9))
	deadline := time.Now().Add(s.Duration)
	for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
		var e Episode
		if s.Episodes != nil {
			if k >= len(s.Episodes) {
				break
			}
			e = s.Episodes[k]
		} else {
			e = AllEpisodes[rng.IntN(len(AllEpisodes))]
		}
		if e == DelaySpike && t.State.DelayerPid == 0 {
			continue
		}
		hold := s.Hold + time.Duration(rng.Int64N(int64(s.Hold)/2+1))
		if err := t.episode(ctx, e, hold, rng); err != nil {
			t.log.Warn("episode failed", "episode", e, "err", err)
		}
		sleep(ctx, s.Gap) // the workload: healthy time between faults
	}
	return t.Recover(ctx)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// voters are the indexes of the voting cities.
func (t *Testnet) voters() []int {
	var out []int
	for i, c := range t.State.Cities {
		if c.Voter {
			out = append(out, i)
		}
	}
	return out
}

// leaderOr returns the leader, or a random voter if none is found soon.
func (t *Testnet) leaderOr(ctx context.Context, rng *rand.Rand) int {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if l, err := t.Procs.Leader(lctx); err == nil {
		return l
	}
	v := t.voters()
	return v[rng.IntN(len(v))]
}

// follower returns a random running voter other than leader.
func (t *Testnet) follower(leader int, rng *rand.Rand) int {
	var out []int
	for _, v := range t.voters() {
		if v != leader {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return leader
	}
	return out[rng.IntN(len(out))]
}

func (t *Testnet) episode(ctx context.Context, e Episode, hold time.Duration, rng *rand.Rand) error {
	leader := t.leaderOr(ctx, rng)
	f := t.follower(leader, rng)
	inject, undo := t.faultPair(e, leader, f, rng)
	if inject == nil {
		return fmt.Errorf("unknown episode %q", e)
	}
	if err := inject(); err != nil {
		return err
	}
	if undo == nil {
		return nil
	}
	sleep(ctx, hold) // the fault lasts this long: the workload runs through it
	return undo()
}

// faultPair returns an episode's fault and its undoing (nil if none).
func (t *Testnet) faultPair(e Episode, leader, f int, rng *rand.Rand) (inject, undo func() error) {
	switch e {
	case KillLeader:
		return func() error { return t.Kill(leader) }, func() error { return t.Restart(leader) }
	case KillFollower:
		return func() error { return t.Kill(f) }, func() error { return t.Restart(f) }
	case PauseFollower:
		return func() error { return t.Pause(f) }, func() error { return t.Resume(f) }
	case PauseLeader:
		return func() error { return t.Pause(leader) }, func() error { return t.Resume(leader) }
	case IsolateLeader:
		return func() error { return t.Partition([]int{leader}) }, t.Heal
	case PartitionMinority:
		v := t.voters()
		rng.Shuffle(len(v), func(a, b int) { v[a], v[b] = v[b], v[a] })
		group := v[:max(1, (len(v)-1)/2)]
		return func() error { return t.Partition(group) }, t.Heal
	case OneWayCut:
		return func() error { return t.CutOneWay(leader, f) }, t.Heal
	case LossSpike:
		return func() error { return t.Loss(f, 30) }, t.Heal
	case DelaySpike:
		return func() error { return t.Delay(f, 50) }, t.Heal
	case RestartAll:
		return t.RestartAll, nil
	}
	return nil, nil
}

// Recover heals the network, resumes paused cities and starts stopped
// ones.
func (t *Testnet) Recover(ctx context.Context) error {
	if len(t.State.Cuts) > 0 || len(t.State.Loss) > 0 || len(t.State.DelayMs) > 0 {
		if err := t.Heal(); err != nil {
			return err
		}
	}
	for i := range t.State.Cities {
		if t.Procs.Pid(i) == 0 {
			if err := t.Restart(i); err != nil {
				return err
			}
		} else if paused(t.Procs.Pid(i)) {
			if err := t.Resume(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// WaitAll waits until every city serves.
func (t *Testnet) WaitAll(ctx context.Context) error {
	for i := range t.State.Cities {
		if err := t.Procs.WaitServing(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// Names are the city ids of idx.
func (t *Testnet) Names(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, t.State.Cities[i].ID)
	}
	return slices.Clip(out)
}
