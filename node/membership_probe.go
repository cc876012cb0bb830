package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// A member removed while it was down never hears of it from raft: its own
// configuration still lists it, so it campaigns, and every remaining
// member's fabric gate refuses it (after the Noise handshake, where libp2p
// carries no reason), so the configuration change never reaches it. So a
// node that finds no leader asks the other members over their client API,
// which needs no membership, whether the registry still lists it
// (ClusterService.Membership). The answer is a signed statement about
// committed state; only a "no" that counts (see askMember) makes the node
// mark itself removed. One that reaches nobody learns nothing.

const (
	probeTimeout = 5 * time.Second // one round of questions, all members at once
	maxProbeWait = time.Minute     // between rounds, however long the node stays leaderless
)

// membershipStatement is what a Membership answer signs: domain separated
// from anything else the node key signs, and naming the asked peer, the
// answerer, the answer and the index it holds at.
func membershipStatement(asked, answerer string, member bool, index uint64) []byte {
	return fmt.Appendf(nil, "yrdnode-membership-v1\x00%s\x00%s\x00%t\x00%d", asked, answerer, member, index)
}

// Membership answers whether this node's registry lists a peer. It is
// public: the asker may have been removed and has no credentials here, and
// the answer, a signed fact about committed state, is true whoever asks.
func (s *clusterService) Membership(_ context.Context, req *yrdv1.MembershipRequest) (*yrdv1.MembershipResponse, error) {
	n := s.n
	if _, err := peer.Decode(req.GetPeerId()); err != nil {
		return nil, errorf(ErrInvalid, "peer_id: %v", err)
	}
	// The index first: the registry read next is at least that new, so the
	// answer holds at the index it names.
	index := n.catalog.AppliedIndex()
	_, member := n.catalog.Member(req.GetPeerId())
	sig, err := n.key.Sign(membershipStatement(req.GetPeerId(), n.id.String(), member, index))
	if err != nil {
		return nil, err
	}
	return &yrdv1.MembershipResponse{AnswererPeerId: n.id.String(), Member: member, AppliedIndex: index, Signature: sig}, nil
}

// membershipProbeLoop asks, while this node has no leader, whether the
// cluster still counts it a member, first once a restarting member would
// normally have found its leader, then less often the longer it lasts.
func (n *Node) membershipProbeLoop() {
	first := max(2*n.cfg.Raft.ElectionTimeout, 2*time.Second)
	wait := first
	for {
		select {
		case <-n.base.Done():
			return
		case <-time.After(wait):
		}
		switch {
		case n.removedReason() != "":
			return
		case n.raft.Leader() != "":
			wait = first // a leader's replication tells it of a removal
		default:
			if reason := n.askMembership(); reason != "" {
				n.markRemoved(reason)
				return
			}
			wait = min(2*wait, maxProbeWait)
		}
	}
}

// askMembership asks the other members in this node's registry, all at
// once, whether they still list it, and returns why it counts as removed,
// or "".
func (n *Node) askMembership() string {
	// Listed first, then the index: the node was listed in a state no newer
	// than the index, so a registry at that index or later that does not
	// list it proves a removal.
	if _, ok := n.catalog.Member(n.id.String()); !ok {
		return "" // a join not yet replicated here: nothing a "no" could contradict
	}
	mine := n.catalog.AppliedIndex()
	others := slices.DeleteFunc(n.catalog.Members(), func(m *yrdv1.Member) bool {
		return m.GetPeerId() == n.id.String() || m.GetApiAddr() == ""
	})
	ctx, cancel := context.WithTimeout(n.base, probeTimeout)
	defer cancel() // the questions still open when a "no" arrives
	type answer struct {
		removed string
		err     error
	}
	answers := make(chan answer, len(others))
	for _, m := range others {
		go func() {
			removed, err := n.askMember(ctx, m, mine)
			answers <- answer{removed, err}
		}()
	}
	var errs []error
	for range others {
		a := <-answers
		if a.removed != "" {
			return a.removed
		}
		if a.err != nil {
			errs = append(errs, a.err)
		}
	}
	attrs := []any{"asked", len(others), "still_member", len(others) - len(errs), "no_answer", len(errs)}
	if len(errs) > 0 {
		attrs = append(attrs, "errors", errors.Join(errs...))
	}
	n.log.Info("no leader: asked the other members whether this node is still one; none said it was removed", attrs...)
	return ""
}

// askMember asks member m whether its registry lists this node. Only a
// "no" signed with m's key, about a registry at least as new as this
// node's own (mine), counts: a lagging member may not have seen the join
// yet. It trusts m as a member of the cluster this node last knew: a lying
// member could at most make it stop serving.
func (n *Node) askMember(ctx context.Context, m *yrdv1.Member, mine uint64) (removed string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s (%s) at %s: %w", m.GetCity(), m.GetPeerId(), m.GetApiAddr(), err)
		}
	}()
	id, err := peer.Decode(m.GetPeerId())
	if err != nil {
		return "", err
	}
	// m's API certificate is from m's own CA, which this node never
	// learnt; the signature with m's fabric key is what it trusts, TLS
	// only keeps the exchange private.
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	conn, err := grpc.NewClient(m.GetApiAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	resp, err := yrdv1grpc.NewClusterServiceClient(conn).Membership(ctx, &yrdv1.MembershipRequest{PeerId: n.id.String()})
	if err != nil {
		return "", err
	}
	if ok, err := provesRemoval(id, n.id.String(), mine, resp); !ok {
		return "", err
	}
	return fmt.Sprintf("member %s (%s) answered that the member registry no longer lists it, as of raft index %d",
		m.GetCity(), id, resp.GetAppliedIndex()), nil
}

// provesRemoval says whether r, answerer's answer about asked, proves
// that asked was removed, given that asked was listed in its own registry
// at raft index mine or before; an error says why r counts for nothing.
func provesRemoval(answerer peer.ID, asked string, mine uint64, r *yrdv1.MembershipResponse) (bool, error) {
	if r.GetAnswererPeerId() != answerer.String() {
		return false, fmt.Errorf("another node answered (%s)", r.GetAnswererPeerId())
	}
	pub, err := answerer.ExtractPublicKey()
	if err != nil {
		return false, err
	}
	ok, err := pub.Verify(membershipStatement(asked, answerer.String(), r.GetMember(), r.GetAppliedIndex()), r.GetSignature())
	switch {
	case err != nil || !ok:
		return false, fmt.Errorf("the answer's signature does not verify (%v)", err)
	case r.GetMember():
		return false, nil
	case r.GetAppliedIndex() < mine:
		// It may not have applied the join yet.
		return false, fmt.Errorf("does not list this node, but its registry (raft index %d) is older than this node's (%d)", r.GetAppliedIndex(), mine)
	}
	return true, nil
}
