package fabric

import (
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// exercise runs two hosts through a dial, an echo, a blocked Accept and a
// Close, outside t.Cleanup so everything is closed when it returns.
func exercise(t *testing.T) {
	t.Helper()
	ga, gb := newMemberGate(), newMemberGate()
	a, err := New(Config{Key: newKey(t), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Gate: ga})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Key: newKey(t), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Gate: gb})
	if err != nil {
		t.Fatal(err)
	}
	ga.add(b.ID())
	gb.add(a.ID())
	introduce(t, a, b)

	lb := b.Listen(testProto)
	b.Listen(ProtocolRPC) // left open: Close must clean it up
	accepted := acceptOne(lb)
	ca, err := a.Dial(testContext(t), b.ID(), testProto)
	if err != nil {
		t.Fatal(err)
	}
	ca.Write([]byte("hi"))
	cb := recvConn(t, accepted)
	if _, err := io.ReadFull(cb, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	blocked := acceptOne(lb) // still waiting in Accept when the host closes
	ca.Close()
	cb.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-blocked:
		if ok {
			t.Fatal("Accept returned a conn after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocked after host Close")
	}
}

func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func TestHostCloseLeavesNoGoroutines(t *testing.T) {
	exercise(t) // libp2p starts a few process-wide goroutines once
	base := settledGoroutines()
	for range 3 {
		exercise(t)
	}
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after closing hosts, %d before:\n%s", n, base, strings.TrimSpace(string(buf)))
	}
}
