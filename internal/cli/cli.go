// Package cli implements the yrdnode command line: the daemon commands
// (init, serve, dev) and the client commands that talk to a node's gRPC API.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Env is the process environment a command runs in; tests supply their own.
type Env struct {
	Args           []string
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Version        string
}

// DefaultNode is where client commands look when neither --node nor
// YRDNODE_NODE says otherwise: the first node of `yrdnode dev`.
const DefaultNode = "127.0.0.1:7401"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
	sub     []command
}

func commands() []command {
	return []command{
		{name: "init", summary: "create a node's identity and config in a data dir", run: runInit},
		{name: "serve", summary: "run a node from its data dir", run: runServe},
		{name: "dev", summary: "run a local 3-city delta with sample data", run: runDev},
		{name: "dataset", summary: "publish, read and retire catalog datasets", sub: []command{
			{name: "publish", summary: "publish a dataset from a YAML or JSON file (-f)", run: runDatasetPublish},
			{name: "get", summary: "show one dataset", run: runDatasetGet},
			{name: "list", summary: "list datasets, with filters", run: runDatasetList},
			{name: "update", summary: "update a dataset from a file (-f), checking its version", run: runDatasetUpdate},
			{name: "retire", summary: "retire a dataset", run: runDatasetRetire},
		}},
		{name: "cluster", summary: "inspect and change cluster membership", sub: []command{
			{name: "status", summary: "show members, leader and raft indexes", run: runClusterStatus},
			{name: "join-token", summary: "issue a single-use join token", run: runJoinToken},
			{name: "join", summary: "run a new node that joins a cluster with a token", run: runClusterJoin},
			{name: "remove", summary: "remove a member (by peer id or --city)", run: runClusterRemove},
			{name: "transfer-leader", summary: "hand leadership to another voter", run: runTransferLeader},
		}},
		{name: "backup", summary: "save a consistent snapshot of the catalog to a file", run: runBackup},
		{name: "testnet", summary: "a delta of real processes on an emulated network, with faults and a checker", sub: testnetCommands()},
		{name: "bench", summary: "drive a running cluster with a bounded load and report ops/s and latency", run: runBench},
		{name: "version", summary: "print the version", run: runVersion},
	}
}

func allCommands() []command {
	cmds := commands()
	return append(cmds[:len(cmds)-1:len(cmds)-1], append(append(accessCommands(), queryCommands()...), cmds[len(cmds)-1])...)
}

// Main runs one command line and returns the process exit status.
func Main(ctx context.Context, env Env) int {
	err := dispatch(ctx, env, allCommands(), env.Args, "yrdnode")
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errDenied) {
		return 1
	}
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintf(env.Stderr, "yrdnode: %v\n", err)
		return 2
	}
	fmt.Fprintf(env.Stderr, "yrdnode: %v\n", err)
	return 1
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func dispatch(ctx context.Context, env Env, cmds []command, args []string, path string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(env.Stdout, cmds, path)
		if len(args) == 0 {
			return usageError{"missing command; see above"}
		}
		return nil
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		if c.sub != nil {
			return dispatch(ctx, env, c.sub, args[1:], path+" "+c.name)
		}
		return c.run(ctx, env, args[1:])
	}
	return usageError{fmt.Sprintf("unknown command %q for %s; run '%s help'", args[0], path, path)}
}

func printUsage(w io.Writer, cmds []command, path string) {
	fmt.Fprintf(w, "Usage: %s COMMAND [flags]\n\nCommands:\n", path)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", path)
}

// newFlags makes a flag set whose errors come back instead of exiting.
func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses args, allowing flags after positional arguments
// ("dataset get ID -o json") as people tend to type them.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// clientFlags are shared by every command that talks to a node.
type clientFlags struct {
	node    string
	output  string
	outputs []string // what -o accepts; nil means table and json
	timeout time.Duration
	ca      string
	key     string
	cert    string
	certKey string
}

func envOr(env Env, name, def string) string {
	if v := env.Getenv(name); v != "" {
		return v
	}
	return def
}

