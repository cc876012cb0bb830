package node

import (
	"context"
	"errors"

	"google.golang.org/grpc/peer"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// peerService answers other members over the fabric. The gate has already
// checked that the caller is a member; callerMember checks again, so a
// handler never runs for a peer that was removed a moment ago.
type peerService struct {
	yrdv1grpc.UnimplementedPeerServiceServer
	n *Node
}

func (s *peerService) callerMember(ctx context.Context) (*yrdv1.Member, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, errorf(ErrPermissionDenied, "no authenticated peer")
	}
	id, ok := fabric.PeerIDFromAddr(p.Addr)
	if !ok {
		return nil, errorf(ErrPermissionDenied, "caller is not on the fabric")
	}
	m, ok := s.n.catalog.Member(id.String())
	if !ok {
		s.n.seedMu.RLock()
		seed := s.n.seeds[id]
		s.n.seedMu.RUnlock()
		if !seed {
			return nil, errorf(ErrPermissionDenied, "peer %s is not a member", id)
		}
		m = &yrdv1.Member{PeerId: id.String()}
	}
	return m, nil
}

func (s *peerService) Apply(ctx context.Context, req *yrdv1grpc.ApplyRequest) (*yrdv1grpc.ApplyResponse, error) {
	m, err := s.callerMember(ctx)
	if err != nil {
		return nil, err
	}
	// Whatever the caller wrote there, the origin is who it proved to be.
	cmd := req.GetCommand()
	cmd.OriginPeer, cmd.OriginCity = m.GetPeerId(), m.GetCity()
	if ferr := s.n.raft.StorageErr(); ferr != nil {
		// Failed before this command reached it: the command never entered
		// the log here, so the caller may retry with the next leader.
		return &yrdv1grpc.ApplyResponse{Result: &yrdv1.CommandResult{ErrorCode: yrdv1.ErrorCode_ERROR_CODE_NOT_LEADER,
			ErrorMessage: "no longer a leader: " + ferr.Error()}}, nil
	}
	res, err := s.n.applyLocal(ctx, cmd)
	if errors.Is(err, consensus.ErrNotLeader) {
		return &yrdv1grpc.ApplyResponse{Result: &yrdv1.CommandResult{ErrorCode: yrdv1.ErrorCode_ERROR_CODE_NOT_LEADER, ErrorMessage: err.Error()}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &yrdv1grpc.ApplyResponse{Result: res}, nil
}

func (s *peerService) ReadIndex(ctx context.Context, _ *yrdv1grpc.ReadIndexRequest) (*yrdv1grpc.ReadIndexResponse, error) {
	if _, err := s.callerMember(ctx); err != nil {
		return nil, err
	}
	index, err := s.n.raft.ReadIndex(ctx)
	if err != nil {
		return nil, err
	}
	return &yrdv1grpc.ReadIndexResponse{Index: index}, nil
}

func (s *peerService) Promote(ctx context.Context, _ *yrdv1grpc.PromoteRequest) (*yrdv1grpc.PromoteResponse, error) {
	m, err := s.callerMember(ctx)
	if err != nil {
		return nil, err
	}
	if m.GetSuffrage() != yrdv1.Suffrage_SUFFRAGE_VOTER {
		return nil, errorf(ErrPermissionDenied, "peer %s is registered as a non-voter", m.GetPeerId())
	}
	if _, err := s.n.raft.AddVoter(m.GetPeerId()); err != nil {
		return nil, err
	}
	return &yrdv1grpc.PromoteResponse{}, nil
}

func (s *peerService) Join(ctx context.Context, req *yrdv1.JoinRequest) (*yrdv1.JoinResponse, error) {
	if _, err := s.callerMember(ctx); err != nil {
		return nil, err
	}
	// The member that forwards the join put any refusal on its record.
	if _, err := validJoin(req); err != nil {
		return nil, err
	}
	return (&clusterService{n: s.n}).redeem(ctx, req)
}

func (s *peerService) LocalStatus(ctx context.Context, _ *yrdv1.StatusRequest) (*yrdv1.StatusResponse, error) {
	if _, err := s.callerMember(ctx); err != nil {
		return nil, err
	}
	return s.n.localStatus(), nil
}

// fabricCluster is the part of ClusterService other members may call over
// the fabric: forwarding a leadership transfer or a removal that an
// operator asked its own node for. Everything else is for clients of a
// node's API.
type fabricCluster struct {
	yrdv1grpc.UnimplementedClusterServiceServer
	n *Node
}

func (f *fabricCluster) TransferLeadership(ctx context.Context, req *yrdv1.TransferLeadershipRequest) (*yrdv1.TransferLeadershipResponse, error) {
	if _, err := (&peerService{n: f.n}).callerMember(ctx); err != nil {
		return nil, err
	}
	return (&clusterService{n: f.n}).TransferLeadership(ctx, req)
}

func (f *fabricCluster) Remove(ctx context.Context, req *yrdv1.RemoveRequest) (*yrdv1.RemoveResponse, error) {
	if _, err := (&peerService{n: f.n}).callerMember(ctx); err != nil {
		return nil, err
	}
	if !f.n.raft.IsLeader() {
		// Forwarded once only: a leader change meanwhile is the caller's
		// to retry, not a loop between two nodes that each think the
		// other leads.
		return nil, errorf(ErrUnavailable, "not the leader any more; retry")
	}
	return (&clusterService{n: f.n}).Remove(ctx, req)
}
