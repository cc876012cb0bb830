package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// RTT measures n round trips of a small TCP message from city from to
// city to, in their namespaces (netns mode): an echo server listens on
// to's address in to's namespace, a client dials it from from's address in
// from's namespace. The result is sorted, fastest first. The path is the
// cities' own (hub, fault rules, delayer), so a cut or loss shows.
func (s *State) RTT(ctx context.Context, from, to, n int) ([]time.Duration, error) {
	if s.Mode != ModeNetns {
		return nil, fmt.Errorf("RTT is measured between namespaces: this testnet is in %s mode", s.Mode)
	}
	src, dst := s.Cities[from], s.Cities[to]
	var ln net.Listener
	if err := inNetns(nsPath(dst.NS), func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(dst.IP, "0"))
		return err
	}); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var served net.Conn
	closed := false
	defer func() {
		ln.Close()
		mu.Lock()
		closed = true
		if served != nil {
			served.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	wg.Add(1)
	go func() { // owned here: ends when ln or the served connection is closed
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		served = c
		if closed {
			c.Close()
		}
		mu.Unlock()
		io.Copy(c, c)
	}()
	var conn net.Conn
	if err := inNetns(nsPath(src.NS), func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src.IP)}, Timeout: 10 * time.Second}
		conn, err = d.DialContext(ctx, "tcp4", ln.Addr().String())
		return err
	}); err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	msg, back := []byte("yrd-rtt!"), make([]byte, 8)
	var out []time.Duration
	for range n {
		start := time.Now()
		if _, err := conn.Write(msg); err != nil {
			return out, err
		}
		if _, err := io.ReadFull(conn, back); err != nil {
			return out, err
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}
