package wal

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// walChildEnv makes the test binary run walChild instead of the tests.
const walChildEnv = "YRD_WAL_CRASH_CHILD_DIR"

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(walChildEnv)
	if dir == "" {
		t.Skip("helper process for TestSurvivesSIGKILLDuringAppends")
	}
	w, err := Open(dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	next, _ := w.LastIndex()
	next++
	for n := uint64(1); ; n++ {
		batch := make([]*raft.Log, 1+n%9)
		for i := range batch {
			batch[i] = testLog(next + uint64(i))
		}
		if err := w.StoreLogs(batch); err != nil {
			fmt.Println("append:", err)
			os.Exit(2)
		}
		next += uint64(len(batch))
		fmt.Printf("acked %d\n", next-1)
		if first, _ := w.FirstIndex(); n%50 == 0 && next-first > 300 {
			if err := w.DeleteRange(first, next-200); err != nil {
				fmt.Println("compact:", err)
				os.Exit(2)
			}
		}
	}
}

// Real processes appending with fsync on and compacting are SIGKILLed at
// random moments; every reopen finds every acknowledged entry, intact, in
// one run of indexes, and the next process carries on.
func TestSurvivesSIGKILLDuringAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	var acked uint64
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), walChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// The kill comes at a random moment after the child's first
		// acknowledgement (starting a race-enabled binary on a busy
		// machine can take longer than the window itself).
		var deadline <-chan time.Time
		startup := time.After(30 * time.Second)
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				var n uint64
				if _, err := fmt.Sscanf(line, "acked %d", &n); err != nil {
					t.Fatalf("round %d: child says %q", round, line)
				}
				acked = max(acked, n)
				if deadline == nil {
					deadline = time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond)
				}
			case <-deadline:
				break read
			case <-startup:
				t.Fatalf("round %d: the child acknowledged nothing in 30s", round)
			}
		}
		cmd.Process.Kill()
		for line := range lines { // acknowledgements already written
			var n uint64
			if _, err := fmt.Sscanf(line, "acked %d", &n); err == nil {
				acked = max(acked, n)
			}
		}
		cmd.Wait()

		w, err := Open(dir, Options{SegmentSize: 4 << 10})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		first, _ := w.FirstIndex()
		last, _ := w.LastIndex()
		if last < acked {
			t.Fatalf("round %d: log ends at %d, but %d was acknowledged", round, last, acked)
		}
		for i := first; i <= last; i++ {
			checkLog(t, w, testLog(i))
		}
		w.Close()
		t.Logf("round %d: killed after ack %d; log %d-%d", round, acked, first, last)
	}
	if acked == 0 {
		t.Fatal("the child never acknowledged an append")
	}
}
