package noise

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Mechanism names this package's mechanism in yrdv1.NoiseApplied.
const Mechanism = "discrete-laplace"

// MaxNoise bounds the magnitude of one draw of DiscreteLaplace. It is only
// reached for absurd scales (above about 2.4e14), where the float64
// arithmetic could otherwise overflow an int64.
const MaxNoise = 1 << 53

// Sampler draws noise. The zero Sampler uses crypto/rand.Reader.
type Sampler struct {
	// Rand is the source of random bits; nil means crypto/rand.Reader.
	// Other readers are for tests.
	Rand io.Reader
}

func (s Sampler) reader() io.Reader {
	if s.Rand == nil {
		return rand.Reader
	}
	return s.Rand
}

// DiscreteLaplace returns an integer k drawn with P(k) ∝ exp(−|k|/scale),
// for a finite scale > 0. Its mean is 0 and its variance
// 2q/(1−q)², q = exp(−1/scale).
//
// k is G1 − G2 for independent geometric variables on {0, 1, 2, ...} with
// success probability p = 1 − exp(−1/scale), each drawn by inverting its
// CDF: G = ⌊ln U / ln(1−p)⌋ for U uniform in (0, 1]. Since ln(1−p) is
// exactly −1/scale, this is computed as ⌊−ln(U)·scale⌋, which avoids
// rounding p first.
//
// Floating-point caveat: U is one of 2^53 equally spaced values and ln is
// not exactly rounded, so the probabilities are those of the ideal
// distribution only up to errors around 2^−53, and each G is at most
// ⌊53·ln 2·scale⌋ ≈ ⌊36.7·scale⌋, truncating a tail of probability about
// 2^−53. This is far below anything observable from released aggregates
// but means the guarantee is (ε, δ) with δ of that order rather than pure
// ε. Because the output is an integer, the output "holes" of a
// floating-point continuous Laplace sampler (Mironov 2012) do not arise.
// An exact sampler (Canonne, Kamath and Steinke 2020) would remove the
// caveat at some cost in speed. |k| is also clamped to MaxNoise.
//
// An error from the random source is returned, never hidden as zero noise.
func (s Sampler) DiscreteLaplace(scale float64) (int64, error) {
	if err := checkScale(scale); err != nil {
		return 0, err
	}
	var b [16]byte
	if _, err := io.ReadFull(s.reader(), b[:]); err != nil {
		return 0, fmt.Errorf("noise: read random bits: %w", err)
	}
	g1 := geometric(uniform(binary.BigEndian.Uint64(b[:8])), scale)
	g2 := geometric(uniform(binary.BigEndian.Uint64(b[8:])), scale)
	return g1 - g2, nil
}

func checkScale(scale float64) error {
	if !(scale > 0) || math.IsInf(scale, 1) {
		return fmt.Errorf("noise: scale %v must be positive and finite", scale)
	}
	return nil
}

// uniform maps 64 random bits to (0, 1]: the top 53 bits x give (x+1)/2^53,
// exact in float64 and never 0, so ln U is finite.
func uniform(bits uint64) float64 {
	return float64(bits>>11+1) / (1 << 53)
}

// geometric returns ⌊−ln(u)·scale⌋, the inverse CDF of the geometric
// distribution on {0, 1, ...} with P(G ≥ n) = exp(−n/scale), clamped to
// MaxNoise.
func geometric(u, scale float64) int64 {
	g := math.Floor(-math.Log(u) * scale)
	if !(g < MaxNoise) { // also +Inf when scale is huge
		return MaxNoise
	}
	return int64(g) // -ln(1) is -0, which converts to 0
}

// CountScale returns the scale for a count released with privacy parameter
// epsilon: sensitivity 1 over epsilon.
//
// Sensitivity 1 assumes each individual contributes at most one row, so
// that adding or removing one individual moves count(*) by at most 1. The
// connector counts distinct individuals for the minimum group size, but
// count(*) counts rows: where one individual can have m rows, the count's
// sensitivity is m and the scale must be m/epsilon (or the rows must be
// limited to one per individual before counting).
//
// An epsilon that is not positive and finite gives NaN, which
// DiscreteLaplace refuses.
func CountScale(epsilon float64) float64 {
	if !validEpsilon(epsilon) {
		return math.NaN()
	}
	return 1 / epsilon
}

