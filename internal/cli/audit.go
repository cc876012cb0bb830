package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"

	"github.com/spf13/pflag"
)

// auditCommand is "yrdnode audit": reading and checking a node's audit
// trail, which auditors do.
func auditCommand() command {
	return command{name: "audit", summary: "the node's tamper-evident audit trail (auditor)", sub: []command{
		{name: "list", summary: "list audit records, with filters", setup: runAuditList},
		{name: "verify", summary: "check the chain, signatures and anchors; names the first bad record", setup: runAuditVerify},
		{name: "export", summary: "export records as JSON Lines for a regulator", setup: runAuditExport},
	}}
}

func runAuditList(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	af := addAuditFilter(fs)
	limit := fs.Int("limit", 100, "records per page (at most 10000)")
	after := fs.Uint64("after", 0, "start after this record number")
	return func(ctx context.Context, _ []string) error {
		req, err := af.build()
		if err != nil {
			return err
		}
		req.Limit, req.AfterSeq = int32(*limit), *after
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuditServiceClient(conn).ListAudit(ctx, req)
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			var rows [][]string
			for _, r := range resp.GetRecords() {
				rows = append(rows, []string{strconv.FormatUint(r.GetSeq(), 10), r.GetTime().AsTime().UTC().Format("2006-01-02 15:04:05Z"),
					strings.ToLower(trimEnum(r.GetAction().String(), "AUDIT_ACTION_")), auditWho(r), r.GetDatasetId(),
					strings.ToLower(trimEnum(r.GetDecision().String(), "EFFECT_")), strings.Join(r.GetRuleIds(), ","), r.GetDetail()})
			}
			table(env.Stdout, []string{"SEQ", "TIME", "ACTION", "REQUESTER", "DATASET", "DECISION", "RULES", "DETAIL"}, rows)
			if resp.GetNextAfterSeq() != 0 {
				fmt.Fprintf(env.Stdout, "\nmore: --after %d\n", resp.GetNextAfterSeq())
			}
			return nil
		})
	}
}

// auditWho is a record's requester, or for a refusal of no proven
// principal where it came from.
func auditWho(r *yrdv1.AuditRecord) string {
	if r.GetRequester() == nil && r.GetSource() != "" {
		return "from " + r.GetSource()
	}
	return auth.String(r.GetRequester())
}

func runAuditVerify(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	file := fs.String("file", "", "verify a copy of a node's audit.db offline instead of asking a node (needs --peer)")
	peerID := fs.String("peer", "", "with --file: the peer id of the node that wrote the log (its key signs every record)")
	return func(ctx context.Context, _ []string) error {
		if *file != "" || *peerID != "" {
			return verifyAuditFile(env, *file, *peerID)
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuditServiceClient(conn).VerifyAudit(ctx, &yrdv1.VerifyAuditRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				if err := printJSON(env.Stdout, resp); err != nil {
					return err
				}
			} else if resp.GetOk() {
				fmt.Fprintf(env.Stdout, "ok: %d records, chain and signatures intact, %d anchors match\n", resp.GetRecords(), resp.GetAnchorsChecked())
			}
			if !resp.GetOk() {
				return fmt.Errorf("audit log fails verification at record %d: %s", resp.GetFirstBad(), resp.GetProblem())
			}
			return nil
		})
	}
}

func runAuditExport(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	af := addAuditFilter(fs)
	out := fs.StringP("file", "f", "-", "write JSON Lines to this file (- for standard output)")
	return func(ctx context.Context, _ []string) error {
		req, err := af.build()
		if err != nil {
			return err
		}
		w := env.Stdout
		if *out != "-" {
			f, err := os.OpenFile(*out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			stream, err := yrdv1grpc.NewAuditServiceClient(conn).ExportAudit(ctx, req)
			if err != nil {
				return cf.callErr(err)
			}
			line := protojson.MarshalOptions{UseProtoNames: true}
			for {
				rec, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return cf.callErr(err)
				}
				data, err := line.Marshal(rec)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "%s\n", data); err != nil {
					return err
				}
			}
		})
	}
}

