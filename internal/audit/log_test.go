package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestAppendFillsChainFields(t *testing.T) {
	key := testKey(1)
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), key, Options{Clock: stepClock()})
	defer l.Close()

	in := sampleRecord(1)
	in.Seq, in.Node, in.PrevHash, in.Hash, in.Signature = 99, "evil", []byte("p"), []byte("h"), []byte("s")
	first, err := l.Append(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Seq != 99 || in.Node != "evil" {
		t.Error("Append modified the caller's record")
	}
	stamped := sampleRecord(2)
	stamped.Time = timestamppb.New(baseTime.Add(-time.Hour))
	second, err := l.Append(context.Background(), stamped)
	if err != nil {
		t.Fatal(err)
	}

	for i, rec := range []*yrdv1.AuditRecord{first, second} {
		if rec.Seq != uint64(i+1) || rec.Node != testNode {
			t.Errorf("record %d: seq %d node %q", i+1, rec.Seq, rec.Node)
		}
		h, err := RecordHash(rec)
		if err != nil || !bytes.Equal(h, rec.Hash) {
			t.Errorf("record %d: hash %x, want %x (%v)", rec.Seq, rec.Hash, h, err)
		}
		if !ed25519.Verify(pubOf(key), rec.Hash, rec.Signature) {
			t.Errorf("record %d: signature does not verify", rec.Seq)
		}
		stored, err := l.Get(rec.Seq)
		if err != nil || !proto.Equal(stored, rec) {
			t.Errorf("record %d: stored %v, returned %v (%v)", rec.Seq, stored, rec, err)
		}
	}
	if !bytes.Equal(first.PrevHash, zeroHash) || !bytes.Equal(second.PrevHash, first.Hash) {
		t.Error("prev_hash does not chain")
	}
	if got := first.Time.AsTime(); !got.Equal(baseTime.Add(time.Second)) {
		t.Errorf("time from clock = %v", got)
	}
	if got := second.Time.AsTime(); !got.Equal(baseTime.Add(-time.Hour)) {
		t.Errorf("caller's time replaced: %v", got)
	}
	if seq, head := l.Head(); seq != 2 || !bytes.Equal(head, second.Hash) {
		t.Errorf("head = %d %x", seq, head)
	}
	if _, err := l.Get(3); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(3) = %v, want ErrNotFound", err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	key := testKey(1)
	l := openLog(t, path, key, Options{NoSync: true})
	appendN(t, l, 1, 5)
	l.Close()
	l = openLog(t, path, key, Options{NoSync: true})
	defer l.Close()
	if seq, _ := l.Head(); seq != 5 {
		t.Fatalf("head after reopen = %d", seq)
	}
	recs := appendN(t, l, 6, 5)
	if recs[0].Seq != 6 {
		t.Errorf("first seq after reopen = %d", recs[0].Seq)
	}
	wantOK(t, l.Verify(nil), 10)
}

func TestAppendOfUnencodableRecordFailsAloneWithoutGap(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), testKey(1), Options{NoSync: true})
	defer l.Close()
	appendN(t, l, 1, 1)
	bad := sampleRecord(2)
	bad.Detail = "\xff not utf-8"
	if _, err := l.Append(context.Background(), bad); err == nil {
		t.Fatal("record with invalid UTF-8 was appended")
	}
	rec := appendN(t, l, 3, 1)[0]
	if rec.Seq != 2 {
		t.Errorf("seq after a rejected record = %d, want 2", rec.Seq)
	}
	wantOK(t, l.Verify(nil), 2)
}

func TestAppendAfterCloseReturnsErrClosed(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), testKey(1), Options{NoSync: true})
	appendN(t, l, 1, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), sampleRecord(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// blockWriter holds bbolt's writer lock so the log's writer goroutine stalls
// in its next transaction; release lets it go on.
func blockWriter(t *testing.T, l *Log) (release func()) {
	t.Helper()
	tx, err := l.r.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback() }
}

