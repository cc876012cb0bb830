package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// clusterService serves ClusterService on the client API and, for
// forwarding to the leader, on the fabric.
type clusterService struct {
	yrdv1grpc.UnimplementedClusterServiceServer
	n *Node
}

const (
	defaultTokenTTL = time.Hour
	maxTokenTTL     = 7 * 24 * time.Hour
	tokenPrefix     = "yrdjoin_"
)

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (s *clusterService) IssueJoinToken(ctx context.Context, req *yrdv1.IssueJoinTokenRequest) (*yrdv1.IssueJoinTokenResponse, error) {
	ttl := defaultTokenTTL
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, errorf(ErrInvalid, "ttl: %v", err)
		}
		ttl = req.GetTtl().AsDuration()
	}
	if ttl <= 0 || ttl > maxTokenTTL {
		return nil, errorf(ErrInvalid, "ttl: %v is outside (0, %v]", ttl, maxTokenTTL)
	}
	suffrage := req.GetSuffrage()
	if suffrage == yrdv1.Suffrage_SUFFRAGE_UNSPECIFIED {
		suffrage = yrdv1.Suffrage_SUFFRAGE_NONVOTER
	} else if _, ok := yrdv1.Suffrage_name[int32(suffrage)]; !ok {
		return nil, errorf(ErrInvalid, "suffrage: unknown value %d (want VOTER or NONVOTER)", suffrage)
	}
	if c := req.GetCity(); c != "" {
		if _, ok := cities.Lookup(c); !ok {
			return nil, errorf(ErrInvalid, "city: %q is not a delta city id", c)
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	// The token ends with this node's CA pin, so the joiner can check it
	// talks to this node before it hands the token over.
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret) + "." + base64.RawURLEncoding.EncodeToString(s.n.creds.CA().Pin())
	now := time.Now()
	expires := timestamppb.New(now.Add(ttl))
	_, err := s.n.propose(ctx, &yrdv1.Command{Time: timestamppb.New(now), Op: &yrdv1.Command_IssueJoinToken{IssueJoinToken: &yrdv1.IssueJoinTokenCommand{
		TokenHash: hashToken(token), ExpiresAt: expires, Suffrage: suffrage, City: req.GetCity(), OutsideMainland: req.GetOutsideMainland()}}})
	if err != nil {
		return nil, err
	}
	return &yrdv1.IssueJoinTokenResponse{Token: token, ExpiresAt: expires}, nil
}

func validJoin(req *yrdv1.JoinRequest) (peer.ID, error) {
	if req.GetToken() == "" {
		return "", errorf(ErrInvalid, "token: required")
	}
	id, err := peer.Decode(req.GetPeerId())
	if err != nil {
		return "", errorf(ErrInvalid, "peer_id: %v", err)
	}
	if _, ok := cities.Lookup(req.GetCity()); !ok {
		return "", errorf(ErrInvalid, "city: %q is not a delta city id", req.GetCity())
	}
	if len(req.GetFabricAddrs()) == 0 {
		return "", errorf(ErrInvalid, "fabric_addrs: at least one is required")
	}
	for i, a := range req.GetFabricAddrs() {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return "", errorf(ErrInvalid, "fabric_addrs[%d]: %v", i, err)
		}
	}
	if _, _, err := net.SplitHostPort(req.GetApiAddr()); err != nil {
		return "", errorf(ErrInvalid, "api_addr: %v", err)
	}
	if err := fabric.VerifyJoin(id, req.GetToken(), req.GetSignature()); err != nil {
		return "", errorf(ErrPermissionDenied, "signature: %v", err)
	}
	return id, nil
}

// Join admits a new node: the token is redeemed through raft (single use,
// checked against its expiry on every replica alike), the joiner enters the
// registry, and the leader adds it to raft as a non-voter. It asks for a
// vote itself once caught up. A refusal is on this node's record, where
// the joiner asked, whichever node decided.
func (s *clusterService) Join(ctx context.Context, req *yrdv1.JoinRequest) (*yrdv1.JoinResponse, error) {
	if _, err := validJoin(req); err != nil {
		if errors.Is(err, ErrPermissionDenied) { // only the signature refuses
			s.n.noteJoinRefusal(ctx, req, RuleJoinBadSignature, err)
		}
		return nil, err
	}
	resp, err := s.redeem(ctx, req)
	if errors.Is(err, ErrPermissionDenied) {
		s.n.noteJoinRefusal(ctx, req, s.n.joinTokenRule(ctx, req), err)
	}
	return resp, err
}

