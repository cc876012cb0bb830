// Package audit is yrdnode's tamper-evident audit trail: an append-only log
// of every publish, grant change, query decision and cross-border flow,
// kept so that a regulator can check afterwards what the node did.
//
// The log is one bbolt file. Bucket "records" maps the 8-byte big-endian
// sequence number to the deterministic protobuf encoding of the full
// yrdv1.AuditRecord. Records form a hash chain,
//
//	hash      = SHA-256(prev_hash || canonical(record without hash, signature))
//	signature = ed25519.Sign(nodeKey, hash)
//
// where canonical is proto.MarshalOptions{Deterministic: true} and the
// first record's prev_hash is 32 zero bytes. Changing, removing or
// reordering a stored record therefore breaks a hash, a link or a
// signature. Cutting the tail leaves a valid shorter chain, so the node
// periodically publishes signed anchors (NewAnchor) of its head in the
// replicated catalog; Verify checks a log against them.
//
// Append is group-committed: one goroutine owned by the Log writes every
// pending append in a single bbolt transaction, so one fsync covers many
// records. Append returns only after its record is durable; on any write
// error every waiting Append fails and the Log refuses further appends,
// because callers fail closed (refuse the audited action) on error and an
// audit log whose on-disk state is uncertain must not keep accepting work.
//
// Verification needs only the records and the node's public key: Verify
// takes any record iterator, VerifyFile checks a copy of a log file offline
// (what `yrdnode audit verify` runs) and (*Log).Verify checks a live log.
package audit
