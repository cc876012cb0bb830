package sdnotify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listen binds a unixgram socket where systemd's would be and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// next reads one datagram, or "" if none arrives within d.
func next(t *testing.T, conn *net.UnixConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(d))
	k, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:k])
}

func TestReadyAndStoppingReachTheSocket(t *testing.T) {
	conn := listen(t)
	n := New(slog.New(slog.DiscardHandler))
	n.Ready("serving shanghai")
	if got := next(t, conn, 5*time.Second); got != "READY=1\nSTATUS=serving shanghai" {
		t.Fatalf("ready sent %q", got)
	}
	n.Stopping("draining")
	if got := next(t, conn, 5*time.Second); got != "STOPPING=1\nSTATUS=draining" {
		t.Fatalf("stopping sent %q", got)
	}
}

func TestNothingHappensOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	var logs bytes.Buffer
	n := New(slog.New(slog.NewTextHandler(&logs, nil)))
	n.Ready("x")
	n.Watchdog(context.Background(), func() error { return nil }) // returns at once
	if logs.Len() != 0 {
		t.Fatalf("logged outside systemd: %s", logs.String())
	}
}

// TestWatchdogOnlyWhileHealthy: keep-alives come every half timeout while
// the daemon is healthy, stop while it is not (the log says why), resume,
// and end with the context.
func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "40000") // 40 ms: keep-alives every 20 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got := WatchdogInterval(); got != 20*time.Millisecond {
		t.Fatalf("interval %v, want 20ms", got)
	}
	var sick atomic.Bool
	var logs syncBuffer
	n := New(slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		n.Watchdog(ctx, func() error {
			if sick.Load() {
				return errors.New("storage failed")
			}
			return nil
		})
	})
	for range 3 {
		if got := next(t, conn, 5*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("keep-alive %q", got)
		}
	}
	sick.Store(true)
	// At most one keep-alive was already on its way; then none for 10
	// intervals.
	for got := next(t, conn, 200*time.Millisecond); got != ""; got = next(t, conn, 200*time.Millisecond) {
		if strings.Contains(logs.String(), "withholding") {
			t.Fatalf("keep-alive %q while unhealthy", got)
		}
	}
	if !strings.Contains(logs.String(), "storage failed") {
		t.Fatalf("the log does not say why keep-alives stopped: %s", logs.String())
	}
	sick.Store(false)
	if got := next(t, conn, 5*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after recovery: %q", got)
	}
	cancel()
	wg.Wait()
}

// TestWatchdogOfAnotherProcess: $WATCHDOG_PID names who is watched; a child
// that inherited the variables sends nothing.
func TestWatchdogOfAnotherProcess(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if got := WatchdogInterval(); got != 0 {
		t.Fatalf("interval %v for another pid, want 0", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
