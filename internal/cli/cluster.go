package cli

import (
	"context"

	"errors"
	"fmt"
	"google.golang.org/grpc"
	"io"
	"os"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"

	"github.com/spf13/pflag"
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
			fmt.Fprintf(env.Stdout, "leader %s at %s\n\n", st.GetLeaderPeerId(), st.GetLeaderApiAddr())
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
		if len(pos) == 1 {
			req.PeerId = pos[0]
		}
		if len(pos) > 1 || (req.PeerId == "") == (req.City == "") {
			return usageError{"usage: yrdnode cluster remove PEER_ID | --city CITY"}
		}
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			if _, err := c.Remove(ctx, req); err != nil {
				return cf.callErr(err)
			}
			fmt.Fprintln(env.Stdout, "removed; every node now refuses its connections")
			return nil
		})
	}
}

func runTransferLeader(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	to := fs.String("to", "", "peer id of the voter to lead (default: the most up-to-date)")
	return func(ctx context.Context, _ []string) error {
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			resp, err := c.TransferLeadership(ctx, &yrdv1.TransferLeadershipRequest{ToPeerId: *to})
			if err != nil {
				return cf.callErr(err)
			}
			fmt.Fprintf(env.Stdout, "leader is now %s\n", resp.GetLeaderPeerId())
			return nil
		})
	}
}

func runBackup(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	out := fs.StringP("file", "f", "", "write the backup to this file (required)")
	return func(ctx context.Context, _ []string) error {
		if *out == "" {
			return usageError{"backup needs -f FILE"}
		}
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			stream, err := c.Backup(ctx, &yrdv1.BackupRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			tmp := *out + ".partial"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer os.Remove(tmp)
			var size int64
			for {
				chunk, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					f.Close()
					return cf.callErr(err)
				}
				n, err := f.Write(chunk.GetData())
				size += int64(n)
				if err != nil {
					f.Close()
					return err
				}
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp, *out); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "wrote %s (%d bytes); restore by stopping a node and replacing its catalog.db with it\n", *out, size)
			return nil
		})
	}
}
