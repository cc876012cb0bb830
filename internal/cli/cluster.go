package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

func withCluster(ctx context.Context, cf *clientFlags, f func(context.Context, yrdv1grpc.ClusterServiceClient) error) error {
	return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		return f(ctx, yrdv1grpc.NewClusterServiceClient(conn))
	})
}

func runClusterStatus(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, _ []string) error {
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			st, err := c.Status(ctx, &yrdv1.StatusRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, st)
			}
			fmt.Fprintf(env.Stdout, "node %s (%s), %s, term %d, commit %d, applied %d, version %s\n",
				st.GetCity(), st.GetPeerId(), st.GetRaftState(), st.GetTerm(), st.GetCommitIndex(), st.GetAppliedIndex(), st.GetVersion())
			if st.GetLeaderPeerId() == "" && st.GetNoLeader() != "" {
				fmt.Fprintf(env.Stdout, "%s\n\n", st.GetNoLeader())
			} else {
				fmt.Fprintf(env.Stdout, "leader %s at %s\n\n", st.GetLeaderPeerId(), st.GetLeaderApiAddr())
			}
			var rows [][]string
			for _, m := range st.GetMembers() {
				role := trimEnum(m.GetMember().GetSuffrage().String(), "SUFFRAGE_")
				if m.GetRaftSuffrage() != m.GetMember().GetSuffrage() {
					role += " (raft: " + trimEnum(m.GetRaftSuffrage().String(), "SUFFRAGE_") + ")"
				}
				state, contact := m.GetRaftState(), "-"
				if !m.GetReachable() {
					state = "unreachable"
				}
				if m.GetLastContact() != nil {
					contact = time.Since(m.GetLastContact().AsTime()).Round(time.Millisecond).String() + " ago"
				}
				rows = append(rows, []string{m.GetMember().GetCity(), role, state, strconv.FormatUint(m.GetAppliedIndex(), 10),
					contact, m.GetMember().GetApiAddr(), m.GetMember().GetPeerId()})
			}
			table(env.Stdout, []string{"CITY", "ROLE", "STATE", "APPLIED", "LAST CONTACT", "API", "PEER ID"}, rows)
			return nil
		})
	}
}

func runJoinToken(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid (at most 168h)")
	voter := fs.Bool("voter", false, "the joiner votes (3-7 core cities); default non-voter")
	city := fs.String("city", "", "only a node of this city may use the token")
	outside := fs.Bool("outside-mainland", false, "the joiner is a Lingang cross-border trial partner outside the mainland")
	return func(ctx context.Context, _ []string) error {
		suffrage := yrdv1.Suffrage_SUFFRAGE_NONVOTER
		if *voter {
			suffrage = yrdv1.Suffrage_SUFFRAGE_VOTER
		}
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			resp, err := c.IssueJoinToken(ctx, &yrdv1.IssueJoinTokenRequest{Ttl: durationpb.New(*ttl), Suffrage: suffrage, City: *city, OutsideMainland: *outside})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintf(env.Stdout, "%s\n", resp.GetToken())
			fmt.Fprintf(env.Stderr, "single use, expires %s; on the new node: yrdnode cluster join --data-dir DIR --via %s --token TOKEN\n",
				resp.GetExpiresAt().AsTime().Format(time.RFC3339), cf.node)
			return nil
		})
	}
}

func runClusterRemove(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	city := fs.String("city", "", "remove the member serving this city")
	return func(ctx context.Context, pos []string) error {
		req := &yrdv1.RemoveRequest{City: *city}
		if len(pos) > 1 || (len(pos) == 1) == (req.City != "") {
			return usageError{"usage: yrdnode cluster remove PEER_ID|CITY (or --city CITY)"}
		}
		if len(pos) == 1 {
			// A member is named by its city or its peer id, as in
			// transfer-leader --to; the node resolves a city itself.
			if isCity(pos[0]) {
				req.City = pos[0]
			} else {
				req.PeerId = pos[0]
			}
		}
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			if _, err := c.Remove(ctx, req); err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printValue(env.Stdout, struct {
					PeerID string `json:"removed_peer_id,omitempty"`
					City   string `json:"removed_city,omitempty"`
				}{req.GetPeerId(), req.GetCity()})
			}
			fmt.Fprintln(env.Stdout, "removed; every node now refuses its connections")
			return nil
		})
	}
}

func runTransferLeader(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	to := fs.String("to", "", "the voter to lead, by peer id or city (default: the most up-to-date)")
	return func(ctx context.Context, _ []string) error {
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			peerID, err := memberPeerID(ctx, c, *to)
			if err != nil {
				return cf.callErr(err)
			}
			resp, err := c.TransferLeadership(ctx, &yrdv1.TransferLeadershipRequest{ToPeerId: peerID})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintf(env.Stdout, "leader is now %s\n", resp.GetLeaderPeerId())
			return nil
		})
	}
}

// isCity reports whether name is a delta city id rather than a peer id.
func isCity(name string) bool {
	_, ok := cities.Lookup(name)
	return ok
}

// memberPeerID is the peer id of the member named by name, a city id
// (looked up in the node's cluster status) or already a peer id.
func memberPeerID(ctx context.Context, c yrdv1grpc.ClusterServiceClient, name string) (string, error) {
	if !isCity(name) {
		return name, nil
	}
	st, err := c.Status(ctx, &yrdv1.StatusRequest{})
	if err != nil {
		return "", err
	}
	for _, m := range st.GetMembers() {
		if m.GetMember().GetCity() == name {
			return m.GetMember().GetPeerId(), nil
		}
	}
	return "", fmt.Errorf("no member serves %s (see 'yrdnode cluster status')", name)
}
