package synth

import (
	"math"
	"math/bits"
)

// golden is 2^64 divided by the golden ratio, SplitMix64's increment: odd,
// so adding it walks all 2^64 states before repeating.
const golden = 0x9e3779b97f4a7c15

// mix64 is SplitMix64's finaliser. It is a bijection of uint64, so distinct
// inputs stay distinct, and it avalanches well enough that nearby inputs
// (row 7 and row 8) give unrelated outputs.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashString is FNV-1a followed by mix64. It turns city and dataset ids into
// seeds; FNV alone leaves short, similar ids with similar low bits.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// derive combines a parent seed and a label into an independent child seed.
func derive(seed, label uint64) uint64 {
	return mix64(seed ^ mix64(label+golden))
}

// rng is SplitMix64: one add and a finaliser per draw, a fraction of
// math/rand/v2's PCG cost, and its whole state is one word, so a generator
// can be re-seeded per row cheaply. Rows seed their own rng from the row
// index, which makes every row a pure function of (seed, index).
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// intn returns a uniform int in [0, n) by Lemire's multiply-high; the bias
// is below 2^-40 for the n used here, far under anything a test can see.
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// between returns a uniform int in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

func (r *rng) chance(p float64) bool { return r.float() < p }

// normal returns an approximately standard normal deviate: the centred sum
// of four uniforms (Irwin–Hall), scaled to unit variance. One draw and no
// logarithm make it about five times cheaper than Box–Muller; tails are cut
// at ±3.46σ, which synthetic data clamps to plausible ranges anyway.
func (r *rng) normal() float64 {
	x := r.next()
	sum := x&0xffff + x>>16&0xffff + x>>32&0xffff + x>>48
	return (float64(sum)/65536 - 2) * math.Sqrt(3)
}

// lognormal returns a log-normal deviate with the given median.
func (r *rng) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*r.normal())
}

// pick returns an index drawn from cumulative weights cum (strictly
// increasing, last element the total). Lists are short, so a linear scan
// beats a binary search.
func (r *rng) pick(cum []uint32) int {
	x := uint32(r.intn(int(cum[len(cum)-1])))
	for i, c := range cum {
		if x < c {
			return i
		}
	}
	return len(cum) - 1
}

// pickHash is pick driven by a hash instead of an rng, for attributes that
// are a pure function of an entity (a resident's district).
func pickHash(h uint64, cum []uint32) int {
	hi, _ := bits.Mul64(h, uint64(cum[len(cum)-1]))
	x := uint32(hi)
	for i, c := range cum {
		if x < c {
			return i
		}
	}
	return len(cum) - 1
}

// cumulative returns the running sums of weights, for pick and pickHash.
// An entry of weight 0 is never picked; the total must be positive.
func cumulative(weights []uint32) []uint32 {
	cum := make([]uint32, len(weights))
	var t uint32
	for i, w := range weights {
		t += w
		cum[i] = t
	}
	return cum
}

// permute is a keyed bijection of [0, n): it maps x < n to a value < n, and
// distinct x to distinct values. Identifiers are permuted row indices, so
// they look random yet are unique by construction, with no set to remember.
// It cycle-walks a bijective mixer on the smallest power of two holding n;
// that domain is less than 2n, so fewer than two steps are expected.
func permute(x, n, key uint64) uint64 {
	if n <= 1 {
		return 0
	}
	w := uint(bits.Len64(n - 1))
	for {
		x = mixBits(x, w, key)
		if x < n {
			return x
		}
	}
}

// mixBits is a bijection of w-bit integers: each step (add a key, xor with a
// right shift of itself, multiply by an odd constant, all modulo 2^w) is
// invertible, so their composition is too.
func mixBits(x uint64, w uint, key uint64) uint64 {
	mask := uint64(1)<<w - 1
	if w == 64 {
		mask = ^uint64(0)
	}
	s := max(w/2, 1)
	x = (x + key) & mask
	x ^= x >> s
	x = (x * 0xbf58476d1ce4e5b9) & mask
	x ^= x >> s
	x = (x + key>>32) & mask
	x = (x * 0x94d049bb133111eb) & mask
	x ^= x >> s
	x = (x * 0xd6e8feb86659fd93) & mask
	x ^= x >> s
	return x
}
