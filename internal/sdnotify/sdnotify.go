// Package sdnotify tells systemd how the daemon is doing, by the sd_notify
// protocol (github.com/coreos/go-systemd/v22/daemon): READY=1 once it
// serves, WATCHDOG=1 keep-alives while it is healthy, STOPPING=1 when it
// begins to stop. Outside systemd ($NOTIFY_SOCKET unset) it does nothing.
package sdnotify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends the daemon's state to systemd.
type Notifier struct {
	log    *slog.Logger
	warned sync.Once // a broken socket is reported once, not every keep-alive
}

// New returns a notifier that reports send failures to log.
func New(log *slog.Logger) *Notifier { return &Notifier{log: log} }

// Ready says the daemon serves; status is shown by `systemctl status`.
func (n *Notifier) Ready(status string) { n.send(daemon.SdNotifyReady + "\nSTATUS=" + status) }

// Stopping says the daemon has begun to stop.
func (n *Notifier) Stopping(status string) { n.send(daemon.SdNotifyStopping + "\nSTATUS=" + status) }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.warned.Do(func() { n.log.Warn("cannot notify systemd ($NOTIFY_SOCKET)", "err", err) })
	}
}

// WatchdogInterval is how often keep-alives are due: half the watchdog
// timeout systemd set ($WATCHDOG_USEC, for this process's $WATCHDOG_PID),
// or 0 when systemd watches nothing.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// Watchdog sends WATCHDOG=1 every WatchdogInterval while healthy returns
// nil, until ctx ends. While it does not, no keep-alive goes out and
// systemd restarts the daemon when its timeout passes; the first failure
// is logged, so the log says why. It returns at once when systemd set no
// watchdog.
func (n *Notifier) Watchdog(ctx context.Context, healthy func() error) {
	every := WatchdogInterval()
	if every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var failing bool
	for {
		if err := healthy(); err != nil {
			if !failing {
				n.log.Warn("unhealthy: withholding systemd watchdog keep-alives", "err", err)
			}
			failing = true
		} else {
			failing = false
			n.send(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
