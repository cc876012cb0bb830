// Package owner is the owner's side of every query: the part that runs on
// the node whose city holds the data. An Executor decides the query with
// the policy, puts the decision on the audit record, plans it for the
// local engine, spends the privacy budget and the cross-border allowance,
// runs it, checks the result against k and the caps, streams it, and
// ends with a signed receipt.
//
// The Executor reaches the rest of the node only through the small
// interfaces in ports.go (the catalog, the policy, the audit log, the
// budget, the engines, the export ledger, the difference check and the
// node's secrets), so its stages can be tested without a cluster.
// DESIGN.md says what each stage guarantees.
package owner
