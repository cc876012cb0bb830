package noise

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"math"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

// exactVariance is the variance of the discrete Laplace distribution with
// scale t: 2q/(1−q)², q = e^(−1/t).
func exactVariance(t float64) float64 {
	q := math.Exp(-1 / t)
	return 2 * q / ((1 - q) * (1 - q))
}

// exactP is P(k) for the discrete Laplace distribution with scale t:
// (1−q)/(1+q)·q^|k|.
func exactP(k int64, t float64) float64 {
	q := math.Exp(-1 / t)
	return (1 - q) / (1 + q) * math.Pow(q, math.Abs(float64(k)))
}

func draw(t *testing.T, s Sampler, scale float64, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for i := range out {
		k, err := s.DiscreteLaplace(scale)
		if err != nil {
			t.Fatalf("DiscreteLaplace(%v): %v", scale, err)
		}
		out[i] = k
	}
	return out
}

func meanVar(xs []int64) (mean, variance float64) {
	for _, x := range xs {
		mean += float64(x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		d := float64(x) - mean
		variance += d * d
	}
	variance /= float64(len(xs) - 1)
	return mean, variance
}

func TestDiscreteLaplaceRejectsBadScale(t *testing.T) {
	for _, scale := range []float64{0, math.Copysign(0, -1), -1, -1e-300, math.NaN(), math.Inf(1), math.Inf(-1)} {
		k, err := Sampler{}.DiscreteLaplace(scale)
		if err == nil {
			t.Errorf("DiscreteLaplace(%v) = %d, want an error", scale, k)
		} else if !strings.Contains(err.Error(), "scale") {
			t.Errorf("DiscreteLaplace(%v) error %q does not mention the scale", scale, err)
		}
		if _, err := (Sampler{}).NoisyInt(10, scale); err == nil {
			t.Errorf("NoisyInt(10, %v) succeeded", scale)
		}
		if _, err := (Sampler{}).NoisyFloat(10, scale); err == nil {
			t.Errorf("NoisyFloat(10, %v) succeeded", scale)
		}
	}
	// The smallest positive scale is valid; it gives no noise at all.
	if k, err := (Sampler{}).DiscreteLaplace(math.SmallestNonzeroFloat64); err != nil || k != 0 {
		t.Errorf("DiscreteLaplace(smallest positive) = %d, %v; want 0, nil", k, err)
	}
}

// TestDiscreteLaplaceStatistics checks 200,000 draws from crypto/rand (the
// zero Sampler) at scale 2 against the exact distribution.
func TestDiscreteLaplaceStatistics(t *testing.T) {
	const scale, n = 2.0, 200000
	xs := draw(t, Sampler{}, scale, n)
	mean, variance := meanVar(xs)
	counts := map[int64]int{}
	for _, x := range xs {
		counts[x]++
	}
	freq := func(k int64) float64 { return float64(counts[k]) / n }

	t.Run("mean", func(t *testing.T) {
		if math.Abs(mean) > 0.05 {
			t.Errorf("mean = %.4f, want within 0.05 of 0", mean)
		}
	})
	t.Run("variance", func(t *testing.T) {
		want := exactVariance(scale)
		if rel := math.Abs(variance-want) / want; rel > 0.03 {
			t.Errorf("variance = %.4f, exact %.4f (off by %.1f%%, want within 3%%)", variance, want, 100*rel)
		}
	})
	t.Run("P(0)", func(t *testing.T) {
		want := exactP(0, scale)
		if got := freq(0); math.Abs(got-want) > 0.01 {
			t.Errorf("P(0) = %.4f, exact %.4f, want within 0.01", got, want)
		}
	})
	t.Run("symmetry", func(t *testing.T) {
		for k := int64(1); k <= 8; k++ {
			pos, neg := float64(counts[k]), float64(counts[-k])
			// Under symmetry pos−neg has standard deviation about √(pos+neg).
			if d := math.Abs(pos - neg); d > 5*math.Sqrt(pos+neg)+1 {
				t.Errorf("counts of %d and %d are %v and %v: too different for a symmetric distribution", k, -k, pos, neg)
			}
		}
		var above, below int
		for _, x := range xs {
			switch {
			case x > 0:
				above++
			case x < 0:
				below++
			}
		}
		if d := math.Abs(float64(above - below)); d > 5*math.Sqrt(float64(above+below)) {
			t.Errorf("%d draws above 0 and %d below", above, below)
		}
	})
	t.Run("shape", func(t *testing.T) {
		// Pearson's chi-squared over k = −12..12 and the two tails.
		const K = 12
		tail := 0.0
		for k := int64(K + 1); k < 200; k++ {
			tail += exactP(k, scale)
		}
		var lo, hi int
		for _, x := range xs {
			if x < -K {
				lo++
			} else if x > K {
				hi++
			}
		}
		chi2 := 0.0
		add := func(observed int, p float64) {
			e := p * n
			chi2 += (float64(observed) - e) * (float64(observed) - e) / e
		}
		for k := int64(-K); k <= K; k++ {
			add(counts[k], exactP(k, scale))
		}
		add(lo, tail)
		add(hi, tail)
		// 27 bins, 26 degrees of freedom: P(χ² > 80) is below 1e-6.
		if chi2 > 80 {
			t.Errorf("chi-squared = %.1f over 27 bins; the draws do not follow the discrete Laplace distribution", chi2)
		}
		t.Logf("chi-squared = %.1f (26 degrees of freedom)", chi2)
	})
}

func TestDiscreteLaplaceVarianceGrowsWithScale(t *testing.T) {
	s := Sampler{Rand: bufio.NewReaderSize(rand.Reader, 1<<16)}
	prev := 0.0
	for _, scale := range []float64{0.25, 0.5, 1, 4, 16} {
		_, v := meanVar(draw(t, s, scale, 100000))
		want := exactVariance(scale)
		if rel := math.Abs(v-want) / want; rel > 0.05 {
			t.Errorf("scale %v: variance %.4f, exact %.4f (off by %.1f%%)", scale, v, want, 100*rel)
		}
		if v <= prev {
			t.Errorf("scale %v: variance %.4f is not larger than at the previous, smaller scale (%.4f)", scale, v, prev)
		}
		prev = v
	}
}

func TestDeterministicReaderReproduces(t *testing.T) {
	seq := func(seed byte) []int64 {
		var key [32]byte
		key[0] = seed
		return draw(t, Sampler{Rand: mrand.NewChaCha8(key)}, 3, 1000)
	}
	a, b, c := seq(1), seq(1), seq(2)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d: %d then %d from the same seed", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("different seeds gave the same draws")
	}
}

