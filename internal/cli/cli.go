// Package cli implements the yrdnode command line: the daemon commands
// (init, serve, dev) and the client commands that talk to a node's gRPC API.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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
		{name: "bench", summary: "drive a running cluster with a bounded load and report ops/s and latency", run: runBench},
		{name: "version", summary: "print the version", run: runVersion},
	}
}

// Main runs one command line and returns the process exit status.
func Main(ctx context.Context, env Env) int {
	err := dispatch(ctx, env, commands(), env.Args, "yrdnode")
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
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
	timeout time.Duration
}

func addClientFlags(fs *flag.FlagSet, env Env) *clientFlags {
	cf := &clientFlags{}
	def := env.Getenv("YRDNODE_NODE")
	if def == "" {
		def = DefaultNode
	}
	fs.StringVar(&cf.node, "node", def, "node API address (env YRDNODE_NODE)")
	fs.StringVar(&cf.output, "o", "table", "output: table or json")
	fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "deadline for the call")
	return cf
}

func (cf *clientFlags) check() error {
	if cf.output != "table" && cf.output != "json" {
		return usageError{fmt.Sprintf("-o: %q is not table or json", cf.output)}
	}
	return nil
}

// dial connects lazily; errors surface on the first call, where callErr
// names the address.
func (cf *clientFlags) dial() (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(cf.node, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("node address %q: %v", cf.node, err)
	}
	return conn, nil
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
		if strings.Contains(msg, "connection refused") || strings.Contains(msg, "dial") || strings.Contains(msg, "no such host") {
			return fmt.Errorf("cannot reach node at %s (set --node or YRDNODE_NODE): %s", cf.node, msg)
		}
		return fmt.Errorf("unavailable: %s", msg)
	case codes.DeadlineExceeded:
		return fmt.Errorf("node at %s did not answer within %v", cf.node, cf.timeout)
	}
	return fmt.Errorf("%s: %s", strings.ToLower(strings.ReplaceAll(st.Code().String(), "_", " ")), st.Message())
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
