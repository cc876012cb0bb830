package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/auth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

func accessCommands() []command {
	return []command{
		{name: "whoami", summary: "show the principal your credentials authenticate as", setup: runWhoAmI},
		{name: "key", summary: "manage this node's API keys (operator)", sub: []command{
			{name: "create", summary: "create an API key for --org --role --name (shown once)", setup: runKeyCreate},
			{name: "list", summary: "list API keys", setup: runKeyList},
			{name: "revoke", summary: "revoke an API key by id, at once", setup: runKeyRevoke},
		}},
		{name: "cert", summary: "manage client certificates from the node's city CA (operator)", sub: []command{
			{name: "issue", summary: "make a key pair here and have the node certify it (--org --role --name --out PREFIX)", setup: runCertIssue},
			{name: "list", summary: "list issued certificates", setup: runCertList},
			{name: "revoke", summary: "revoke a certificate by serial, at once", setup: runCertRevoke},
		}},
		{name: "grant", summary: "data-use agreements: request, decide, revoke", sub: []command{
			{name: "request", summary: "request use of a dataset (analyst or cdo)", setup: runGrantRequest},
			{name: "list", summary: "list grants", setup: runGrantList},
			{name: "show", summary: "show one grant", setup: runGrantShow},
			{name: "approve", summary: "approve a requested grant (cdo of the owning organisation)", setup: grantDecision("approve")},
			{name: "reject", summary: "reject a requested grant (cdo of the owning organisation)", setup: grantDecision("reject")},
			{name: "revoke", summary: "revoke a grant; the next query is refused on every node", setup: grantDecision("revoke")},
		}},
		{name: "policy", summary: "the delta's rule parameters and decisions", sub: []command{
			{name: "show", summary: "show the rule parameters in force", setup: runPolicyShow},
			{name: "decide", summary: "ask how the rules judge an access request (and put it on record)", setup: runPolicyDecide},
			{name: "usage", summary: "privacy budget spent and cross-border exports counted this year, against their limits", setup: runPolicyUsage},
		}},
		auditCommand(),
	}
}

func runWhoAmI(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, _ []string) error {
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintf(env.Stdout, "%s by %s\n", auth.String(resp.GetPrincipal()), resp.GetMethod())
			return nil
		})
	}
}

func principalArgs(fsOrg, fsRole, fsName string) (yrdv1.Role, error) {
	if fsOrg == "" || fsRole == "" || fsName == "" {
		return 0, usageError{"--org, --role and --name are required"}
	}
	role, err := auth.ParseRole(fsRole)
	if err != nil {
		return 0, usageError{"--" + err.Error()}
	}
	return role, nil
}

func runKeyCreate(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	org := fs.String("org", "", "organisation, e.g. hz-health-commission")
	roleName := fs.String("role", "", "operator, publisher, cdo, analyst or auditor")
	name := fs.String("name", "", "who or what the key is for")
	return func(ctx context.Context, _ []string) error {
		role, err := principalArgs(*org, *roleName, *name)
		if err != nil {
			return err
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).CreateAPIKey(ctx, &yrdv1.CreateAPIKeyRequest{Org: *org, Role: role, Name: *name})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintln(env.Stdout, resp.GetToken())
			fmt.Fprintf(env.Stderr, "key %s for %s; shown once, the node keeps only its hash\n", resp.GetKey().GetId(), auth.String(resp.GetKey().GetPrincipal()))
			return nil
		})
	}
}

func timeOrDash(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format("2006-01-02 15:04Z")
}

func runKeyList(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, _ []string) error {
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).ListAPIKeys(ctx, &yrdv1.ListAPIKeysRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			var rows [][]string
			for _, k := range resp.GetKeys() {
				rows = append(rows, []string{k.GetId(), auth.String(k.GetPrincipal()), timeOrDash(k.GetCreatedAt()), timeOrDash(k.GetRevokedAt())})
			}
			table(env.Stdout, []string{"ID", "PRINCIPAL", "CREATED", "REVOKED"}, rows)
			return nil
		})
	}
}