// bitsFor returns 8 bytes that uniform maps to u = (x+1)/2^53.
func bitsFor(x uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, x<<11)
}

const (
	xTwoToMinus10 = 1<<43 - 1 // u = 2^−10
	xOne          = 1<<53 - 1 // u = 1
	xSmallest     = 0         // u = 2^−53
)

func TestDiscreteLaplaceInverseCDF(t *testing.T) {
	tests := []struct {
		name   string
		x1, x2 uint64
		scale  float64
		want   int64
	}{
		// −ln(2^−10) = 6.93
		{"positive", xTwoToMinus10, xOne, 1, 6},
		{"negative", xOne, xTwoToMinus10, 1, -6},
		{"scale 3", xTwoToMinus10, xOne, 3, 20},
		{"equal draws cancel", xTwoToMinus10, xTwoToMinus10, 5, 0},
		{"u = 1 gives 0", xOne, xOne, 1000, 0},
		// −ln(2^−53) = 36.74, the largest a single draw can be per unit scale.
		{"largest draw", xSmallest, xOne, 1, 36},
		{"clamped", xSmallest, xOne, 1e300, MaxNoise},
		{"clamped negative", xOne, xSmallest, math.MaxFloat64, -MaxNoise},
		{"both clamped", xSmallest, xSmallest, math.MaxFloat64, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := append(bitsFor(tt.x1), bitsFor(tt.x2)...)
			k, err := Sampler{Rand: bytes.NewReader(src)}.DiscreteLaplace(tt.scale)
			if err != nil {
				t.Fatal(err)
			}
			if k != tt.want {
				t.Fatalf("DiscreteLaplace(%v) = %d, want %d", tt.scale, k, tt.want)
			}
		})
	}
	// The low 11 bits of each 64-bit word are not used.
	if u := uniform(0x7ff); u != uniform(0) || u != 1.0/(1<<53) {
		t.Errorf("uniform(0x7ff) = %v, want 2^-53", u)
	}
	if u := uniform(math.MaxUint64); u != 1 {
		t.Errorf("uniform(max) = %v, want 1", u)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReaderErrorIsNotZeroNoise(t *testing.T) {
	boom := errors.New("entropy source broken")
	readers := map[string]io.Reader{
		"error":     errReader{boom},
		"empty":     bytes.NewReader(nil),
		"short":     bytes.NewReader(make([]byte, 15)),
		"one word":  bytes.NewReader(make([]byte, 8)),
		"err later": io.MultiReader(bytes.NewReader(make([]byte, 10)), errReader{boom}),
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			s := Sampler{Rand: r}
			if k, err := s.DiscreteLaplace(2); err == nil {
				t.Fatalf("DiscreteLaplace = %d with a failing reader, want an error", k)
			}
		})
	}
	s := Sampler{Rand: errReader{boom}}
	if _, err := s.DiscreteLaplace(2); !errors.Is(err, boom) {
		t.Errorf("DiscreteLaplace error %v does not wrap the reader's", err)
	}
	if v, err := s.NoisyInt(1234, 2); err == nil || v == 1234 {
		t.Errorf("NoisyInt = %d, %v; want an error and not the exact value", v, err)
	}
	if v, err := s.NoisyFloat(1234, 2); err == nil || v == 1234 {
		t.Errorf("NoisyFloat = %v, %v; want an error and not the exact value", v, err)
	}
}

