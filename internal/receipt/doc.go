// Package receipt signs, verifies and checks result receipts
// (yrdv1.ResultReceipt): an owner node's signed statement of what it
// released for a query and under which rules.
//
// # Signatures
//
// An owner signs a receipt with its ed25519 node key (Sign). The receipt's
// node field is the owner's libp2p peer id, which for an ed25519 key embeds
// the public key, so anyone holding the receipt can check it offline with
// nothing else (Verify). The signed message is
//
//	"yrd.v1.ResultReceipt\x00" || proto.MarshalOptions{Deterministic: true}(receipt with signature cleared)
//
// (SigningBytes). The domain tag keeps a receipt signature from ever being
// accepted as a signature over another kind of message made with the same
// node key, such as a join request or an audit record.
//
// # Result digest
//
// The receipt's result_digest is SHA-256 over the released rows in order
// (Digest), so a requester can check that the rows it received are the rows
// the owner signed for (CheckRows, CheckDigest). The hashed byte string is
// the concatenation, over the rows, of
//
//	uvarint(number of values in the row)
//	then, per value:
//	  kind  (one byte: 0 null, 1 string, 2 int, 3 double, 4 bool, 5 date, 6 timestamp)
//	  uvarint(payload length)
//	  payload
//
// where the payload is empty for null, the UTF-8 bytes for string, date and
// timestamp, 8 bytes big-endian two's complement for int, the 8 bytes
// big-endian of math.Float64bits for double, and one byte 0 or 1 for bool.
// Every row and every value is self-delimiting, so two different row
// sequences never hash the same bytes: rows that differ only in a value's
// kind (int 1 and string "1"), in null and the empty string, or in where one
// row ends and the next begins all have different digests. Doubles are
// hashed by their bits, so 0 and -0, or two NaNs with different payloads,
// differ; protobuf carries a double's bits unchanged, so sender and receiver
// agree.
//
// Rows that travel as column batches (yrdv1.ColumnBatch) hash as the same
// rows would in row form (Digest.AddColumns): a column's members stand for
// Value kinds as ColumnBatch's documentation says, NULL rows hash as null,
// and a DATE (days since the epoch) or TIMESTAMP (microseconds since the
// epoch) hashes as its row-form text, made by internal/resultcodec
// (AppendDate: YYYY-MM-DD; AppendTimestamp: time.RFC3339Nano in UTC). So a
// receipt does not depend on the form the rows were sent in, and a stream
// may mix both.
//
// # Query fingerprint
//
// Fingerprint names a query by the SHA-256 of its deterministic protobuf
// encoding, for receipts and audit records.
//
// Deterministic protobuf encoding is stable for one schema and one protobuf
// implementation, which is what both signer and verifier use here; it is
// not a canonical form across languages. A verifier must decode and
// re-encode a receipt with a schema that knows all of the receipt's fields
// (unknown fields are kept and re-encoded, but after the known ones).
package receipt