// redeem redeems a valid join request's token at the leader, forwarding
// it there from a follower.
func (s *clusterService) redeem(ctx context.Context, req *yrdv1.JoinRequest) (*yrdv1.JoinResponse, error) {
	n := s.n
	if !n.raft.IsLeader() {
		conn, _, err := n.leaderConn()
		if err != nil {
			return nil, err
		}
		resp, err := yrdv1grpc.NewPeerServiceClient(conn).Join(ctx, req)
		if err != nil {
			return nil, n.hopFailed("the leader", n.raft.Leader(), err)
		}
		return resp, nil
	}
	member := &yrdv1.Member{PeerId: req.GetPeerId(), City: req.GetCity(), FabricAddrs: req.GetFabricAddrs(), ApiAddr: req.GetApiAddr()}
	res, err := n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_RedeemJoinToken{RedeemJoinToken: &yrdv1.RedeemJoinTokenCommand{
		TokenHash: hashToken(req.GetToken()), Member: member}}})
	if err != nil {
		return nil, err
	}
	// The leader's reconcile loop adds the new member to raft within a
	// moment; by then the joiner has the members below and admits them.
	n.kickReconcile()
	return &yrdv1.JoinResponse{Members: n.catalog.Members(), ConfigIndex: res.GetIndex()}, nil
}

func (s *clusterService) Remove(ctx context.Context, req *yrdv1.RemoveRequest) (*yrdv1.RemoveResponse, error) {
	n := s.n
	id := req.GetPeerId()
	if (id == "") == (req.GetCity() == "") {
		return nil, errorf(ErrInvalid, "peer_id or city: give exactly one")
	}
	if id == "" {
		for _, m := range n.catalog.Members() {
			if m.GetCity() == req.GetCity() {
				id = m.GetPeerId()
			}
		}
		if id == "" {
			return nil, errorf(ErrNotFound, "city: no member serves %q", req.GetCity())
		}
	}
	if id == n.raft.Leader() {
		return nil, errorf(ErrConflict, "peer_id: %s is the leader; transfer leadership first", id)
	}
	if !n.raft.IsLeader() {
		// The leader removes it from the registry and from raft in one go,
		// so nothing written after the answer reaches the removed node.
		conn, _, err := n.leaderConn()
		if err != nil {
			return nil, err
		}
		resp, err := yrdv1grpc.NewClusterServiceClient(conn).Remove(ctx, &yrdv1.RemoveRequest{PeerId: id})
		return resp, fromStatus(err)
	}
	if _, err := n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_RemoveMember{RemoveMember: &yrdv1.RemoveMemberCommand{PeerId: id}}}); err != nil {
		return nil, err
	}
	if err := n.raft.RemoveServer(id); err != nil {
		n.log.WarnContext(ctx, "removing member from raft; will retry", "peer_id", id, "err", err)
	}
	return &yrdv1.RemoveResponse{}, nil
}

func (s *clusterService) TransferLeadership(ctx context.Context, req *yrdv1.TransferLeadershipRequest) (*yrdv1.TransferLeadershipResponse, error) {
	n := s.n
	if to := req.GetToPeerId(); to != "" {
		if _, err := peer.Decode(to); err != nil {
			return nil, errorf(ErrInvalid, "to_peer_id: %v", err)
		}
		if m, ok := n.catalog.Member(to); !ok || m.GetSuffrage() != yrdv1.Suffrage_SUFFRAGE_VOTER {
			return nil, errorf(ErrInvalid, "to_peer_id: %s is not a voting member", to)
		}
	}
	if !n.raft.IsLeader() {
		conn, _, err := n.leaderConn()
		if err != nil {
			return nil, err
		}
		resp, err := yrdv1grpc.NewClusterServiceClient(conn).TransferLeadership(ctx, req)
		if err != nil {
			return nil, n.hopFailed("the leader", n.raft.Leader(), err)
		}
		return resp, nil
	}
	if err := n.raft.TransferLeadership(req.GetToPeerId()); err != nil {
		return nil, errorf(ErrUnavailable, "leadership transfer: %v", err)
	}
	// The old leader learns the new one on the next heartbeat.
	for n.raft.Leader() == "" || n.raft.Leader() == n.id.String() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &yrdv1.TransferLeadershipResponse{LeaderPeerId: n.raft.Leader()}, nil
}

