// Package cli implements the yrdnode command line: the daemon commands
// (init, serve, dev) and the client commands that talk to a node's gRPC API.
//
// The command tree is built on cobra, so it behaves like etcdctl and
// kubectl: global flags go before or after the command, -h works
// everywhere, and `yrdnode completion bash|zsh|fish` writes completions.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Env is the process environment a command runs in; tests supply their own.
type Env struct {
	Args           []string
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Version, Commit and Date are what the build stamped with -ldflags
	// -X; empty ones are read from the binary's build info.
	Version, Commit, Date string

	modified bool // the build info says the checkout had changes
}

// DefaultNode is where client commands look when neither --node nor
// YRDNODE_NODE says otherwise: the first node of `yrdnode dev`.
const DefaultNode = "127.0.0.1:7401"

// runFunc runs a command, its flags parsed, with its positional arguments.
type runFunc func(ctx context.Context, pos []string) error

// setupFunc defines a command's own flags on fs and returns what runs it.
// The client flags (cf) are global; a setup may read them only when run.
type setupFunc func(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc

type command struct {
	name    string
	summary string
	use     string   // the positional arguments, for the usage line
	long    string   // the help text, when the summary is not enough
	outputs []string // what -o accepts; nil means table and json
	// daemon, for a command that runs until stopped, says what it runs:
	// its output is its log, so -o json is refused with a pointer to
	// --log-format json.
	daemon string
	setup  setupFunc
	sub    []command
}

// tableOnly is the outputs of a command that prints nothing for programs:
// the daemons, whose output is their log.
var tableOnly = []string{"table"}

func commands() []command {
	return []command{
		{name: "init", summary: "create a node's identity and config in a data dir", setup: runInit},
		{name: "serve", summary: "run a node from its data dir", setup: runServe, outputs: tableOnly, daemon: "runs a node"},
		{name: "dev", summary: "run a local 3-city delta with sample data", setup: runDev, outputs: tableOnly, daemon: "runs a local delta of three nodes"},
		{name: "dataset", summary: "publish, read and retire catalog datasets", sub: []command{
			{name: "publish", summary: "publish a dataset from a YAML or JSON file (-f)", setup: runDatasetPublish},
			{name: "get", use: "ID", summary: "show one dataset", setup: runDatasetGet},
			{name: "list", summary: "list datasets, with filters", setup: runDatasetList},
			{name: "update", summary: "update a dataset from a file (-f), checking its version", setup: runDatasetUpdate},
			{name: "retire", use: "ID", summary: "retire a dataset", setup: runDatasetRetire},
		}},
		{name: "cluster", summary: "inspect and change cluster membership", sub: []command{
			{name: "status", summary: "show members, leader and raft indexes", setup: runClusterStatus},
			{name: "join-token", summary: "issue a single-use join token", setup: runJoinToken},
			{name: "join", summary: "run a new node that joins a cluster with a token", setup: runClusterJoin, outputs: tableOnly, daemon: "runs the joining node"},
			{name: "remove", use: "PEER_ID|CITY", summary: "remove a member (by peer id or city, or --city)", setup: runClusterRemove},
			{name: "transfer-leader", summary: "hand leadership to another voter (--to peer id or city)", setup: runTransferLeader},
			{name: "recover", summary: "after quorum was lost for good: set a stopped survivor's raft configuration from a peers file", setup: runClusterRecover},
		}},
		{name: "config", summary: "check a node's yrdnode.toml and data mappings, or migrate an old node.json", sub: configCommands()},
		{name: "backup", summary: "save a consistent snapshot of the catalog and the node's audit log, with checksums", setup: runBackup},
		{name: "restore", summary: "seed a new cluster's first node from a backup file", setup: runRestore},
		{name: "testnet", summary: "a delta of real processes on an emulated network, with faults and a checker", sub: testnetCommands()},
		{name: "bench", summary: "drive a running cluster with a bounded load and report ops/s and latency", setup: runBench},
		{name: "version", summary: "print the version, commit and build date", setup: runVersion},
	}
}

func allCommands() []command {
	cmds := commands()
	return append(cmds[:len(cmds)-1:len(cmds)-1], append(append(accessCommands(), queryCommands()...), cmds[len(cmds)-1])...)
}

// Main runs one command line and returns the process exit status: 0 done,
// 1 an error or a denial, 2 a usage error.
func Main(ctx context.Context, env Env) int {
	env = withBuildInfo(env)
	root := newRoot(env)
	root.SetArgs(env.Args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, errDenied) {
		return 1
	}
	fmt.Fprintf(env.Stderr, "yrdnode: %v\n", err)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// newRoot builds the command tree for one run.
func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "yrdnode",
		Short:         "yrdnode runs and administers a node of the Yangtze River Delta data exchange",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cf := addClientFlags(root.PersistentFlags())
	root.SetGlobalNormalizationFunc(oldFlagNames)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%v (see '%s -h')", err, c.CommandPath())}
	})
	// Flag, then environment, then default: resolved after parsing, so
	// -h shows the defaults and never what the environment holds.
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error { return applyEnv(c.Flags(), env) }
	group(root)
	for _, c := range allCommands() {
		root.AddCommand(build(c, env, cf))
	}
	return root
}

// build makes the cobra command for c and its subcommands.
func build(c command, env Env, cf *clientFlags) *cobra.Command {
	cc := &cobra.Command{Use: strings.TrimSpace(c.name + " " + c.use), Short: c.summary, Long: c.long}
	if c.sub != nil {
		group(cc)
		for _, s := range c.sub {
			cc.AddCommand(build(s, env, cf))
		}
		return cc
	}
	run := c.setup(cc.Flags(), env, cf)
	outputs := c.outputs
	if outputs == nil {
		outputs = []string{"table", "json"}
	}
	cc.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkOutput(outputs); err != nil {
			if c.daemon != "" {
				return daemonOutputError(cmd, c.daemon, cf.output)
			}
			return err
		}
		return run(cmd.Context(), args)
	}
	return cc
}

// daemonOutputError refuses -o for a command whose output is its log.
func daemonOutputError(cmd *cobra.Command, what, output string) error {
	msg := fmt.Sprintf("-o %s: %s %s and prints only its log", output, strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), what)
	if cmd.Flags().Lookup("log-format") != nil {
		msg += "; use --log-format json"
	}
	return usageError{msg}
}

// group makes c a command that only holds others: alone it shows its
// usage and fails; with an unknown name it says so.
func group(c *cobra.Command) {
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			c.SetOut(c.OutOrStdout())
			_ = c.Help()
			return usageError{"missing command; see above"}
		}
		msg := fmt.Sprintf("unknown command %q for %s; run '%s -h'", args[0], c.CommandPath(), c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
		return usageError{msg}
	}
}
