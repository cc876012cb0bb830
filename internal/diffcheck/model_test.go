package diffcheck

import (
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"
)

// TestReleaseAgainstModel runs random results over 64 persons — many of
// them small changes of earlier ones — and checks every released group and
// union against the true sets remembered so far: it either equals one of
// them (asked again) or differs from every one, and from the other groups
// of its result, by 0 or at least k persons.
func TestReleaseAgainstModel(t *testing.T) {
	const k = 5
	s, _ := openStore(t)
	rng := rand.New(rand.NewPCG(7, 8))
	var model []uint64 // the person sets of the remembered entries
	far := func(a, b uint64) bool { d := bits.OnesCount64(a ^ b); return d == 0 || d >= k }
	released := 0
	for op := range 700 {
		set := rng.Uint64()
		if len(model) > 0 && rng.IntN(4) > 0 {
			set = model[rng.IntN(len(model))]
			for range 1 + rng.IntN(6) {
				set ^= 1 << rng.IntN(64)
			}
		}
		parts := splitSet(rng, set, 1+rng.IntN(3))
		groups := make([]*Sketch, len(parts))
		for i, p := range parts {
			groups[i] = bitsSketch(p)
		}
		out := release(t, s, testScope, k, t0.Add(time.Duration(op)*time.Minute), groups...)
		var accepted []uint64
		for i, p := range parts {
			if !out.Suppressed[i] && !containsSet(accepted, p) {
				accepted = append(accepted, p)
			}
		}
		check := func(what string, x uint64) {
			if containsSet(model, x) {
				return
			}
			for _, m := range model {
				if !far(x, m) {
					t.Fatalf("op %d: %s %064b released %d persons from remembered %064b", op, what, x, bits.OnesCount64(x^m), m)
				}
			}
		}
		for i, a := range accepted {
			check("group", a)
			for _, b := range accepted[:i] {
				if !far(a, b) {
					t.Fatalf("op %d: two groups of one result differ by %d", op, bits.OnesCount64(a^b))
				}
			}
		}
		var union uint64
		for _, a := range accepted {
			union |= a
		}
		if len(accepted) >= 2 {
			check("union", union)
		}
		model = append(model, accepted...)
		if len(accepted) >= 2 {
			model = append(model, union)
		}
		released += len(accepted)
	}
	t.Logf("%d groups released, %d entries remembered", released, stored(t, s))
}

// splitSet partitions set into at most n non-empty disjoint parts.
func splitSet(rng *rand.Rand, set uint64, n int) []uint64 {
	parts := make([]uint64, n)
	for i := range 64 {
		if set&(1<<i) != 0 {
			parts[rng.IntN(n)] |= 1 << i
		}
	}
	out := parts[:0]
	for _, p := range parts {
		if p != 0 {
			out = append(out, p)
		}
	}
	return out
}

func bitsSketch(set uint64) *Sketch {
	s := newSketch(CellsFor(5))
	for i := range 64 {
		if set&(1<<i) != 0 {
			s.Add(person(i))
		}
	}
	return s
}

func containsSet(sets []uint64, x uint64) bool {
	for _, s := range sets {
		if s == x {
			return true
		}
	}
	return false
}