func addClientFlags(fs *flag.FlagSet, env Env) *clientFlags {
	cf := &clientFlags{}
	fs.StringVar(&cf.node, "node", envOr(env, "YRDNODE_NODE", DefaultNode), "node API address (env YRDNODE_NODE)")
	fs.StringVar(&cf.output, "o", "table", "output: table or json")
	fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "deadline for the call")
	fs.StringVar(&cf.ca, "ca", env.Getenv("YRDNODE_CA"), "the node's city CA certificate, ca/ca.pem in its data dir (env YRDNODE_CA)")
	fs.StringVar(&cf.key, "key", env.Getenv("YRDNODE_KEY"), "API key (env YRDNODE_KEY)")
	fs.StringVar(&cf.cert, "cert", env.Getenv("YRDNODE_CERT"), "client certificate PEM (env YRDNODE_CERT)")
	fs.StringVar(&cf.certKey, "cert-key", env.Getenv("YRDNODE_CERT_KEY"), "client certificate's private key PEM (env YRDNODE_CERT_KEY)")
	return cf
}

func (cf *clientFlags) check() error {
	outputs := cf.outputs
	if outputs == nil {
		outputs = []string{"table", "json"}
	}
	if !slices.Contains(outputs, cf.output) {
		return usageError{fmt.Sprintf("-o: %q is not %s", cf.output, strings.Join(outputs, ", "))}
	}
	if cf.ca == "" {
		return usageError{"--ca: required: the node's city CA certificate (ca/ca.pem in its data dir; env YRDNODE_CA)"}
	}
	if (cf.cert == "") != (cf.certKey == "") {
		return usageError{"--cert and --cert-key go together"}
	}
	return nil
}

// bearer sends the API key with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// dial connects lazily over TLS; errors surface on the first call, where
// callErr names the address.
func (cf *clientFlags) dial() (*grpc.ClientConn, error) {
	pemData, err := os.ReadFile(cf.ca)
	if err != nil {
		return nil, fmt.Errorf("--ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("--ca: %s holds no PEM certificate", cf.ca)
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if cf.cert != "" {
		pair, err := tls.LoadX509KeyPair(cf.cert, cf.certKey)
		if err != nil {
			return nil, fmt.Errorf("--cert/--cert-key: %v", err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithChainUnaryInterceptor(defaultRetry.interceptor)}
	if cf.key != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(strings.TrimSpace(cf.key))))
	}
	conn, err := grpc.NewClient(cf.node, opts...)
	if err != nil {
		return nil, fmt.Errorf("node address %q: %v", cf.node, err)
	}
	return conn, nil
}

// call runs f with a connection and the call's deadline.
func (cf *clientFlags) call(ctx context.Context, f func(context.Context, *grpc.ClientConn) error) error {
	if err := cf.check(); err != nil {
		return err
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	return f(ctx, conn)
}

// callErr turns an RPC error into a message for people.
func (cf *clientFlags) callErr(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		msg := st.Message()
		switch outcomeOf(st) {
		case reasonOutcomeUnknown:
			return fmt.Errorf("unavailable, and the change may or may not have been made (check before retrying): %s", msg)
		case reasonNotApplied:
			return fmt.Errorf("unavailable, nothing was changed (safe to retry): %s", msg)
		}
		if strings.Contains(msg, "connection refused") || strings.Contains(msg, "dial") || strings.Contains(msg, "no such host") {
			return fmt.Errorf("cannot reach node at %s (set --node or YRDNODE_NODE): %s", cf.node, msg)
		}
		return fmt.Errorf("unavailable: %s", msg)
	case codes.Unauthenticated:
		return fmt.Errorf("%s (give an API key with --key or YRDNODE_KEY, or a certificate with --cert/--cert-key)", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("node at %s did not answer within %v", cf.node, cf.timeout)
	}
	return fmt.Errorf("%s: %s", codeWords(st.Code()), st.Message())
}

func runVersion(_ context.Context, env Env, args []string) error {
	fs := newFlags(env, "version")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "yrdnode %s\n", env.Version)
	return nil
}

// table prints aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = displayWidth(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], displayWidth(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(c)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
}

// displayWidth counts East Asian wide characters as two columns, so tables
// with Chinese titles line up in a terminal.
func displayWidth(s string) int {
	w := 0
	for _, r := range s {
		if r >= 0x1100 && (r <= 0x115f || (r >= 0x2e80 && r <= 0xa4cf) || (r >= 0xac00 && r <= 0xd7a3) ||
			(r >= 0xf900 && r <= 0xfaff) || (r >= 0xfe30 && r <= 0xfe4f) || (r >= 0xff00 && r <= 0xff60) || (r >= 0xffe0 && r <= 0xffe6)) {
			w += 2
		} else {
			w++
		}
	}
	return w
}

// codeWords turns a status code into words: PermissionDenied → "permission denied".
func codeWords(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}
