package receipt_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// nodeKey generates a libp2p ed25519 node key, as internal/fabric does, and
// returns it as a crypto/ed25519 key with the node's peer id.
func nodeKey(t testing.TB) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := priv.Raw()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		t.Fatalf("libp2p ed25519 Raw() is %d bytes, want %d", len(raw), ed25519.PrivateKeySize)
	}
	return ed25519.PrivateKey(raw), id
}

// sampleRows are the rows sampleReceipt is issued for.
func sampleRows() []*yrdv1.Row {
	return []*yrdv1.Row{
		row(str("Huangpu"), i64(1203)),
		row(str("Xuhui"), i64(988)),
		row(str("Minhang"), null()),
	}
}

// sampleReceipt returns a receipt with every field set, for node.
func sampleReceipt(node peer.ID) *yrdv1.ResultReceipt {
	d := receipt.NewDigest()
	for _, r := range sampleRows() {
		d.Add(r)
	}
	return &yrdv1.ResultReceipt{
		Node:           node.String(),
		City:           "shanghai",
		DatasetId:      "shanghai.civil-affairs.elderly-population",
		DatasetVersion: 7,
		Requester: &yrdv1.Principal{
			City: "hangzhou",
			Org:  "hangzhou.civil-affairs",
			Name: "analyst-3",
			Role: yrdv1.Role_ROLE_ANALYST,
		},
		Purpose:          "elderly-care-planning",
		QueryFingerprint: receipt.Fingerprint(sampleQuery()),
		Effect:           yrdv1.Effect_EFFECT_ALLOW_AGGREGATES,
		GrantId:          "grant-42",
		PolicyVersion:    12,
		RuleIds:          []string{"min-group-size", "cross-border-aggregates-only"},
		MinGroupSize:     10,
		RowCap:           10000,
		Noise: &yrdv1.NoiseApplied{
			Mechanism:       "discrete-laplace",
			Epsilon:         0.5,
			SumBound:        100,
			BudgetRemaining: 9.5,
		},
		Rows:         d.Rows(),
		Individuals:  2191,
		ResultDigest: d.Sum(),
		DerivedLevel: yrdv1.ClassificationLevel_LEVEL_IMPORTANT,
		CrossBorder:  true,
		IssuedAt:     timestamppb.New(time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)),
		AuditSeq:     31337,
	}
}

func sampleQuery() *yrdv1.Query {
	return &yrdv1.Query{
		Source: &yrdv1.Query_DatasetId{DatasetId: "shanghai.civil-affairs.elderly-population"},
		Select: []*yrdv1.SelectItem{
			{Item: &yrdv1.SelectItem_Column{Column: "district"}},
			{Item: &yrdv1.SelectItem_Aggregate{Aggregate: &yrdv1.AggregateCall{Function: yrdv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT}}},
		},
		Where: &yrdv1.Expr{Node: &yrdv1.Expr_Comparison{Comparison: &yrdv1.Comparison{
			Column: "age",
			Op:     yrdv1.CompareOp_COMPARE_OP_GE,
			Value:  &yrdv1.Literal{Value: &yrdv1.Literal_IntValue{IntValue: 80}},
		}}},
		GroupBy: []string{"district"},
		Limit:   100,
	}
}

func signed(t *testing.T) (*yrdv1.ResultReceipt, ed25519.PrivateKey, peer.ID) {
	t.Helper()
	key, id := nodeKey(t)
	r := sampleReceipt(id)
	if err := receipt.Sign(key, r); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return r, key, id
}

func TestSignVerifyRoundTrip(t *testing.T) {
	r, _, _ := signed(t)
	if len(r.Signature) != ed25519.SignatureSize {
		t.Fatalf("signature is %d bytes, want %d", len(r.Signature), ed25519.SignatureSize)
	}
	if err := receipt.Verify(r); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := receipt.CheckRows(r, sampleRows()); err != nil {
		t.Fatalf("CheckRows: %v", err)
	}

	// The receipt travels: it must verify after a wire round trip, both
	// with the default and the deterministic encoding.
	for name, opts := range map[string]proto.MarshalOptions{
		"default":       {},
		"deterministic": {Deterministic: true},
	} {
		b, err := opts.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got yrdv1.ResultReceipt
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if err := receipt.Verify(&got); err != nil {
			t.Errorf("%s encoding: Verify after round trip: %v", name, err)
		}
	}
}

