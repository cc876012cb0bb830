// Package audit is yrdnode's tamper-evident audit trail: an append-only log
// of every publish, grant change, query decision and cross-border flow,
// kept so that a regulator can check afterwards what the node did.
//
// The log is one bbolt file. Bucket "records" maps the 8-byte big-endian
// sequence number to the deterministic protobuf encoding of the full
// yrdv1.AuditRecord. Records form a hash chain, and the last record of
// every group commit (below) is signed:
//
//	hash      = SHA-256(prev_hash || canonical(record without hash, signature))
//	signature = ed25519.Sign(nodeKey, hash)   (last record of a commit only)
//
// where canonical is proto.MarshalOptions{Deterministic: true} and the
// first record's prev_hash is 32 zero bytes. The signature is over the
// bare 32-byte hash, as when every record was signed, so logs written that
// way still verify. A signed hash covers its record's prev_hash, hence the
// record before, and so on back: one signature per commit vouches for the
// whole commit. Verify requires every signature present to be valid and
// every unsigned record to be followed by a signed one, so the log must
// end with a signed record (and a node refuses to extend an unsigned
// head).
//
// Changing, removing or reordering a stored record therefore breaks a
// hash, a link or a signature, and Verify names the first record where it
// breaks: a changed byte, at that record, whose content no longer matches
// its hash. An attacker who also recomputes the hash of an unsigned record
// is named at the next record, whose prev_hash no longer links, or, if he
// re-chains every record up to the commit's signed one, at that record,
// whose signature fails; the Problem then names the unsigned records that
// only it covers. Stripping a signature that a later one makes redundant
// goes unnoticed; no evidence is lost, as signatures are no part of any
// hash. Cutting the tail back to a signed record leaves a valid shorter
// chain, so the node periodically publishes signed anchors (NewAnchor) of
// its head in the replicated catalog; Verify checks a log against them.
//
// Append is group-committed: one goroutine owned by the Log writes every
// pending append in a single bbolt transaction, so one fsync and one
// signature cover many records. Append returns only after its record is
// durable; on any write error every waiting Append fails and the Log
// refuses further appends, because callers fail closed (refuse the audited
// action) on error and an audit log whose on-disk state is uncertain must
// not keep accepting work.
//
// Verification needs only the records and the node's public key: Verify
// takes any record iterator, VerifyFile checks a copy of a log file offline
// (what `yrdnode audit verify` runs) and (*Log).Verify checks a live log.
package audit
