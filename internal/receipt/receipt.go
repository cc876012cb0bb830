package receipt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// SigningDomain prefixes every receipt's signed bytes (see SigningBytes).
const SigningDomain = "yrd.v1.ResultReceipt\x00"

// FingerprintPrefix starts every query fingerprint (see Fingerprint).
const FingerprintPrefix = "sha256:"

// ErrBadSignature is returned by Verify when the receipt's signature does
// not verify under the key embedded in its node field: the receipt was
// changed after signing, or signed by another key.
var ErrBadSignature = errors.New("receipt: signature does not verify")

// deterministic is the encoding signed over and fingerprinted.
var deterministic = proto.MarshalOptions{Deterministic: true}

// SigningBytes returns the bytes a receipt's signature is over: SigningDomain
// followed by the deterministic protobuf encoding of r with its signature
// field cleared. r itself is not changed.
func SigningBytes(r *yrdv1.ResultReceipt) ([]byte, error) {
	if r == nil {
		return nil, errors.New("receipt: signing bytes: nil receipt")
	}
	c := proto.CloneOf(r)
	c.Signature = nil
	b := make([]byte, 0, len(SigningDomain)+deterministic.Size(c))
	b = append(b, SigningDomain...)
	b, err := deterministic.MarshalAppend(b, c)
	if err != nil {
		return nil, fmt.Errorf("receipt: signing bytes: %w", err)
	}
	return b, nil
}

// Sign sets r.Signature to key's ed25519 signature over SigningBytes(r).
//
// r.Node must already be the peer id of key (a receipt naming another node
// could never verify), so Sign refuses an empty or different node. On error
// r is left unchanged.
func Sign(key ed25519.PrivateKey, r *yrdv1.ResultReceipt) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("receipt: sign: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if r == nil {
		return errors.New("receipt: sign: nil receipt")
	}
	id, err := decodeNode(r.GetNode())
	if err != nil {
		return fmt.Errorf("receipt: sign: %w", err)
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return fmt.Errorf("receipt: sign: public key: %w", err)
	}
	if !id.MatchesPublicKey(pub) {
		own, _ := peer.IDFromPublicKey(pub)
		return fmt.Errorf("receipt: sign: node %s is not the signing key's peer id %s", id, own)
	}
	msg, err := SigningBytes(r)
	if err != nil {
		return fmt.Errorf("receipt: sign: %w", err)
	}
	r.Signature = ed25519.Sign(key, msg)
	return nil
}

// Verify checks r's signature against the ed25519 public key embedded in its
// node field (the owner's peer id). It returns ErrBadSignature when the
// signature does not verify, and another error, naming the field, when the
// node field is empty, not a peer id, or not an ed25519 peer id, or when
// the signature is empty.
//
// Verify says who released what under which rules; it does not check the
// rows themselves (see CheckRows), nor that the node is a member of the
// exchange.
func Verify(r *yrdv1.ResultReceipt) error {
	if r == nil {
		return errors.New("receipt: verify: nil receipt")
	}
	pub, err := nodeKey(r.GetNode())
	if err != nil {
		return fmt.Errorf("receipt: verify: %w", err)
	}
	sig := r.GetSignature()
	if len(sig) == 0 {
		return errors.New("receipt: verify: signature: empty (the receipt is not signed)")
	}
	msg, err := SigningBytes(r)
	if err != nil {
		return fmt.Errorf("receipt: verify: %w", err)
	}
	ok, err := pub.Verify(msg, sig)
	if err != nil {
		return fmt.Errorf("receipt: verify: signature: %w", err)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// VerifyPart is Verify for the receipt of one city's part of a result:
// it also checks that the receipt is for that city and dataset, since a
// valid signature on another part's receipt vouches for nothing here.
// `yrdnode receipt verify` and the web console check receipts with it.
func VerifyPart(r *yrdv1.ResultReceipt, city, datasetID string) error {
	if err := Verify(r); err != nil {
		return err
	}
	if r.GetCity() != city || r.GetDatasetId() != datasetID {
		return fmt.Errorf("the receipt is for %s / %s, not %s / %s", r.GetCity(), r.GetDatasetId(), city, datasetID)
	}
	return nil
}

// decodeNode parses a receipt's node field.
func decodeNode(node string) (peer.ID, error) {
	if node == "" {
		return "", errors.New("node: empty (want the owner's peer id)")
	}
	id, err := peer.Decode(node)
	if err != nil {
		return "", fmt.Errorf("node: %q is not a peer id: %w", clip(node), err)
	}
	return id, nil
}

// nodeKey returns the ed25519 public key embedded in a receipt's node field.
func nodeKey(node string) (crypto.PubKey, error) {
	id, err := decodeNode(node)
	if err != nil {
		return nil, err
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("node: peer id %s does not embed its public key: %w", id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("node: peer id %s has a %s key, want Ed25519", id, pub.Type())
	}
	return pub, nil
}

// clip shortens s for an error message; a receipt may come from anyone.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// Fingerprint returns a stable name for q: "sha256:" followed by the
// lowercase hex SHA-256 of q's deterministic protobuf encoding. A nil query
// has the fingerprint of an empty one.
//
// It returns "" for a query that cannot be encoded at all, which happens
// only when a string in it is not valid UTF-8 (protobuf refuses such strings
// on the wire as well). Callers should refuse to run a query whose
// fingerprint is "".
func Fingerprint(q *yrdv1.Query) string {
	b, err := deterministic.Marshal(q)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return FingerprintPrefix + hex.EncodeToString(sum[:])
}