func TestSignIsDeterministicAndIgnoresOldSignature(t *testing.T) {
	r, key, _ := signed(t)
	first := append([]byte(nil), r.Signature...)
	r.Signature = []byte("stale")
	if err := receipt.Sign(key, r); err != nil {
		t.Fatal(err)
	}
	if string(r.Signature) != string(first) {
		t.Fatal("re-signing the same receipt gave a different signature")
	}
}

func TestVerifyDetectsFieldChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *yrdv1.ResultReceipt)
	}{
		{"rows", func(r *yrdv1.ResultReceipt) { r.Rows++ }},
		{"individuals", func(r *yrdv1.ResultReceipt) { r.Individuals = 9 }},
		{"rule_ids dropped", func(r *yrdv1.ResultReceipt) { r.RuleIds = r.RuleIds[:1] }},
		{"rule_ids added", func(r *yrdv1.ResultReceipt) { r.RuleIds = append(r.RuleIds, "extra") }},
		{"rule_ids reordered", func(r *yrdv1.ResultReceipt) { r.RuleIds[0], r.RuleIds[1] = r.RuleIds[1], r.RuleIds[0] }},
		{"dataset_id", func(r *yrdv1.ResultReceipt) { r.DatasetId = "shanghai.civil-affairs.elderly-population-v2" }},
		{"dataset_version", func(r *yrdv1.ResultReceipt) { r.DatasetVersion = 6 }},
		{"noise epsilon", func(r *yrdv1.ResultReceipt) { r.Noise.Epsilon = 5 }},
		{"noise removed", func(r *yrdv1.ResultReceipt) { r.Noise = nil }},
		{"requester org", func(r *yrdv1.ResultReceipt) { r.Requester.Org = "suzhou.civil-affairs" }},
		{"requester role", func(r *yrdv1.ResultReceipt) { r.Requester.Role = yrdv1.Role_ROLE_CDO }},
		{"requester removed", func(r *yrdv1.ResultReceipt) { r.Requester = nil }},
		{"purpose", func(r *yrdv1.ResultReceipt) { r.Purpose = "marketing" }},
		{"effect", func(r *yrdv1.ResultReceipt) { r.Effect = yrdv1.Effect_EFFECT_ALLOW_ROWS }},
		{"min_group_size", func(r *yrdv1.ResultReceipt) { r.MinGroupSize = 1 }},
		{"result_digest", func(r *yrdv1.ResultReceipt) { r.ResultDigest[0] ^= 1 }},
		{"cross_border", func(r *yrdv1.ResultReceipt) { r.CrossBorder = false }},
		{"issued_at", func(r *yrdv1.ResultReceipt) { r.IssuedAt.Nanos++ }},
		{"audit_seq", func(r *yrdv1.ResultReceipt) { r.AuditSeq = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := signed(t)
			tt.change(r)
			if err := receipt.Verify(r); !errors.Is(err, receipt.ErrBadSignature) {
				t.Fatalf("Verify after changing %s = %v, want ErrBadSignature", tt.name, err)
			}
		})
	}
}

// TestVerifyDetectsAnyFieldChange changes each field of the receipt in turn,
// found by reflection, so a field added to ResultReceipt later is covered
// without editing the test.
func TestVerifyDetectsAnyFieldChange(t *testing.T) {
	r, _, _ := signed(t)
	fields := r.ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "signature" || fd.Name() == "node" {
			continue // node is covered by TestVerifyOtherNode
		}
		t.Run(string(fd.Name()), func(t *testing.T) {
			c := proto.CloneOf(r)
			m := c.ProtoReflect()
			if !m.Has(fd) {
				t.Fatalf("sampleReceipt leaves %s unset; set it so this test covers it", fd.Name())
			}
			switch {
			case fd.IsList():
				m.Get(fd).List().Append(protoreflect.ValueOfString("extra"))
			case fd.Kind() == protoreflect.MessageKind:
				m.Clear(fd)
			default:
				m.Set(fd, otherScalar(t, fd, m.Get(fd)))
			}
			if err := receipt.Verify(c); !errors.Is(err, receipt.ErrBadSignature) {
				t.Fatalf("Verify after changing %s = %v, want ErrBadSignature", fd.Name(), err)
			}
		})
	}
}

func otherScalar(t *testing.T, fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v.String() + "x")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(append(append([]byte(nil), v.Bytes()...), 0))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(!v.Bool())
	case protoreflect.Uint64Kind, protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint64(v.Uint() + 1)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(v.Enum() + 1)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(v.Float() + 1)
	default:
		t.Fatalf("no change defined for %s of kind %s", fd.Name(), fd.Kind())
		return v
	}
}

