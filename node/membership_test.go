package node_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/fabric"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet"
)

// outsider is a libp2p host with a valid key that is not in the registry.
func outsider(t *testing.T) *fabric.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := fabric.New(fabric.Config{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Gate: fabric.GateFunc(func(peer.ID) bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestNonMemberCannotOpenRaftOrForwardingStreams(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	h := outsider(t)
	for i := 0; i < c.Len(); i++ {
		target := c.Node(i)
		if err := h.SetPeerAddrs(target.PeerID(), target.FabricAddrs()); err != nil {
			t.Fatal(err)
		}
		for _, proto := range []string{string(fabric.ProtocolRaft), string(fabric.ProtocolRPC)} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			conn, err := h.Dial(ctx, target.PeerID(), fabricProtocol(proto))
			cancel()
			if err == nil {
				// A stream that opened must still be refused on first use.
				conn.SetDeadline(time.Now().Add(2 * time.Second))
				_, werr := conn.Write([]byte("hello"))
				buf := make([]byte, 1)
				_, rerr := conn.Read(buf)
				conn.Close()
				if werr == nil && rerr == nil {
					t.Fatalf("outsider opened a %s stream to %s", proto, c.Config(i).City)
				}
			}
		}
	}
}

// TestJoinTokensAreSingleUseAndExpire: a join token admits one node and
// then no other; an expired or unknown token admits none; each refusal is
// on record. (One scenario whose steps share their data and state, so it
// is one function beyond the usual length.)
func TestJoinTokensAreSingleUseAndExpire(t *testing.T) {
	c := startCluster(t, testnet.Options{})
	admin := yrdv1grpc.NewClusterServiceClient(c.Conn(1))
	tok, err := admin.IssueJoinToken(testCtx(t), &yrdv1.IssueJoinTokenRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// A real node joins with it, through a follower.
	joiner := newJoiner(t, "suzhou-js", c.Node(1).APIAddr(), tok.GetToken())
	if err := joiner.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { joiner.Close() })
	select {
	case <-joiner.Ready():
	case <-testCtx(t).Done():
		t.Fatal("joiner never became ready")
	}
	d := publishAt(t, c, 0, 1)
	if err := joiner.Raft().WaitApplied(testCtx(t), c.Node(0).Catalog().AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	if _, ok := joiner.Catalog().GetDataset(d.GetId()); !ok {
		t.Fatal("joiner does not replicate the catalog")
	}

	// The same token again: refused, and no member added.
	second := newJoiner(t, "wuxi", c.Node(1).APIAddr(), tok.GetToken())
	err = second.Start(testCtx(t))
	if status.Code(errorsCause(err)) != codes.PermissionDenied || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("reused token: %v, want PermissionDenied naming it already used", err)
	}
	// An expired token: refused.
	short, err := admin.IssueJoinToken(testCtx(t), &yrdv1.IssueJoinTokenRequest{Ttl: durationpb.New(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until it has expired by the clock the command is stamped with.
	for !time.Now().After(short.GetExpiresAt().AsTime()) {
		time.Sleep(time.Millisecond)
	}
	third := newJoiner(t, "changzhou", c.Node(1).APIAddr(), short.GetToken())
	err = third.Start(testCtx(t))
	if status.Code(errorsCause(err)) != codes.PermissionDenied || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v, want PermissionDenied naming the expiry", err)
	}
	// A made-up secret (with the right CA pin): refused.
	madeUp := "yrdjoin_made-up" + tok.GetToken()[strings.LastIndexByte(tok.GetToken(), '.'):]
	fourth := newJoiner(t, "nantong", c.Node(1).APIAddr(), madeUp)
	if err := fourth.Start(testCtx(t)); status.Code(errorsCause(err)) != codes.PermissionDenied {
		t.Fatalf("made-up token: %v, want PermissionDenied", err)
	}
	// A token sent to a node whose CA it does not pin never leaves the joiner.
	fifth := newJoiner(t, "huzhou", c.Node(0).APIAddr(), tok.GetToken())
	if err := fifth.Start(testCtx(t)); err == nil || !strings.Contains(err.Error(), "CA does not match") {
		t.Fatalf("token sent to another node: %v, want a CA pin mismatch", err)
	}
	if got := len(c.Node(0).Catalog().Members()); got != 4 {
		t.Fatalf("registry has %d members, want the 3 founders and the one good joiner", got)
	}
	// Each refusal is on the record of the node the joiner asked, whichever
	// node decided, naming why; the token that never left is nowhere.
	for i := 0; i < c.Len(); i++ {
		recs := auditRecords(t, c, i, &yrdv1.ListAuditRequest{Action: yrdv1.AuditAction_AUDIT_ACTION_JOIN})
		if i != 1 {
			if len(recs) != 0 {
				t.Fatalf("%s recorded joins it was not asked for: %v", c.Config(i).City, recs)
			}
			continue
		}
		var got []string
		for _, r := range recs {
			if r.GetDecision() != yrdv1.Effect_EFFECT_DENY || r.GetSource() != "127.0.0.1" || r.GetCount() != 0 {
				t.Fatalf("join refusal %v, want a denial from 127.0.0.1", r)
			}
			got = append(got, r.GetRuleIds()[0]+" "+strings.Fields(r.GetDetail())[2])
		}
		want := []string{node.RuleJoinTokenUsed + " wuxi", node.RuleJoinTokenExpired + " changzhou", node.RuleJoinTokenUnknown + " nantong"}
		if !slices.Equal(got, want) {
			t.Fatalf("join refusals %v, want %v", got, want)
		}
	}
}

func TestRemovedMemberIsCutOff(t *testing.T) {
	c := startCluster(t, testnet.Options{Cities: []string{"shanghai", "hangzhou", "nanjing", "hefei"}, Voters: 3})
	admin := yrdv1grpc.NewClusterServiceClient(c.Conn(0))
	removed := c.Node(3)
	if _, err := admin.Remove(testCtx(t), &yrdv1.RemoveRequest{City: "hefei"}); err != nil {
		t.Fatal(err)
	}
	d := publishAt(t, c, 0, 7)
	mustGetEverywhere3 := func() {
		for i := 0; i < 3; i++ {
			if _, err := catalogClient(c, i).GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: d.GetId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustGetEverywhere3()
	// Three more commits, each read linearizably everywhere (a leader
	// heartbeat round each): had the removed node still been replicated
	// to, it would have received d with them.
	later := []*yrdv1.Dataset{publishAt(t, c, 0, 8), publishAt(t, c, 1, 9), publishAt(t, c, 2, 10)}
	for _, ld := range later {
		for i := 0; i < 3; i++ {
			if _, err := catalogClient(c, i).GetDataset(testCtx(t), &yrdv1.GetDatasetRequest{Id: ld.GetId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range []string{d.GetId(), later[2].GetId()} {
		if _, ok := removed.Catalog().GetDataset(id); ok {
			t.Fatalf("the removed member still receives the replicated catalog (it holds %s)", id)
		}
	}
	st, err := admin.Status(testCtx(t), &yrdv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetMembers()) != 3 {
		t.Fatalf("status lists %d members after removal, want 3", len(st.GetMembers()))
	}
	for _, m := range st.GetMembers() {
		if m.GetMember().GetCity() == "hefei" {
			t.Fatal("hefei still listed")
		}
	}
}

func newJoiner(t *testing.T, city, via, token string) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), city)
	cfg.City = city
	cfg.APIAddr, cfg.FabricAddrs = "127.0.0.1:0", []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.JoinAddr, cfg.JoinToken = via, token
	cfg.Raft = testnet.FastRaft()
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