func runKeyRevoke(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode key revoke ID"}
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).RevokeAPIKey(ctx, &yrdv1.RevokeAPIKeyRequest{Id: pos[0]})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintf(env.Stdout, "revoked key %s (%s)\n", resp.GetKey().GetId(), auth.String(resp.GetKey().GetPrincipal()))
			return nil
		})
	}
}

func runCertIssue(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	org := fs.String("org", "", "organisation")
	roleName := fs.String("role", "", "operator, publisher, cdo, analyst or auditor")
	name := fs.String("name", "", "who the certificate is for")
	out := fs.String("out", "", "write PREFIX.pem and PREFIX.key (mode 0600)")
	ttl := fs.Duration("ttl", 90*24*time.Hour, "validity")
	return func(ctx context.Context, _ []string) error {
		role, err := principalArgs(*org, *roleName, *name)
		if err != nil {
			return err
		}
		if *out == "" {
			return usageError{"--out PREFIX is required"}
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).IssueCertificate(ctx, &yrdv1.IssueCertificateRequest{
				Org: *org, Role: role, Name: *name, PublicKey: pubDER, Ttl: durationpb.New(*ttl)})
			if err != nil {
				return cf.callErr(err)
			}
			keyDER, _ := x509.MarshalECPrivateKey(key)
			if err := os.WriteFile(*out+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(*out+".pem", []byte(resp.GetCertificate().GetPem()), 0o644); err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintf(env.Stdout, "certificate %s for %s: %s.pem, key %s.key; use --cert %s.pem --cert-key %s.key\n",
				resp.GetCertificate().GetSerial(), auth.String(resp.GetCertificate().GetPrincipal()), *out, *out, *out, *out)
			return nil
		})
	}
}

func runCertList(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, _ []string) error {
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).ListCertificates(ctx, &yrdv1.ListCertificatesRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			var rows [][]string
			for _, c := range resp.GetCertificates() {
				rows = append(rows, []string{c.GetSerial(), auth.String(c.GetPrincipal()), timeOrDash(c.GetNotAfter()), timeOrDash(c.GetRevokedAt())})
			}
			table(env.Stdout, []string{"SERIAL", "PRINCIPAL", "EXPIRES", "REVOKED"}, rows)
			return nil
		})
	}
}

func runCertRevoke(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode cert revoke SERIAL"}
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewAuthServiceClient(conn).RevokeCertificate(ctx, &yrdv1.RevokeCertificateRequest{Serial: pos[0]})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			fmt.Fprintf(env.Stdout, "revoked certificate %s (%s)\n", resp.GetCertificate().GetSerial(), auth.String(resp.GetCertificate().GetPrincipal()))
			return nil
		})
	}
}

func parseForm(s string) (yrdv1.ResultForm, error) {
	switch strings.ToLower(s) {
	case "rows":
		return yrdv1.ResultForm_RESULT_FORM_ROWS, nil
	case "aggregates", "aggregate":
		return yrdv1.ResultForm_RESULT_FORM_AGGREGATES, nil
	}
	return 0, usageError{fmt.Sprintf("--form: %q is not rows or aggregates", s)}
}

func runGrantRequest(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	purpose := fs.String("purpose", "", "what the data will be used for, e.g. elderly-care-planning")
	form := fs.String("form", "aggregates", "rows or aggregates")
	duration := fs.Duration("duration", 90*24*time.Hour, "how long the grant runs once approved")
	personal := fs.Bool("allow-personal", false, "ask for PERSONAL columns of GENERAL data unmasked")
	note := fs.String("note", "", "justification for the CDO")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode grant request DATASET_ID --purpose P [--form aggregates|rows]"}
		}
		rf, err := parseForm(*form)
		if err != nil {
			return err
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewGrantServiceClient(conn).RequestGrant(ctx, &yrdv1.RequestGrantRequest{DatasetId: pos[0],
				Purpose: *purpose, ResultForm: rf, Duration: durationpb.New(*duration), AllowPersonal: *personal, Note: *note})
			if err != nil {
				return cf.callErr(err)
			}
			return showGrant(env.Stdout, cf, resp.GetGrant())
		})
	}
}