// zeroNoise repeats one byte, so both geometric draws are equal and the
// noise is 0.
type zeroNoise struct{}

func (zeroNoise) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0x5a
	}
	return len(p), nil
}

func TestNoisyInt(t *testing.T) {
	if v, err := (Sampler{Rand: zeroNoise{}}).NoisyInt(1234, 2); err != nil || v != 1234 {
		t.Errorf("NoisyInt with zero noise = %d, %v; want 1234", v, err)
	}
	plus6 := func() io.Reader { return bytes.NewReader(append(bitsFor(xTwoToMinus10), bitsFor(xOne)...)) }
	minus6 := func() io.Reader { return bytes.NewReader(append(bitsFor(xOne), bitsFor(xTwoToMinus10)...)) }
	if v, err := (Sampler{Rand: plus6()}).NoisyInt(100, 1); err != nil || v != 106 {
		t.Errorf("NoisyInt(100) with noise +6 = %d, %v", v, err)
	}
	if v, err := (Sampler{Rand: minus6()}).NoisyInt(100, 1); err != nil || v != 94 {
		t.Errorf("NoisyInt(100) with noise -6 = %d, %v", v, err)
	}
	if v, err := (Sampler{Rand: plus6()}).NoisyInt(math.MaxInt64-3, 1); err == nil {
		t.Errorf("NoisyInt(MaxInt64-3) with noise +6 = %d, want an overflow error", v)
	}
	if v, err := (Sampler{Rand: minus6()}).NoisyInt(math.MinInt64+3, 1); err == nil {
		t.Errorf("NoisyInt(MinInt64+3) with noise -6 = %d, want an overflow error", v)
	}
	if v, err := (Sampler{Rand: minus6()}).NoisyInt(math.MaxInt64, 1); err != nil || v != math.MaxInt64-6 {
		t.Errorf("NoisyInt(MaxInt64) with noise -6 = %d, %v", v, err)
	}

	// With real randomness the noisy values spread around the true one.
	var sum float64
	const n = 20000
	for range n {
		v, err := Sampler{}.NoisyInt(1000, CountScale(1))
		if err != nil {
			t.Fatal(err)
		}
		sum += float64(v)
	}
	if mean := sum / n; math.Abs(mean-1000) > 0.1 {
		t.Errorf("mean of noisy 1000 = %.3f", mean)
	}
}

