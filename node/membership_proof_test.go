package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestOnlyASignedCurrentNoProvesRemoval: only the member asked can say
// "no", about the node that asked, at the index it signed, and only about
// a registry at least as new as the asker's; a changed answer, another
// node's signature or a lagging registry proves nothing.
func TestOnlyASignedCurrentNoProvesRemoval(t *testing.T) {
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
	const mine = 42
	answer := func(key crypto.PrivKey, by, about peer.ID, listed bool, index uint64) *yrdv1.MembershipResponse {
		sig, err := key.Sign(membershipStatement(about.String(), by.String(), listed, index))
		if err != nil {
			t.Fatal(err)
		}
		return &yrdv1.MembershipResponse{AnswererPeerId: by.String(), Member: listed, AppliedIndex: index, Signature: sig}
	}
	if ok, err := provesRemoval(member, asker.String(), mine, answer(memberKey, member, asker, false, mine)); !ok || err != nil {
		t.Fatalf("the member's signed no at the asker's index: %v %v, want proof", ok, err)
	}
	if ok, err := provesRemoval(member, asker.String(), mine, answer(memberKey, member, asker, true, mine+5)); ok || err != nil {
		t.Fatalf("the member's signed yes: %v %v, want no proof and no error", ok, err)
	}
	forged := func(edit func(*yrdv1.MembershipResponse)) *yrdv1.MembershipResponse {
		r := answer(memberKey, member, asker, true, mine)
		edit(r)
		return r
	}
	for name, r := range map[string]*yrdv1.MembershipResponse{
		"a lagging registry's no": answer(memberKey, member, asker, false, mine-1),
		"another node's answer":   answer(otherKey, other, asker, false, mine),
		"signed by another key":   answer(otherKey, member, asker, false, mine),
		"about another node":      answer(memberKey, member, other, false, mine),
		"a yes turned into a no":  forged(func(r *yrdv1.MembershipResponse) { r.Member = false }),
		"with another index":      forged(func(r *yrdv1.MembershipResponse) { r.Member, r.AppliedIndex = false, mine+1 }),
	} {
		if ok, err := provesRemoval(member, asker.String(), mine, r); ok || err == nil {
			t.Errorf("%s: %v %v, want no proof and why", name, ok, err)
		}
	}
}