func grantDecision(verb string) setupFunc {
	return func(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
		note := fs.String("note", "", "reason, kept with the grant")
		expiry := func() (*timestamppb.Timestamp, error) { return nil, nil }
		usage := "usage: yrdnode grant " + verb + " GRANT_ID [--note TEXT]"
		if verb == "approve" {
			expiry = expiryFlags(fs)
			usage += " [--expires DATE | --for DURATION]"
		}
		return func(ctx context.Context, pos []string) error {
			if len(pos) != 1 {
				return usageError{usage}
			}
			expiresAt, err := expiry()
			if err != nil {
				return err
			}
			return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
				c := yrdv1grpc.NewGrantServiceClient(conn)
				req := &yrdv1.DecideGrantRequest{Id: pos[0], Note: *note, ExpiresAt: expiresAt}
				var resp *yrdv1.DecideGrantResponse
				var err error
				switch verb {
				case "approve":
					resp, err = c.ApproveGrant(ctx, req)
				case "reject":
					resp, err = c.RejectGrant(ctx, req)
				default:
					resp, err = c.RevokeGrant(ctx, req)
				}
				if err != nil {
					return cf.callErr(err)
				}
				return showGrant(env.Stdout, cf, resp.GetGrant())
			})
		}
	}
}

// expiryFlags adds approve's --expires and --for, which set the grant's
// expiry earlier than the requested duration would (the node refuses a
// later one), and returns the reader of the time they give, nil for none.
func expiryFlags(fs *pflag.FlagSet) func() (*timestamppb.Timestamp, error) {
	expires := fs.String("expires", "", "expire the grant at this time instead: a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time; at most the requested duration from now")
	runFor := fs.String("for", "", "expire the grant this long from now instead, e.g. 30d or 12h; at most the requested duration")
	return func() (*timestamppb.Timestamp, error) {
		switch {
		case *expires != "" && *runFor != "":
			return nil, usageError{"--expires and --for: give one or neither"}
		case *expires != "":
			t, err := parseExpiry(*expires)
			if err != nil {
				return nil, usageError{"--expires: " + err.Error()}
			}
			return timestamppb.New(t), nil
		case *runFor != "":
			d, err := parseDays(*runFor)
			if err != nil || d <= 0 {
				return nil, usageError{fmt.Sprintf("--for: %q is not a positive duration such as 30d or 12h", *runFor)}
			}
			return timestamppb.New(time.Now().Add(d)), nil
		}
		return nil, nil
	}
}

// parseExpiry reads a date (midnight UTC, as the CLI and console show
// times) or an RFC 3339 time.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-12-31) or an RFC 3339 time (2026-12-31T18:00:00+08:00)", s)
	}
	return t, nil
}

// parseDays is time.ParseDuration that also takes whole days: "30d".
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 100*366 {
			return 0, fmt.Errorf("bad day count %q", n)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func runGrantShow(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode grant show GRANT_ID"}
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewGrantServiceClient(conn).GetGrant(ctx, &yrdv1.GetGrantRequest{Id: pos[0]})
			if err != nil {
				return cf.callErr(err)
			}
			return showGrant(env.Stdout, cf, resp.GetGrant())
		})
	}
}

func grantState(s yrdv1.GrantState) string {
	return strings.ToLower(trimEnum(s.String(), "GRANT_STATE_"))
}

func showGrant(w io.Writer, cf *clientFlags, g *yrdv1.Grant) error {
	if cf.output == "json" {
		return printJSON(w, g)
	}
	for _, row := range [][]string{
		{"id", g.GetId()}, {"dataset", g.GetDatasetId()}, {"requester", g.GetRequesterCity() + " / " + g.GetRequesterOrg()},
		{"purpose", g.GetPurpose()}, {"form", strings.ToLower(trimEnum(g.GetResultForm().String(), "RESULT_FORM_"))},
		{"state", grantState(g.GetState())}, {"expires", timeOrDash(g.GetExpiresAt())}, {"note", g.GetNote()},
	} {
		fmt.Fprintf(w, "%-10s %s\n", row[0]+":", row[1])
	}
	return nil
}