// SumScale returns the scale for a sum of values clamped to [−bound, bound]
// and released with privacy parameter epsilon: sensitivity bound over
// epsilon (one row per individual, as for CountScale).
//
// NoisyFloat rounds the sum to an integer before adding noise; a rounded
// sum moves by at most ⌈bound⌉, so SumScale uses ⌈bound⌉ and its result is
// exactly bound/epsilon for the usual integer bounds.
//
// An epsilon or bound that is not positive and finite gives NaN, which
// DiscreteLaplace refuses.
func SumScale(epsilon, bound float64) float64 {
	if !validEpsilon(epsilon) || !(bound > 0) || math.IsInf(bound, 1) {
		return math.NaN()
	}
	return math.Ceil(bound) / epsilon
}

// Split returns each column's share when a query releasing n noisy
// aggregate columns is to spend epsilon in total: epsilon/n (sequential
// composition). The groups of a GROUP BY are disjoint and do not divide it
// further (parallel composition); see the package documentation.
//
// An epsilon that is not positive and finite, or n < 1, gives NaN.
func Split(epsilon float64, n int) float64 {
	if !validEpsilon(epsilon) || n < 1 {
		return math.NaN()
	}
	return epsilon / float64(n)
}

func validEpsilon(epsilon float64) bool {
	return epsilon > 0 && !math.IsInf(epsilon, 1)
}

// NoisyInt returns v plus DiscreteLaplace(scale) noise. It fails rather
// than wrap around if the sum overflows an int64.
func (s Sampler) NoisyInt(v int64, scale float64) (int64, error) {
	k, err := s.DiscreteLaplace(scale)
	if err != nil {
		return 0, err
	}
	if (k > 0 && v > math.MaxInt64-k) || (k < 0 && v < math.MinInt64-k) {
		return 0, fmt.Errorf("noise: %d plus noise %d overflows int64", v, k)
	}
	return v + k, nil
}

// NoisyFloat returns v, rounded to the nearest integer (halves upward),
// plus DiscreteLaplace(scale) noise, for a float sum.
//
// The noise is integer-valued, which is enough for the magnitudes of sums
// released here. Because of that, v is rounded first: adding integer noise
// to v itself would release v's fractional part exactly, and that part can
// tell whether one individual's value is in the sum. The result is
// therefore always integer-valued. Rounding moves a sum of values clamped
// to [−bound, bound] by at most ⌈bound⌉ per individual, which SumScale
// accounts for.
//
// v must be finite: a NaN or infinite sum means the values were not
// clamped, and is refused.
func (s Sampler) NoisyFloat(v float64, scale float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("noise: value %v is not finite", v)
	}
	k, err := s.DiscreteLaplace(scale)
	if err != nil {
		return 0, err
	}
	return roundHalfUp(v) + float64(k), nil
}

// roundHalfUp rounds v to the nearest integer, halves toward +∞. Unlike
// math.Round it commutes with adding an integer, which keeps the rounded
// sum's sensitivity at ⌈bound⌉.
func roundHalfUp(v float64) float64 {
	r := math.Floor(v)
	if v-r >= 0.5 {
		r++
	}
	return r
}

// ExpectedAbs is the expected absolute value of DiscreteLaplace(scale)
// noise, 2q/(1−q²) for q = exp(−1/scale): what `--explain` calls the
// expected error of a noisy count or sum. NaN for a scale DiscreteLaplace
// refuses.
func ExpectedAbs(scale float64) float64 {
	if checkScale(scale) != nil {
		return math.NaN()
	}
	q := math.Exp(-1 / scale)
	return 2 * q / (1 - q*q)
}

// StdDev is the standard deviation of DiscreteLaplace(scale) noise,
// sqrt(2q)/(1−q) for q = exp(−1/scale).
func StdDev(scale float64) float64 {
	if checkScale(scale) != nil {
		return math.NaN()
	}
	q := math.Exp(-1 / scale)
	return math.Sqrt(2*q) / (1 - q)
}