// verifyAuditFile checks a copy of an audit log with nothing but the
// writer's peer id, which embeds its ed25519 public key: the chain and
// every signature. (Anchors live in the catalog; a node checks them.)
func verifyAuditFile(env Env, path, peerID string) error {
	if path == "" || peerID == "" {
		return usageError{"audit verify --file needs --peer, the peer id of the node that wrote the log"}
	}
	id, err := peer.Decode(peerID)
	if err != nil {
		return usageError{fmt.Sprintf("--peer: %v", err)}
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return usageError{fmt.Sprintf("--peer: %s does not embed its public key: %v", peerID, err)}
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return usageError{fmt.Sprintf("--peer: %s is not an ed25519 identity", peerID)}
	}
	rep := audit.VerifyFile(path, ed25519.PublicKey(raw), nil)
	if !rep.OK {
		return fmt.Errorf("audit log %s fails verification at record %d: %s", path, rep.FirstBad, rep.Problem)
	}
	fmt.Fprintf(env.Stdout, "ok: %d records, chain and signatures intact (anchors not checked offline)\n", rep.Records)
	return nil
}

// auditListFlags are the record filters that audit list and audit export
// share.
type auditListFlags struct {
	req               *yrdv1.ListAuditRequest
	decision, outcome *string
	action            *string
	since, until      *string
}

func addAuditFilter(fs *pflag.FlagSet) *auditListFlags {
	a := &auditListFlags{req: &yrdv1.ListAuditRequest{}}
	fs.StringVar(&a.req.Requester, "requester", "", "principal name, organisation or city")
	fs.StringVar(&a.req.DatasetId, "dataset", "", "dataset id")
	fs.StringVar(&a.req.RuleId, "rule", "", "records with this rule id, e.g. auth.bad-key or important.grant")
	a.outcome = fs.String("outcome", "", "deny, allow_rows or allow_aggregates")
	a.decision = fs.String("decision", "", "the same as --outcome")
	a.action = fs.String("action", "", "publish, regrade, grant_approve, query, authenticate, peer_connect, join, admin, ...")
	a.since = fs.String("since", "", "from this time (RFC 3339)")
	a.until = fs.String("until", "", "before this time (RFC 3339)")
	return a
}

// outcomeFlag is the outcome asked for, by --outcome or --decision, and
// the flag that named it.
func (a *auditListFlags) outcomeFlag() (word, flagName string, err error) {
	switch {
	case *a.outcome != "" && *a.decision != "" && !strings.EqualFold(*a.outcome, *a.decision):
		return "", "", usageError{fmt.Sprintf("--outcome %q and --decision %q disagree; give one", *a.outcome, *a.decision)}
	case *a.outcome != "":
		return *a.outcome, "--outcome", nil
	}
	return *a.decision, "--decision", nil
}

func (a *auditListFlags) build() (*yrdv1.ListAuditRequest, error) {
	word, flagName, err := a.outcomeFlag()
	if err != nil {
		return nil, err
	}
	if word != "" {
		v, ok := yrdv1.Effect_value["EFFECT_"+strings.ToUpper(word)]
		if !ok || v == 0 {
			return nil, usageError{fmt.Sprintf("%s: %q is not deny, allow_rows or allow_aggregates", flagName, word)}
		}
		a.req.Decision = yrdv1.Effect(v)
	}
	if *a.action != "" {
		v, ok := yrdv1.AuditAction_value["AUDIT_ACTION_"+strings.ToUpper(*a.action)]
		if !ok {
			return nil, usageError{fmt.Sprintf("--action: %q is not an audit action", *a.action)}
		}
		a.req.Action = yrdv1.AuditAction(v)
	}
	if a.req.Since, err = parseTime(*a.since); err != nil {
		return nil, err
	}
	if a.req.Until, err = parseTime(*a.until); err != nil {
		return nil, err
	}
	return a.req, nil
}

// parseTime reads an RFC 3339 time flag; "" is no time.
func parseTime(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, usageError{fmt.Sprintf("time %q: want RFC 3339, e.g. 2026-11-22T08:00:00Z", s)}
	}
	return timestamppb.New(t), nil
}
