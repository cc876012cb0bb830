package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/internal/fsutil"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// join asks an existing node to admit this one, using a join token.
func (n *Node) join(ctx context.Context) error {
	if _, err := os.Stat(n.cfg.joinPath()); err == nil {
		n.log.Info("resuming join: waiting for the leader to replicate")
		return nil
	}
	pin, err := tokenPin(n.cfg.JoinToken)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(n.cfg.JoinAddr, grpc.WithTransportCredentials(credentials.NewTLS(auth.PinnedTLS(pin))))
	if err != nil {
		return err
	}
	defer conn.Close()
	cluster := yrdv1grpc.NewClusterServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sig, err := fabric.SignJoin(n.key, n.cfg.JoinToken)
	if err != nil {
		return err
	}
	resp, err := askToJoin(ctx, cluster, &yrdv1.JoinRequest{
		Token:       n.cfg.JoinToken,
		PeerId:      n.id.String(),
		City:        n.cfg.City,
		FabricAddrs: n.host.AddrStrings(),
		ApiAddr:     n.apiAddr,
		Signature:   sig,
	})
	if err != nil {
		return err
	}
	for _, m := range resp.GetMembers() {
		n.addSeed(m)
	}
	if err := savePeers(n.cfg.peersPath(), resp.GetMembers()); err != nil {
		return err
	}
	// join.json marks a join in progress: the token is spent, and the peers
	// cache lets the leader's replication in should the node restart now.
	if err := fsutil.WriteFileAtomic(n.cfg.joinPath(), []byte("{}\n"), 0o600); err != nil {
		return err
	}
	n.log.Info("joined cluster", "via", n.cfg.JoinAddr, "config_index", resp.GetConfigIndex())
	return nil
}

// membershipLoop watches this node's standing: it marks the node ready,
// keeps the node's registry entry current, asks for promotion to voter
// once caught up, and, while leader, makes the raft configuration follow
// the registry.
func (n *Node) membershipLoop() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	failed := n.raft.StorageFailed()
	for {
		select {
		case <-n.base.Done():
			return
		case <-failed:
			failed = nil // closed for good; one prompt round is enough
		case <-tick.C:
		case <-n.reconcileCh:
		case <-n.raft.LeaderCh():
		}
		ctx, cancel := context.WithTimeout(n.base, 5*time.Second)
		n.membershipRound(ctx)
		cancel()
		n.lastRound.Store(time.Now().UnixNano())
	}
}

func (n *Node) membershipRound(ctx context.Context) {
	if err := n.raft.StorageErr(); err != nil {
		// Raft is stopped here; nothing below may flip health back.
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		return
	}
	if n.checkRemoved() {
		return
	}
	if n.raft.IsLeader() {
		if err := n.reconcile(ctx); err != nil {
			n.log.Warn("reconciling raft configuration with the registry", "err", err)
		}
	}
	n.cutRemovedPeers()
	if members := n.catalog.Members(); len(members) > 0 && !sameMembers(members, n.savedPeers) {
		if err := savePeers(n.cfg.peersPath(), members); err != nil {
			n.log.Warn("saving the member cache", "err", err)
		} else {
			n.savedPeers = members
		}
	}
	self, inRegistry := n.catalog.Member(n.id.String())
	if !inRegistry || n.raft.Leader() == "" {
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		return
	}
	n.readyOnce.Do(func() {
		close(n.ready)
		n.seedMu.Lock()
		clear(n.seeds) // from now on only the registry admits peers
		n.seedMu.Unlock()
		if err := os.WriteFile(n.cfg.memberPath(), []byte(n.id.String()+"\n"), 0o600); err != nil {
			n.log.Warn("writing member marker", "err", err)
		}
		os.Remove(n.cfg.joinPath())
		n.log.Info("node ready", "leader", n.raft.Leader())
	})
	n.setServing()

	want := proto.Clone(self).(*yrdv1.Member)
	want.FabricAddrs, want.ApiAddr = n.host.AddrStrings(), n.apiAddr
	if !proto.Equal(want, self) {
		if _, err := n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_PutMember{PutMember: &yrdv1.PutMemberCommand{Member: want}}}); err != nil {
			n.log.Warn("updating own registry entry", "err", err)
		}
	}
	if self.GetSuffrage() == yrdv1.Suffrage_SUFFRAGE_VOTER && !n.raft.IsLeader() {
		servers, err := n.raft.Servers()
		if err != nil {
			return
		}
		i := slices.IndexFunc(servers, func(s consensus.Server) bool { return s.ID == n.id.String() })
		// Ask only once caught up, so a new voter never slows the quorum.
		if i >= 0 && !servers[i].Voter && n.raft.AppliedIndex()+64 >= n.raft.CommitIndex() {
			client, err := n.leaderPeer()
			if err == nil {
				_, err = client.Promote(ctx, &yrdv1grpc.PromoteRequest{})
			}
			if err != nil {
				n.log.Warn("asking for promotion to voter", "err", err)
			}
		}
	}
}