func runGrantList(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dataset := fs.String("dataset", "", "only grants on this dataset")
	org := fs.String("org", "", "only grants to this requester organisation")
	ownerOrg := fs.String("owner-org", "", "only grants on datasets of this owner organisation (a CDO's own data)")
	ownerCity := fs.String("owner-city", "", "only grants on datasets of this owner city")
	state := fs.String("state", "", "requested, approved, rejected or revoked")
	return func(ctx context.Context, _ []string) error {
		var st yrdv1.GrantState
		if *state != "" {
			v, ok := yrdv1.GrantState_value["GRANT_STATE_"+strings.ToUpper(*state)]
			if !ok {
				return usageError{fmt.Sprintf("--state: %q is not requested, approved, rejected or revoked", *state)}
			}
			st = yrdv1.GrantState(v)
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewGrantServiceClient(conn).ListGrants(ctx, &yrdv1.ListGrantsRequest{DatasetId: *dataset, RequesterOrg: *org, State: st,
				OwnerCity: *ownerCity, OwnerOrg: *ownerOrg})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			var rows [][]string
			for _, g := range resp.GetGrants() {
				rows = append(rows, []string{g.GetId(), g.GetDatasetId(), g.GetRequesterCity() + "/" + g.GetRequesterOrg(), g.GetPurpose(), grantState(g.GetState()), timeOrDash(g.GetExpiresAt())})
			}
			table(env.Stdout, []string{"ID", "DATASET", "REQUESTER", "PURPOSE", "STATE", "EXPIRES"}, rows)
			return nil
		})
	}
}

func runPolicyShow(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(ctx context.Context, _ []string) error {
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewPolicyServiceClient(conn).GetPolicy(ctx, &yrdv1.GetPolicyRequest{})
			if err != nil {
				return cf.callErr(err)
			}
			return printJSON(env.Stdout, resp.GetParams())
		})
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func runPolicyDecide(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	purpose := fs.String("purpose", "", "purpose of use")
	form := fs.String("form", "rows", "rows or aggregates")
	columns := fs.String("columns", "", "comma-separated columns shown (empty: all)")
	filters := fs.String("filter-columns", "", "comma-separated columns filtered on")
	groupBy := fs.String("group-by", "", "comma-separated group-by columns")
	orderBy := fs.String("order-by", "", "comma-separated order-by columns")
	aggs := fs.String("aggregates", "", "comma-separated FUNC:COLUMN, e.g. count:,avg:age")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode policy decide DATASET_ID --purpose P [--form rows|aggregates] [--columns a,b] ..."}
		}
		rf, err := parseForm(*form)
		if err != nil {
			return err
		}
		access := &yrdv1.AccessRequest{DatasetId: pos[0], Purpose: *purpose, ResultForm: rf, Columns: splitList(*columns),
			FilterColumns: splitList(*filters), GroupBy: splitList(*groupBy), OrderBy: splitList(*orderBy)}
		for _, a := range splitList(*aggs) {
			fn, col, _ := strings.Cut(a, ":")
			access.Aggregates = append(access.Aggregates, &yrdv1.Aggregate{Function: fn, Column: col})
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewPolicyServiceClient(conn).Decide(ctx, &yrdv1.DecideRequest{Access: access})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			d := resp.GetDecision()
			fmt.Fprintf(env.Stdout, "%s (policy v%d, rules %s, audit #%d)\n%s\n", strings.ToLower(trimEnum(d.GetEffect().String(), "EFFECT_")),
				d.GetPolicyVersion(), strings.Join(d.GetRuleIds(), ", "), resp.GetAuditSeq(), d.GetReason())
			var rows [][]string
			for _, c := range d.GetColumns() {
				rows = append(rows, []string{c.GetColumn(), strings.ToLower(trimEnum(c.GetTreatment().String(), "COLUMN_TREATMENT_"))})
			}
			if len(rows) > 0 {
				fmt.Fprintln(env.Stdout)
				table(env.Stdout, []string{"COLUMN", "TREATMENT"}, rows)
			}
			if d.GetEffect() == yrdv1.Effect_EFFECT_DENY {
				return errDenied
			}
			return nil
		})
	}
}

// errDenied makes a denied decision exit non-zero without repeating it.
var errDenied = errors.New("denied")
