package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// HashSize is the length of a record hash and of an anchored head.
const HashSize = sha256.Size

// canonical is the one encoding hashes and stored values are computed with.
var canonical = proto.MarshalOptions{Deterministic: true}

// zeroHash is the prev_hash of record 1 and the head of an empty log.
var zeroHash = make([]byte, HashSize)

// RecordHash computes a record's chain hash from its prev_hash and content;
// the record's own hash and signature fields do not take part. rec is not
// modified.
func RecordHash(rec *yrdv1.AuditRecord) ([]byte, error) {
	if rec.Hash != nil || rec.Signature != nil {
		// Clone rather than clear in place: the caller may share rec.
		rec = proto.Clone(rec).(*yrdv1.AuditRecord)
		rec.Hash, rec.Signature = nil, nil
	}
	b, err := canonical.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", rec.GetSeq(), err)
	}
	d := sha256.New()
	d.Write(rec.PrevHash)
	d.Write(b)
	return d.Sum(nil), nil
}

// anchorDomain separates anchor signatures from record signatures (which
// sign a bare 32-byte hash) and from anything else the node key signs.
const anchorDomain = "yrd.v1.AuditAnchor\x00"

// anchorMessage is the byte string an anchor's signature covers. Every
// variable-length field is length-prefixed so no two anchors share one.
func anchorMessage(node string, seq uint64, head []byte, t *timestamppb.Timestamp) []byte {
	b := make([]byte, 0, len(anchorDomain)+len(node)+len(head)+40)
	b = append(b, anchorDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(node)))
	b = append(b, node...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(head)))
	b = append(b, head...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.GetSeconds()))
	b = binary.BigEndian.AppendUint32(b, uint32(t.GetNanos()))
	return b
}

// NewAnchor signs a statement that node's log had head hash head at seq,
// as of now. Use the values (*Log).Head returns.
func NewAnchor(key ed25519.PrivateKey, node string, seq uint64, head []byte, now time.Time) *yrdv1.AuditAnchor {
	a := &yrdv1.AuditAnchor{
		Node:     node,
		Seq:      seq,
		HeadHash: bytes.Clone(head),
		Time:     timestamppb.New(now),
	}
	a.Signature = ed25519.Sign(key, anchorMessage(a.Node, a.Seq, a.HeadHash, a.Time))
	return a
}

// VerifyAnchor checks that a was signed by pub and is well formed.
func VerifyAnchor(pub ed25519.PublicKey, a *yrdv1.AuditAnchor) error {
	switch {
	case len(pub) != ed25519.PublicKeySize:
		return fmt.Errorf("audit: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	case a == nil:
		return errors.New("audit: nil anchor")
	case len(a.HeadHash) != HashSize:
		return fmt.Errorf("audit: anchor head hash is %d bytes, want %d", len(a.HeadHash), HashSize)
	case a.Time == nil || a.Time.CheckValid() != nil:
		return errors.New("audit: anchor has no valid time")
	case !ed25519.Verify(pub, anchorMessage(a.Node, a.Seq, a.HeadHash, a.Time), a.Signature):
		return errors.New("audit: anchor signature invalid")
	}
	return nil
}

// anchorName identifies an anchor in a Problem by its time, as a regulator
// would look it up in the catalog.
func anchorName(a *yrdv1.AuditAnchor) string {
	return "an anchor at " + a.GetTime().AsTime().UTC().Format(time.RFC3339Nano)
}
