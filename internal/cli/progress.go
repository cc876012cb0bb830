package cli

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/term"
)

// progressEvery is how often a progress line is rewritten.
const progressEvery = time.Second

// startProgress shows how long work is getting on: a line on standard
// error rewritten every second with what text says (called from another
// goroutine). Only on a terminal: in a pipe, a file or a test it shows
// nothing. Stop clears the line; call it before writing to standard
// error again.
func startProgress(env Env, text func() string) (stop func()) {
	if !isTerminal(env.Stderr) {
		return func() {}
	}
	t := time.NewTicker(progressEvery)
	stopLine := progressLine(env.Stderr, true, t.C, text)
	return func() {
		t.Stop()
		stopLine()
	}
}

// isTerminal reports whether w is a file that is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressLine rewrites a line on w at every tick, if terminal; stop
// clears it and returns once nothing more will be written.
func progressLine(w io.Writer, terminal bool, tick <-chan time.Time, text func() string) (stop func()) {
	if !terminal {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		shown := false
		for {
			select {
			case <-quit:
				if shown {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-tick:
				fmt.Fprintf(w, "\r\033[K%s", text())
				shown = true
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