func TestAppendReturnsEarlyWhenContextEnds(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), testKey(1), Options{NoSync: true})
	defer l.Close()

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(done, sampleRecord(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v", err)
	}

	release := blockWriter(t, l)
	ctx, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	start := time.Now()
	_, err := l.Append(ctx, sampleRecord(2))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Append with a stalled writer = %v after %v", err, time.Since(start))
	}
	release()
	// The abandoned record is still written, in order.
	rec := appendN(t, l, 3, 1)[0]
	if rec.Seq != 2 {
		t.Errorf("next seq = %d, want 2 (abandoned record written as 1)", rec.Seq)
	}
	wantOK(t, l.Verify(nil), 2)
}

// Appends racing with Close either succeed, and are then in the file, or
// get ErrClosed; an append already queued when Close starts is written.
func TestCloseDuringAppendsWritesQueuedAndRefusesLate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l := openLog(t, path, testKey(1), Options{NoSync: true})
	release := blockWriter(t, l)

	// Append until one waits in the queue: the writer takes what is queued
	// in batches, so the first appends may all be in the batch it stalls
	// on; once it stalls, the next one stays queued.
	const most = 64
	errs := make(chan error, most)
	n := 0
	for ; n < most && len(l.reqs) == 0; n++ {
		go func(i int) { _, err := l.Append(context.Background(), sampleRecord(i)); errs <- err }(n)
		queued(l, 100*time.Millisecond)
	}
	if len(l.reqs) == 0 {
		t.Fatalf("no append stayed queued after %d appends", n)
	}
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	waitFor(t, func() bool {
		select {
		case <-l.closing:
			return true
		default:
			return false
		}
	})
	release()
	ok := uint64(0)
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case !errors.Is(err, ErrClosed):
			t.Errorf("append racing Close: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if ok == 0 {
		t.Error("appends queued before Close were dropped")
	}
	wantOK(t, VerifyFile(path, pubOf(testKey(1)), nil), ok)
}

// queued reports whether an append waits in l's queue within d.
func queued(l *Log, d time.Duration) bool {
	for deadline := time.Now().Add(d); len(l.reqs) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}

func TestAppendAfterWriteFailureFailsEveryWaiter(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), testKey(1), Options{})
	appendN(t, l, 1, 3)
	// Pull the file out from under the writer: every transaction now fails.
	if err := l.r.db.Close(); err != nil {
		t.Fatal(err)
	}
	const waiters = 64
	errs := make(chan error, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			_, err := l.Append(context.Background(), sampleRecord(i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("waiter got %v, want ErrFailed", err)
		}
	}
	// The failure is sticky: the log does not pretend to recover.
	if _, err := l.Append(context.Background(), sampleRecord(0)); !errors.Is(err, ErrFailed) {
		t.Errorf("later Append = %v, want ErrFailed", err)
	}
	if seq, _ := l.Head(); seq != 3 {
		t.Errorf("head moved to %d on a failed write", seq)
	}
	_ = l.Close()
}

