// Command yrdnode runs and administers a node of the Yangtze River Delta
// data exchange. All logic lives in internal/cli and node; this stays thin.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/yrd-exchange/yrdnode/internal/cli"
)

// Set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=...
// -X main.date=..."; what is left empty yrdnode version reads from the
// build info the go command stamps into the binary.
var version, commit, date string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Env{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version, Commit: commit, Date: date})
	stop()
	os.Exit(code)
}
