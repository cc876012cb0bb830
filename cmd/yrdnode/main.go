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

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Env{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version})
	stop()
	os.Exit(code)
}