func TestNoisyFloat(t *testing.T) {
	s := Sampler{Rand: zeroNoise{}}
	tests := []struct{ v, want float64 }{
		{0, 0},
		{2.4, 2},
		{2.5, 3},
		{2.6, 3},
		{-2.4, -2},
		{-2.5, -2},
		{-2.6, -3},
		{-0.2, 0},
		{1234.999, 1235},
		{1 << 60, 1 << 60},
		{-(1 << 60), -(1 << 60)},
		{1<<52 + 1, 1<<52 + 1},
	}
	for _, tt := range tests {
		got, err := s.NoisyFloat(tt.v, 3)
		if err != nil || got != tt.want {
			t.Errorf("NoisyFloat(%v) with zero noise = %v, %v; want %v", tt.v, got, err, tt.want)
		}
	}
	plus6 := bytes.NewReader(append(bitsFor(xTwoToMinus10), bitsFor(xOne)...))
	if got, err := (Sampler{Rand: plus6}).NoisyFloat(10.25, 1); err != nil || got != 16 {
		t.Errorf("NoisyFloat(10.25) with noise +6 = %v, %v; want 16", got, err)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := s.NoisyFloat(v, 3); err == nil {
			t.Errorf("NoisyFloat(%v) = %v, want an error", v, got)
		}
	}
	// The fractional part of the true value is never released.
	for range 1000 {
		got, err := Sampler{}.NoisyFloat(1000.37, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got != math.Trunc(got) {
			t.Fatalf("NoisyFloat(1000.37) = %v, not an integer", got)
		}
	}
}

// TestRoundHalfUpSensitivity checks what SumScale relies on: rounding
// commutes with adding an integer, so sums at most b apart round to
// integers at most ⌈b⌉ apart.
func TestRoundHalfUpSensitivity(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for range 100000 {
		// x is a multiple of 2^-20, so x+n is exact and halves occur.
		x := float64(r.Int64N(1<<40)-1<<39) / (1 << 20)
		n := float64(r.IntN(2001) - 1000)
		if got, want := roundHalfUp(x+n), roundHalfUp(x)+n; got != want {
			t.Fatalf("roundHalfUp(%v + %v) = %v, want %v", x, n, got, want)
		}
		b := r.Float64() * 10
		y := x + (r.Float64()*2-1)*b
		if d := math.Abs(roundHalfUp(x) - roundHalfUp(y)); d > math.Ceil(b) {
			t.Fatalf("|round(%v) - round(%v)| = %v > ceil(%v)", x, y, d, b)
		}
	}
	// math.Round would not do: it rounds -0.5 to -1 and 0.5 to 1, two
	// apart for inputs one apart.
	if d := roundHalfUp(0.5) - roundHalfUp(-0.5); d != 1 {
		t.Fatalf("round(0.5) - round(-0.5) = %v, want 1", d)
	}
}

func TestScales(t *testing.T) {
	eq := func(name string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	eq("CountScale(0.5)", CountScale(0.5), 2)
	eq("CountScale(2)", CountScale(2), 0.5)
	eq("SumScale(0.5, 100)", SumScale(0.5, 100), 200)
	eq("SumScale(1, 2.5)", SumScale(1, 2.5), 3)
	eq("SumScale(2, 0.1)", SumScale(2, 0.1), 0.5)
	eq("Split(1, 4)", Split(1, 4), 0.25)
	eq("Split(0.3, 1)", Split(0.3, 1), 0.3)

	nan := map[string]float64{
		"CountScale(0)":       CountScale(0),
		"CountScale(-1)":      CountScale(-1),
		"CountScale(NaN)":     CountScale(math.NaN()),
		"CountScale(+Inf)":    CountScale(math.Inf(1)),
		"SumScale(0, 10)":     SumScale(0, 10),
		"SumScale(-1, -10)":   SumScale(-1, -10),
		"SumScale(1, 0)":      SumScale(1, 0),
		"SumScale(1, -10)":    SumScale(1, -10),
		"SumScale(1, NaN)":    SumScale(1, math.NaN()),
		"SumScale(1, +Inf)":   SumScale(1, math.Inf(1)),
		"Split(1, 0)":         Split(1, 0),
		"Split(1, -2)":        Split(1, -2),
		"Split(0, 2)":         Split(0, 2),
		"Split(NaN, 2)":       Split(math.NaN(), 2),
		"CountScale(Split..)": CountScale(Split(1, 0)),
	}
	for name, v := range nan {
		if !math.IsNaN(v) {
			t.Errorf("%s = %v, want NaN", name, v)
		}
		if _, err := (Sampler{}).DiscreteLaplace(v); err == nil {
			t.Errorf("DiscreteLaplace(%s) succeeded", name)
		}
	}
	// A tiny epsilon gives an infinite scale, which is refused too.
	if _, err := (Sampler{}).DiscreteLaplace(CountScale(1e-320)); err == nil {
		t.Error("DiscreteLaplace(CountScale(1e-320)) succeeded")
	}
}

func BenchmarkDiscreteLaplace(b *testing.B) {
	b.Run("crypto-rand", func(b *testing.B) {
		b.ReportAllocs()
		var s Sampler
		for b.Loop() {
			if _, err := s.DiscreteLaplace(2); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chacha8", func(b *testing.B) {
		b.ReportAllocs()
		s := Sampler{Rand: mrand.NewChaCha8([32]byte{})}
		for b.Loop() {
			if _, err := s.DiscreteLaplace(2); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestExpectedAbsAndStdDevMatchSamples: the closed forms agree with the
// sampler's own draws (seeded, so the test is deterministic).
func TestExpectedAbsAndStdDevMatchSamples(t *testing.T) {
	for _, scale := range []float64{0.5, 2, 20} {
		var key [32]byte
		key[0] = byte(scale * 10)
		s := Sampler{Rand: mrand.NewChaCha8(key)}
		const n = 200000
		var sumAbs, sumSq float64
		for range n {
			k, err := s.DiscreteLaplace(scale)
			if err != nil {
				t.Fatal(err)
			}
			sumAbs += math.Abs(float64(k))
			sumSq += float64(k) * float64(k)
		}
		if got, want := sumAbs/n, ExpectedAbs(scale); math.Abs(got-want) > 0.02*want+0.01 {
			t.Errorf("scale %v: mean |noise| %v, ExpectedAbs %v", scale, got, want)
		}
		if got, want := math.Sqrt(sumSq/n), StdDev(scale); math.Abs(got-want) > 0.02*want+0.01 {
			t.Errorf("scale %v: sample std %v, StdDev %v", scale, got, want)
		}
	}
	if !math.IsNaN(ExpectedAbs(0)) || !math.IsNaN(StdDev(math.Inf(1))) {
		t.Error("bad scales give numbers")
	}
}