// reconcile makes the raft configuration follow the member registry: the
// registry is what operators change (join, remove), raft follows.
func (n *Node) reconcile(ctx context.Context) error {
	members := n.catalog.Members()
	if len(members) == 0 {
		// A freshly bootstrapped cluster: register its first node.
		self := &yrdv1.Member{PeerId: n.id.String(), City: n.cfg.City, Suffrage: yrdv1.Suffrage_SUFFRAGE_VOTER,
			FabricAddrs: n.host.AddrStrings(), ApiAddr: n.apiAddr}
		_, err := n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_PutMember{PutMember: &yrdv1.PutMemberCommand{Member: self}}})
		return err
	}
	servers, err := n.raft.Servers()
	if err != nil {
		return err
	}
	inRaft := map[string]bool{}
	for _, s := range servers {
		inRaft[s.ID] = true
	}
	inRegistry := map[string]bool{}
	for _, m := range members {
		inRegistry[m.GetPeerId()] = true
		if !inRaft[m.GetPeerId()] {
			if _, err := n.raft.AddNonvoter(m.GetPeerId()); err != nil {
				return fmt.Errorf("add %s (%s): %w", m.GetCity(), m.GetPeerId(), err)
			}
		}
	}
	for _, s := range servers {
		if !inRegistry[s.ID] && s.ID != n.id.String() {
			if err := n.raft.RemoveServer(s.ID); err != nil {
				return fmt.Errorf("remove %s: %w", s.ID, err)
			}
		}
	}
	return nil
}

// askToJoin sends the join request, again while the cluster answers
// Unavailable (it is electing a leader, or its leader is changing), until
// ctx ends. The token is spent only by a join that succeeds, so asking
// again is safe.
func askToJoin(ctx context.Context, c yrdv1grpc.ClusterServiceClient, req *yrdv1.JoinRequest) (*yrdv1.JoinResponse, error) {
	wait := 100 * time.Millisecond
	for {
		resp, err := c.Join(ctx, req)
		if status.Code(err) != codes.Unavailable {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// leaderPeer returns a fabric client for the current leader.
func (n *Node) leaderPeer() (yrdv1grpc.PeerServiceClient, error) {
	conn, _, err := n.leaderConn()
	if err != nil {
		return nil, err
	}
	return yrdv1grpc.NewPeerServiceClient(conn), nil
}

// leaderConn returns a fabric connection to the current leader.
func (n *Node) leaderConn() (*grpc.ClientConn, peer.ID, error) {
	leader := n.raft.Leader()
	if leader == "" {
		return nil, "", errorf(ErrUnavailable, "no leader elected yet; retry shortly")
	}
	id, err := peer.Decode(leader)
	if err != nil {
		return nil, "", err
	}
	conn, err := n.peers.get(id)
	return conn, id, err
}

// leaderAPIAddr names the leader's client address, for error messages.
func (n *Node) leaderAPIAddr() string {
	if m, ok := n.catalog.Member(n.raft.Leader()); ok {
		return m.GetApiAddr()
	}
	return ""
}

// tokenPin extracts the issuing node's CA pin from a join token.
func tokenPin(token string) ([]byte, error) {
	i := strings.LastIndexByte(token, '.')
	if !strings.HasPrefix(token, tokenPrefix) || i < 0 {
		return nil, errorf(ErrInvalid, "join token: not a yrdnode join token (want %s<secret>.<ca pin>)", tokenPrefix)
	}
	pin, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(pin) != auth.PinSize {
		return nil, errorf(ErrInvalid, "join token: malformed CA pin")
	}
	return pin, nil
}