func TestVerifyOtherKey(t *testing.T) {
	r, _, _ := signed(t)
	other, _ := nodeKey(t)
	msg, err := receipt.SigningBytes(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Signature = ed25519.Sign(other, msg) // right message, wrong key
	if err := receipt.Verify(r); !errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("Verify of another key's signature = %v, want ErrBadSignature", err)
	}
}

func TestVerifyOtherNode(t *testing.T) {
	r, _, _ := signed(t)
	_, other := nodeKey(t)
	r.Node = other.String() // claim another node signed it
	if err := receipt.Verify(r); !errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("Verify with another node id = %v, want ErrBadSignature", err)
	}
}

// TestVerifyPartNamesTheWrongPart: a well-signed receipt of another
// city's or dataset's part does not vouch for this one.
func TestVerifyPartNamesTheWrongPart(t *testing.T) {
	r, _, _ := signed(t)
	if err := receipt.VerifyPart(r, r.GetCity(), r.GetDatasetId()); err != nil {
		t.Fatalf("VerifyPart of its own part: %v", err)
	}
	if err := receipt.VerifyPart(r, "nanjing", r.GetDatasetId()); err == nil || !strings.Contains(err.Error(), "not nanjing") {
		t.Fatalf("VerifyPart for another city = %v", err)
	}
	r.Purpose = "changed"
	if err := receipt.VerifyPart(r, r.GetCity(), r.GetDatasetId()); !errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("VerifyPart of a changed receipt = %v, want ErrBadSignature", err)
	}
}

