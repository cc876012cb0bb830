package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestMembershipAnswerMustBeSignedByTheMemberAsked: only the member asked
// can say "no", about the node that asked, at the index it signed; a
// changed answer or another node's signature does not verify.
func TestMembershipAnswerMustBeSignedByTheMemberAsked(t *testing.T) {
	keyOf := func() (crypto.PrivKey, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, id
	}
	memberKey, member := keyOf()
	otherKey, other := keyOf()
	_, asker := keyOf()
	answer := func(key crypto.PrivKey, by peer.ID, about peer.ID) *yrdv1.MembershipResponse {
		sig, err := key.Sign(membershipStatement(about.String(), by.String(), false, 42))
		if err != nil {
			t.Fatal(err)
		}
		return &yrdv1.MembershipResponse{AnswererPeerId: by.String(), Member: false, AppliedIndex: 42, Signature: sig}
	}
	if err := verifyMembership(member, asker.String(), answer(memberKey, member, asker)); err != nil {
		t.Fatalf("the member's own answer: %v", err)
	}
	for name, r := range map[string]*yrdv1.MembershipResponse{
		"another node's answer":   answer(otherKey, other, asker),
		"signed by another key":   answer(otherKey, member, asker),
		"about another node":      answer(memberKey, member, other),
		"with a later index":      func() *yrdv1.MembershipResponse { r := answer(memberKey, member, asker); r.AppliedIndex++; return r }(),
		"turned from no into yes": func() *yrdv1.MembershipResponse { r := answer(memberKey, member, asker); r.Member = true; return r }(),
	} {
		if err := verifyMembership(member, asker.String(), r); err == nil {
			t.Errorf("%s verifies", name)
		}
	}
}