func TestConcurrentAppendsFormGapFreeChain(t *testing.T) {
	const goroutines, each = 64, 200
	path := filepath.Join(t.TempDir(), "audit.db")
	key := testKey(1)
	l := openLog(t, path, key, Options{}) // fsync on, as in production

	seen := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				rec, err := l.Append(context.Background(), sampleRecord(g*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seen[g] = append(seen[g], rec.Seq)
			}
		})
	}
	// Readers run alongside the writers.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			seq, _ := l.Head()
			if _, _, err := l.List(Filter{AfterSeq: seq}); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()

	got := make([]bool, goroutines*each+1)
	for _, seqs := range seen {
		for i, s := range seqs {
			if s == 0 || s > goroutines*each || got[s] {
				t.Fatalf("seq %d returned twice or out of range", s)
			}
			if i > 0 && s <= seqs[i-1] {
				t.Fatalf("one goroutine's appends out of order: %d after %d", s, seqs[i-1])
			}
			got[s] = true
		}
	}
	if seq, _ := l.Head(); seq != goroutines*each {
		t.Fatalf("head = %d, want %d", seq, goroutines*each)
	}
	seq, head := l.Head()
	anchor := NewAnchor(key, testNode, seq, head, time.Now())
	wantOK(t, l.Verify([]*yrdv1.AuditAnchor{anchor}), goroutines*each)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBackupIsVerifiableCopy(t *testing.T) {
	key := testKey(1)
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), key, Options{NoSync: true})
	defer l.Close()
	appendN(t, l, 1, 20)
	var buf bytes.Buffer
	if _, err := l.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 21, 5) // the backup is a snapshot: later records are not in it
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(dst, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	wantOK(t, VerifyFile(dst, pubOf(key), nil), 20)
}

func TestEnqueueKeepsOrderWithAppendAndIsWrittenByClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l := openLog(t, path, testKey(1), Options{NoSync: true})
	release := blockWriter(t, l)
	// The writer is stalled, so nothing queued here can be written before
	// Close: Close itself must write it.
	for i := 1; i <= 5; i++ {
		if err := l.Enqueue(context.Background(), sampleRecord(i)); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	if seq, _ := l.Head(); seq != 0 {
		t.Errorf("head while the writer is stalled = %d, want 0: Enqueue must not wait", seq)
	}
	release()
	rec := appendN(t, l, 6, 1)[0]
	if rec.Seq != 6 {
		t.Errorf("append after five enqueued records got seq %d, want 6", rec.Seq)
	}
	for i := 7; i <= 8; i++ {
		if err := l.Enqueue(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 8 {
		t.Errorf("head after Flush = %d, want 8: Flush must wait for what was queued before it", seq)
	}
	if err := l.Enqueue(context.Background(), sampleRecord(9)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Enqueue(context.Background(), sampleRecord(10)); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}
	l = openLog(t, path, testKey(1), Options{NoSync: true})
	defer l.Close()
	wantOK(t, l.Verify(nil), 9)
	for i := 1; i <= 9; i++ {
		got, err := l.Get(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if got.Detail != sampleRecord(i).Detail {
			t.Errorf("record %d is %q, want %q", i, got.Detail, sampleRecord(i).Detail)
		}
	}
}

// TestQueuedRecordsLingerIntoOneCommit: queued records wait (here up to
// ten minutes) for more, and an Append ends the wait at once: all of them
// are one group commit, so only the last record is signed. Flush and Close
// end the wait too.
func TestQueuedRecordsLingerIntoOneCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l := openLog(t, path, testKey(1), Options{NoSync: true, Linger: 10 * time.Minute})
	for i := 1; i <= 3; i++ {
		if err := l.Enqueue(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// The writer has taken record 1: without a linger it would
			// commit it alone now.
			for len(l.reqs) > 0 {
				runtime.Gosched()
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // 20× under the linger
	defer cancel()
	if _, err := l.Append(ctx, sampleRecord(4)); err != nil {
		t.Fatalf("an Append did not end the linger: %v", err)
	}
	for i := 1; i <= 4; i++ {
		got, err := l.Get(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if signed := len(got.GetSignature()) > 0; signed != (i == 4) {
			t.Errorf("record %d signed %v: want one group commit of records 1–4", i, signed)
		}
	}
	if err := l.Enqueue(context.Background(), sampleRecord(5)); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("a Flush did not end the linger: %v", err)
	}
	if seq, _ := l.Head(); seq != 5 {
		t.Fatalf("head after Flush = %d, want 5", seq)
	}
	if err := l.Enqueue(context.Background(), sampleRecord(6)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not end the linger")
	}
	l = openLog(t, path, testKey(1), Options{NoSync: true})
	defer l.Close()
	wantOK(t, l.Verify(nil), 6)
}