// Status reports this node's view and, per member, what the member says of
// itself over the fabric.
func (s *clusterService) Status(ctx context.Context, _ *yrdv1.StatusRequest) (*yrdv1.StatusResponse, error) {
	n := s.n
	resp := n.localStatus()
	servers, _ := n.raft.Servers()
	raftSuffrage := map[string]yrdv1.Suffrage{}
	for _, sv := range servers {
		raftSuffrage[sv.ID] = yrdv1.Suffrage_SUFFRAGE_NONVOTER
		if sv.Voter {
			raftSuffrage[sv.ID] = yrdv1.Suffrage_SUFFRAGE_VOTER
		}
	}
	if resp.GetLeaderPeerId() == "" {
		resp.NoLeader = n.noLeaderReason(ctx)
	}
	members := n.catalog.Members()
	resp.Members = make([]*yrdv1.MemberStatus, len(members))
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range members {
		ms := &yrdv1.MemberStatus{Member: m, RaftSuffrage: raftSuffrage[m.GetPeerId()], Leader: m.GetPeerId() == resp.GetLeaderPeerId()}
		resp.Members[i] = ms
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.probe(ctx, ms)
		}()
	}
	wg.Wait()
	return resp, nil
}

func (n *Node) probe(ctx context.Context, ms *yrdv1.MemberStatus) {
	var st *yrdv1.StatusResponse
	if ms.GetMember().GetPeerId() == n.id.String() {
		st = n.localStatus()
	} else {
		id, err := peer.Decode(ms.GetMember().GetPeerId())
		if err != nil {
			ms.Error = err.Error()
			return
		}
		st, err = n.peerStatus(ctx, id)
		if err != nil {
			ms.Error = err.Error()
			return
		}
	}
	ms.Reachable, ms.RaftState, ms.AppliedIndex = true, st.GetRaftState(), st.GetAppliedIndex()
	if ms.Leader {
		ms.LastContact = timestamppb.Now()
	} else if lc := st.GetMembers(); len(lc) == 1 && lc[0].GetLastContact() != nil {
		ms.LastContact = lc[0].GetLastContact()
	}
	if self := st.GetMembers(); len(self) == 1 && self[0].GetError() != "" {
		ms.Error = self[0].GetError() // e.g. its storage failed
	}
}

// peerStatus asks member id for its own view. The fabric connection is
// opened (or found) first, past libp2p's dial backoff, and the cached gRPC
// channel's reconnect backoff is reset: both grow while a member is down,
// and would show it unreachable for many seconds after it is back.
func (n *Node) peerStatus(ctx context.Context, id peer.ID) (*yrdv1.StatusResponse, error) {
	if err := n.host.Reach(ctx, id); err != nil {
		return nil, err
	}
	conn, err := n.peers.get(id)
	if err != nil {
		return nil, err
	}
	if conn.GetState() == connectivity.TransientFailure {
		conn.ResetConnectBackoff()
	}
	// The fabric connection is up, so waiting for the channel to connect
	// costs one stream; ctx bounds it all the same.
	return yrdv1grpc.NewPeerServiceClient(conn).LocalStatus(ctx, &yrdv1.StatusRequest{}, grpc.WaitForReady(true))
}

// localStatus is this node's own raft view; its single member entry carries
// when it last heard from the leader.
func (n *Node) localStatus() *yrdv1.StatusResponse {
	st := &yrdv1.StatusResponse{
		PeerId:        n.id.String(),
		City:          n.cfg.City,
		RaftState:     n.raft.State(),
		LeaderPeerId:  n.raft.Leader(),
		LeaderApiAddr: n.leaderAPIAddr(),
		Term:          n.raft.Term(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		Version:       n.cfg.Version,
	}
	self := &yrdv1.MemberStatus{Member: &yrdv1.Member{PeerId: n.id.String(), City: n.cfg.City}}
	if lc := n.raft.LastContact(); !lc.IsZero() {
		self.LastContact = timestamppb.New(lc)
	}
	if err := n.raft.StorageErr(); err != nil {
		// Where an operator looks: the member's error in status.
		self.Error = err.Error() + "; restart the node to recover from its disk"
	}
	st.Members = []*yrdv1.MemberStatus{self}
	return st
}

// Backup streams a backup file (see writeBackup), taken after a read
// barrier so it holds every write acknowledged before the call.
func (s *clusterService) Backup(_ *yrdv1.BackupRequest, stream yrdv1grpc.ClusterService_BackupServer) error {
	if err := s.n.readBarrier(stream.Context(), yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); err != nil {
		return err
	}
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&yrdv1.BackupChunk{Data: b}) }}
	if err := s.n.writeBackup(stream.Context(), w); err != nil {
		return err
	}
	return w.flush()
}

// chunkWriter batches a byte stream into messages of up to 256 KiB.
type chunkWriter struct {
	buf  []byte
	send func([]byte) error
}

const chunkSize = 256 << 10

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(chunkSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == chunkSize {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = make([]byte, 0, chunkSize)
	return err
}
