// Package diffcheck stops differencing attacks on released aggregates. An
// analyst who gets an aggregate over a group of persons and later the same
// aggregate over that group less one person learns that person's value by
// subtraction. The owner node therefore remembers, per requesting
// organisation and dataset (Scope), a compact linear sketch of the persons
// behind every group it released, and suppresses a new group whose persons
// differ from a remembered group's by 1..k−1 (Release). The union of a
// result's released groups is checked the same way, so a total and a
// breakdown that misses a few persons cannot both leave.
//
// A Sketch is m cells of (count, XOR of 64-bit keyed person hashes), the
// hashes computed by the SQL engine. Compare derives from two sketches a
// lower bound on the size of the difference that can never exceed it, so
// a difference of 1..k−1 is caught except when the differing hashes cancel
// in every cell (probability at most 2^-52 per comparison); it may refuse
// some larger differences. DESIGN.md explains the choice and gives
// measured rates.
//
// Store keeps the sketches in bbolt for a window (a year by default). A
// remembered group costs at most about 11 bytes per cell, and a sketch has
// at most max(16, 8k) cells, whatever the group's size.
package diffcheck
