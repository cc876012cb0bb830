package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// clientFlags are the global flags of every command that talks to a node.
type clientFlags struct {
	flags   *pflag.FlagSet // where they are defined, to ask what was set
	node    string
	output  string
	timeout time.Duration
	ca      string
	key     string
	cert    string
	certKey string
}

// outputHelp is the one rule for numbers in JSON output.
const outputHelp = `output: table or json (query: also csv). In json, the API's messages
follow the proto3 JSON mapping, which writes 64-bit integers as strings so a
JavaScript reader loses no digits (and dataset publish -f reads it back);
JSON the CLI composes (query rows, bench, backup, version) has numbers as numbers`

func addClientFlags(fs *pflag.FlagSet) *clientFlags {
	cf := &clientFlags{flags: fs}
	envString(fs, &cf.node, "node", DefaultNode, "YRDNODE_NODE", "node API address")
	fs.StringVarP(&cf.output, "output", "o", "table", outputHelp)
	fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "deadline for the call (query: 1m unless set)")
	envString(fs, &cf.ca, "ca", "", "YRDNODE_CA", "the node's city CA certificate, ca/ca.pem in its data dir")
	envString(fs, &cf.key, "key", "", "YRDNODE_KEY", "API key")
	envString(fs, &cf.cert, "cert", "", "YRDNODE_CERT", "client certificate PEM")
	envString(fs, &cf.certKey, "cert-key", "", "YRDNODE_CERT_KEY", "client certificate's private key PEM")
	return cf
}

// envAnnotation marks a flag that an environment variable sets when the
// command line does not.
const envAnnotation = "yrdnode_env"

// envString defines a string flag that falls back to the environment
// variable envName. Its default is def, never the variable's value, so
// -h cannot print a secret.
func envString(fs *pflag.FlagSet, p *string, name, def, envName, usage string) {
	fs.StringVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, envName))
	_ = fs.SetAnnotation(name, envAnnotation, []string{envName})
}

// applyEnv sets each flag not given on the command line from its
// environment variable, if that is set: flag, then environment, then default.
func applyEnv(fs *pflag.FlagSet, env Env) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		names := f.Annotations[envAnnotation]
		if f.Changed || len(names) == 0 || err != nil {
			return
		}
		if v := env.Getenv(names[0]); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Sprintf("%s: %v", names[0], e)}
			}
		}
	})
	return err
}

// oldFlagNames keeps the names of the flag package days working: --o for
// --output, --f for --file.
func oldFlagNames(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "o":
		return "output"
	case "f":
		return "file"
	}
	return pflag.NormalizedName(name)
}

// changed reports whether the command line set the global flag name.
func (cf *clientFlags) changed(name string) bool {
	f := cf.flags.Lookup(name)
	return f != nil && f.Changed
}

// peopleOut is where a command writes what it tells people while it
// works: standard output, or standard error when standard output is
// for the JSON a program reads.
func (cf *clientFlags) peopleOut(env Env) io.Writer {
	if cf.output == "json" {
		return env.Stderr
	}
	return env.Stdout
}

func (cf *clientFlags) checkOutput(outputs []string) error {
	if slices.Contains(outputs, cf.output) {
		return nil
	}
	if len(outputs) == 1 {
		return usageError{fmt.Sprintf("-o: this command prints only for people (%s), not %q", outputs[0], cf.output)}
	}
	return usageError{fmt.Sprintf("-o: %q is not %s", cf.output, strings.Join(outputs, ", "))}
}

func (cf *clientFlags) check() error {
	if cf.ca == "" {
		return usageError{"--ca: required: the node's city CA certificate (ca/ca.pem in its data dir; env YRDNODE_CA)"}
	}
	if (cf.cert == "") != (cf.certKey == "") {
		return usageError{"--cert and --cert-key go together"}
	}
	return nil
}
