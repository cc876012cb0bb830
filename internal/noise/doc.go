// Package noise draws calibrated random noise for differentially private
// aggregates (count and sum) released by an owner node.
//
// The mechanism is the discrete Laplace (two-sided geometric) distribution:
// Sampler.DiscreteLaplace(t) returns an integer k with P(k) ∝ exp(−|k|/t).
// Adding it to an aggregate whose value one individual can change by at
// most Δ (the sensitivity) gives ε-differential privacy for t = Δ/ε. The
// scale helpers say what Δ is:
//
//   - CountScale(ε) = 1/ε: adding or removing one individual changes a
//     count by at most 1, assuming each individual contributes one row.
//   - SumScale(ε, bound) = bound/ε: each value is clamped to
//     [−bound, bound] before summing, so one individual (one row) changes
//     the sum by at most bound.
//
// # Budget
//
// Sequential composition: a query releasing n noisy aggregate columns
// spends ε on each of them if each is noised with ε, n·ε in all; to spend ε
// in total, noise each column with Split(ε, n) = ε/n. Parallel composition:
// the groups of one GROUP BY partition the rows, so one individual is in at
// most one group and the groups do not split ε among themselves; every
// group's value of a column is noised with that column's share. (The set of
// groups released, and which of them pass a minimum group size, are not
// protected by the noise; that is the k-anonymity threshold's job.)
//
// Randomness comes from crypto/rand unless a Sampler is given another
// reader, which only tests should do: noise from a predictable source
// protects nothing.
package noise