func TestVerifyBadSignatureBytes(t *testing.T) {
	for name, change := range map[string]func([]byte) []byte{
		"flipped bit": func(s []byte) []byte { s[10] ^= 0x80; return s },
		"truncated":   func(s []byte) []byte { return s[:len(s)-1] },
		"extended":    func(s []byte) []byte { return append(s, 0) },
		"one byte":    func(s []byte) []byte { return s[:1] },
	} {
		t.Run(name, func(t *testing.T) {
			r, _, _ := signed(t)
			r.Signature = change(r.Signature)
			if err := receipt.Verify(r); !errors.Is(err, receipt.ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	// An ECDSA public key is too long to inline, so its peer id is a hash
	// that does not embed the key.
	ecdsa, _, err := crypto.GenerateECDSAKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaID, err := peer.IDFromPrivateKey(ecdsa)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		change  func(r *yrdv1.ResultReceipt)
		mention string // what the error must name
	}{
		{"empty node", func(r *yrdv1.ResultReceipt) { r.Node = "" }, "node"},
		{"garbage node", func(r *yrdv1.ResultReceipt) { r.Node = "not-a-peer-id" }, "node"},
		{"huge garbage node", func(r *yrdv1.ResultReceipt) { r.Node = strings.Repeat("z", 1<<16) }, "node"},
		{"secp256k1 node", func(r *yrdv1.ResultReceipt) { r.Node = secpID.String() }, "Ed25519"},
		{"hashed node id", func(r *yrdv1.ResultReceipt) { r.Node = ecdsaID.String() }, "does not embed"},
		{"empty signature", func(r *yrdv1.ResultReceipt) { r.Signature = nil }, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := signed(t)
			tt.change(r)
			err := receipt.Verify(r)
			if err == nil {
				t.Fatal("Verify succeeded")
			}
			if errors.Is(err, receipt.ErrBadSignature) {
				t.Fatalf("Verify = %v; a malformed receipt must not look like a bad signature", err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Verify = %q, want it to mention %q", err, tt.mention)
			}
			if len(err.Error()) > 1000 {
				t.Fatalf("error is %d bytes long; untrusted input must be clipped", len(err.Error()))
			}
		})
	}
	if err := receipt.Verify(nil); err == nil || errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("Verify(nil) = %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	key, id := nodeKey(t)
	_, other := nodeKey(t)
	tests := []struct {
		name string
		key  ed25519.PrivateKey
		node string
	}{
		{"short key", key[:32], id.String()},
		{"empty node", key, ""},
		{"garbage node", key, "not-a-peer-id"},
		{"another node", key, other.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleReceipt(id)
			r.Node = tt.node
			before := proto.CloneOf(r)
			if err := receipt.Sign(tt.key, r); err == nil {
				t.Fatal("Sign succeeded")
			}
			if !proto.Equal(r, before) {
				t.Fatal("a failed Sign changed the receipt")
			}
		})
	}
	if err := receipt.Sign(key, nil); err == nil {
		t.Fatal("Sign(nil receipt) succeeded")
	}
}

func TestSigningBytes(t *testing.T) {
	r, _, id := signed(t)
	before := proto.CloneOf(r)
	b, err := receipt.SigningBytes(r)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(r, before) {
		t.Fatal("SigningBytes changed the receipt")
	}
	if !strings.HasPrefix(string(b), "yrd.v1.ResultReceipt\x00") {
		t.Fatalf("signing bytes do not start with the domain tag: %q", b[:min(len(b), 30)])
	}

	// The rest is the deterministic encoding without the signature, so it
	// does not depend on whether the receipt is signed yet.
	unsigned := sampleReceipt(id)
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if got := b[len(receipt.SigningDomain):]; string(got) != string(want) {
		t.Fatal("signing bytes after the domain tag are not the deterministic encoding of the unsigned receipt")
	}

	// A signature over the bare encoding (no domain tag), as some other
	// protocol might make with the same key, must not verify as a receipt.
	key, _ := nodeKey(t)
	r2 := sampleReceipt(peerID(t, key))
	bare, err := proto.MarshalOptions{Deterministic: true}.Marshal(r2)
	if err != nil {
		t.Fatal(err)
	}
	r2.Signature = ed25519.Sign(key, bare)
	if err := receipt.Verify(r2); !errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("Verify of a signature without the domain tag = %v, want ErrBadSignature", err)
	}

	if _, err := receipt.SigningBytes(nil); err == nil {
		t.Fatal("SigningBytes(nil) succeeded")
	}
}

func peerID(t *testing.T, key ed25519.PrivateKey) peer.ID {
	t.Helper()
	pub, err := crypto.UnmarshalEd25519PublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFingerprint(t *testing.T) {
	fp := receipt.Fingerprint(sampleQuery())
	hexPart, ok := strings.CutPrefix(fp, "sha256:")
	if !ok {
		t.Fatalf("Fingerprint = %q, want the sha256: prefix", fp)
	}
	if raw, err := hex.DecodeString(hexPart); err != nil || len(raw) != 32 || strings.ToLower(hexPart) != hexPart {
		t.Fatalf("Fingerprint = %q, want 64 lowercase hex digits after the prefix", fp)
	}
	if again := receipt.Fingerprint(sampleQuery()); again != fp {
		t.Fatalf("Fingerprint is not stable: %s then %s", fp, again)
	}
	// Pinned so an accidental change of encoding is noticed: receipts and
	// audit records already issued name queries by this value.
	const pinned = "sha256:de0fca4870f50409775ce503340a9e6d0c22ab27bdb0a80e4574ad9fceb208a7"
	if fp != pinned {
		t.Errorf("Fingerprint(sampleQuery()) = %s, pinned %s", fp, pinned)
	}

	changes := map[string]func(q *yrdv1.Query){
		"limit": func(q *yrdv1.Query) { q.Limit = 101 },
		"source": func(q *yrdv1.Query) {
			q.Source = &yrdv1.Query_Family{Family: "shanghai.civil-affairs.elderly-population"}
		},
		"literal": func(q *yrdv1.Query) {
			q.Where.GetComparison().Value = &yrdv1.Literal{Value: &yrdv1.Literal_StringValue{StringValue: "80"}}
		},
		"group by":   func(q *yrdv1.Query) { q.GroupBy = nil },
		"select":     func(q *yrdv1.Query) { q.Select = q.Select[:1] },
		"no where":   func(q *yrdv1.Query) { q.Where = nil },
		"descending": func(q *yrdv1.Query) { q.OrderBy = []*yrdv1.OrderItem{{Descending: true}} },
	}
	seen := map[string]string{fp: "original"}
	for name, change := range changes {
		q := sampleQuery()
		change(q)
		got := receipt.Fingerprint(q)
		if prev, dup := seen[got]; dup {
			t.Errorf("changing %s gives the same fingerprint as %s", name, prev)
		}
		seen[got] = name
	}

	if a, b := receipt.Fingerprint(nil), receipt.Fingerprint(&yrdv1.Query{}); a != b || a == "" {
		t.Errorf("Fingerprint(nil) = %q, Fingerprint(empty) = %q; want equal and non-empty", a, b)
	}
	bad := &yrdv1.Query{Source: &yrdv1.Query_DatasetId{DatasetId: "bad\xffutf8"}}
	if got := receipt.Fingerprint(bad); got != "" {
		t.Errorf("Fingerprint of a query with invalid UTF-8 = %q, want \"\"", got)
	}
}
