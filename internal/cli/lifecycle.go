package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/yrd-exchange/yrdnode/internal/sdnotify"
	"github.com/yrd-exchange/yrdnode/node"
)

// runNode starts n and serves until ctx ends (SIGINT or SIGTERM), then
// drains and closes it. Under systemd (Type=notify) it says READY=1 once
// the node serves, sends watchdog keep-alives while the node is live, and
// says STOPPING=1 when the drain begins. A second signal cuts the drain
// short: running queries are cancelled at once, raft and the databases
// still close cleanly.
func runNode(ctx context.Context, n *node.Node, log *slog.Logger) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	notify := sdnotify.New(log)
	notify.Ready(fmt.Sprintf("serving %s: API %s", n.City(), n.APIAddr()))
	watchdogCtx, stopWatchdog := context.WithCancel(context.Background())
	var watchdog sync.WaitGroup
	watchdog.Go(func() { notify.Watchdog(watchdogCtx, n.Live) })
	defer func() { stopWatchdog(); watchdog.Wait() }()

	<-ctx.Done()
	notify.Stopping("draining queries, then stopping")
	log.Info("stopping: draining (a second signal cuts the drain short)")
	drainCtx, cutShort := context.WithCancel(context.Background())
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	var waiter sync.WaitGroup
	waiter.Go(func() {
		select {
		case <-again:
			log.Warn("second signal: cutting the drain short")
			cutShort()
		case <-drainCtx.Done():
		}
	})
	n.Drain(drainCtx)
	cutShort()
	waiter.Wait()
	signal.Stop(again)
	return n.Close()
}
