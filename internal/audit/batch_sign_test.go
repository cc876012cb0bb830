package audit

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// commitBatch writes recs as one group commit, as the writer goroutine
// would, and returns each request's answer. The writer is idle meanwhile:
// nothing else appends to l.
func commitBatch(t testing.TB, l *Log, recs ...*yrdv1.AuditRecord) ([]*yrdv1.AuditRecord, []error) {
	t.Helper()
	batch := make([]*request, len(recs))
	for i, rec := range recs {
		batch[i] = &request{rec: rec, done: make(chan error, 1)}
	}
	l.commit(batch)
	errs := make([]error, len(batch))
	out := make([]*yrdv1.AuditRecord, len(batch))
	for i, r := range batch {
		errs[i] = <-r.done
		out[i] = r.rec
	}
	return out, errs
}

// newBatchFixture is newFixture with group commits of the given sizes,
// anchored after each commit.
func newBatchFixture(t testing.TB, sizes ...int) fixture {
	t.Helper()
	f := fixture{path: filepath.Join(t.TempDir(), "audit.db"), key: testKey(1)}
	l := openLog(t, f.path, f.key, Options{NoSync: true, Clock: stepClock()})
	i := 1
	for _, n := range sizes {
		recs := make([]*yrdv1.AuditRecord, n)
		for j := range recs {
			recs[j] = sampleRecord(i)
			i++
		}
		out, errs := commitBatch(t, l, recs...)
		for j, err := range errs {
			if err != nil {
				t.Fatalf("record %d: %v", out[j].GetSeq(), err)
			}
		}
		f.records = append(f.records, out...)
		seq, head := l.Head()
		f.anchors = append(f.anchors, NewAnchor(f.key, testNode, seq, head, baseTime.Add(time.Duration(seq)*time.Second)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// wantSigned checks which stored records carry a signature: exactly those
// in signed, and each of those verifies.
func wantSigned(t testing.TB, path string, pub ed25519.PublicKey, n int, signed ...uint64) {
	t.Helper()
	r, err := ReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := make(map[uint64]bool)
	for _, s := range signed {
		want[s] = true
	}
	seen := 0
	for rec, err := range r.Records(0) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		switch has := len(rec.Signature) > 0; {
		case has != want[rec.Seq]:
			t.Errorf("record %d: signed = %v, want %v", rec.Seq, has, want[rec.Seq])
		case has && !ed25519.Verify(pub, rec.Hash, rec.Signature):
			t.Errorf("record %d: signature does not verify", rec.Seq)
		}
	}
	if seen != n {
		t.Errorf("%d records stored, want %d", seen, n)
	}
}

func TestCommitSignsOnlyTheLastRecordOfABatch(t *testing.T) {
	f := newBatchFixture(t, 1, 7, 3)
	wantSigned(t, f.path, f.pub(), 11, 1, 8, 11)
	for _, rec := range f.records {
		// What Append returned is what is stored.
		if got := len(rec.Signature) > 0; got != (rec.Seq == 1 || rec.Seq == 8 || rec.Seq == 11) {
			t.Errorf("returned record %d: signed = %v", rec.Seq, got)
		}
	}
	wantOK(t, VerifyFile(f.path, f.pub(), f.anchors), 11)
	wantOK(t, VerifyFile(f.path, f.pub(), nil), 11)
}

// A record that fails to encode takes no seq; the last record that was
// written is the one signed, and a Flush barrier changes nothing.
func TestCommitSignsTheLastWrittenRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	key := testKey(1)
	l := openLog(t, path, key, Options{NoSync: true})
	bad := sampleRecord(9)
	bad.Detail = "\xff not UTF-8"
	batch := []*request{
		{rec: sampleRecord(1), done: make(chan error, 1)},
		{rec: sampleRecord(2), done: make(chan error, 1)},
		{done: make(chan error, 1)}, // a Flush barrier
		{rec: bad, done: make(chan error, 1)},
		{done: make(chan error, 1)},
	}
	l.commit(batch)
	for i, r := range batch {
		if err := <-r.done; (err != nil) != (i == 3) {
			t.Errorf("request %d: err = %v", i, err)
		}
	}
	if seq, _ := l.Head(); seq != 2 {
		t.Fatalf("head = %d, want 2", seq)
	}
	wantOK(t, l.Verify(nil), 2)
	// The log reopens: its head is signed.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantSigned(t, path, pubOf(key), 2, 2)
	l = openLog(t, path, key, Options{NoSync: true})
	defer l.Close()
	wantOK(t, l.Verify(nil), 2)
}

// Under real group commit (concurrent appenders, fsync), there is one
// signature per commit and the log verifies.
func TestConcurrentAppendsSignOncePerCommit(t *testing.T) {
	const appenders, each = 32, 20
	path := filepath.Join(t.TempDir(), "audit.db")
	key := testKey(1)
	l := openLog(t, path, key, Options{})
	var wg sync.WaitGroup
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(context.Background(), sampleRecord(g*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	commits := l.commits.Load()
	wantOK(t, l.Verify(nil), appenders*each)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var signed, last uint64
	for rec, err := range r.Records(0) {
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Signature) > 0 {
			signed++
			last = rec.Seq
		}
	}
	t.Logf("%d records, %d commits, %d signatures", appenders*each, commits, signed)
	if signed != commits {
		t.Errorf("%d signatures for %d commits, want one each", signed, commits)
	}
	if last != appenders*each {
		t.Errorf("last signed record is %d, want the head %d", last, appenders*each)
	}
}

// A changed byte in an unsigned record is named at that record, not at the
// signed record of its commit, whatever the byte.
func TestVerifyNamesChangedUnsignedRecord(t *testing.T) {
	f := newBatchFixture(t, 2, 5, 2) // 1-2, 3-7 (7 signed), 8-9
	const seq = 5
	path := f.tamper(t, func(b *bolt.Bucket) error {
		rec := decodeRaw(t, getRaw(t, b, seq))
		if len(rec.Signature) != 0 {
			t.Fatal("record 5 is signed; the fixture should leave it unsigned")
		}
		rec.Detail = "nothing to see here"
		return b.Put(seqKey(seq), encodeRaw(t, rec))
	})
	rep := VerifyFile(path, f.pub(), f.anchors)
	wantBad(t, rep, seq, "record 5: hash does not match its content")
	if rep.Records != 2 { // 3 and 4 are covered only by record 7
		t.Errorf("records verified = %d, want 2", rep.Records)
	}

	var orig []byte
	f.tamper(t, func(b *bolt.Bucket) error { orig = getRaw(t, b, seq); return nil })
	for pos := range orig {
		for _, mask := range []byte{0x01, 0x80} {
			v := append([]byte(nil), orig...)
			v[pos] ^= mask
			path := f.tamper(t, func(b *bolt.Bucket) error { return b.Put(seqKey(seq), v) })
			if rep := VerifyFile(path, f.pub(), nil); rep.OK || rep.FirstBad != seq || rep.Problem == "" {
				t.Fatalf("byte %d ^ %#x: report %+v, want failure at %d", pos, mask, rep, seq)
			}
		}
	}
}

// An attacker without the key who edits an unsigned record and recomputes
// hashes is caught at the first link he did not recompute, or at the
// commit's signature, which then says which records only it covered.
func TestVerifyDetectsRehashedUnsignedRecords(t *testing.T) {
	f := newBatchFixture(t, 2, 5, 2) // 3-7 one commit, 7 signed
	rechain := func(upTo uint64) string {
		return f.tamper(t, func(b *bolt.Bucket) error {
			var prev []byte
			for s := uint64(5); s <= upTo; s++ {
				rec := decodeRaw(t, getRaw(t, b, s))
				if s == 5 {
					rec.Detail = "nothing to see here"
				} else {
					rec.PrevHash = prev
				}
				h, err := RecordHash(rec)
				if err != nil {
					return err
				}
				rec.Hash, prev = h, h
				if err := b.Put(seqKey(s), encodeRaw(t, rec)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	wantBad(t, VerifyFile(rechain(5), f.pub(), nil), 6, "record 6: prev_hash does not match record 5's hash")
	rep := VerifyFile(rechain(7), f.pub(), f.anchors)
	wantBad(t, rep, 7, "record 7: signature invalid; it is the only signature over records 3-6")
	if rep.Records != 2 {
		t.Errorf("records verified = %d, want 2", rep.Records)
	}
}

// The log must end with a signed record: an unsigned tail fails, naming
// its first record, with or without anchors.
func TestVerifyDetectsUnsignedTail(t *testing.T) {
	f := newBatchFixture(t, 3, 4, 3) // signed: 3, 7, 10
	const last = 10
	phrase := "records 8-10: unsigned, and no signed record follows"

	stripped := f.tamper(t, func(b *bolt.Bucket) error {
		rec := decodeRaw(t, getRaw(t, b, last))
		rec.Signature = nil
		return b.Put(seqKey(last), encodeRaw(t, rec))
	})
	rep := VerifyFile(stripped, f.pub(), nil)
	wantBad(t, rep, 8, phrase)
	if rep.Records != 7 {
		t.Errorf("records verified = %d, want 7", rep.Records)
	}
	wantBad(t, VerifyFile(stripped, f.pub(), f.anchors), 8, phrase)
	// Nor does a node extend it: its next signature would vouch for 8-10.
	if l, err := Open(stripped, f.key, testNode, Options{}); err == nil {
		l.Close()
		t.Fatal("opened a log whose head record is unsigned")
	}

	// Dropping the signed record of the last commit leaves 8-9 uncovered;
	// the anchor of 10 says what happened.
	cut := f.tamper(t, func(b *bolt.Bucket) error { return b.Delete(seqKey(last)) })
	wantBad(t, VerifyFile(cut, f.pub(), nil), 8, "records 8-9: unsigned, and no signed record follows")
	wantBad(t, VerifyFile(cut, f.pub(), f.anchors), last,
		"log ends at 9 but an anchor at 2026-03-01T09:00:10Z covers 10 (tail cut); no signature covers records 8-9 before it")

	// A record added at the end, well chained but unsigned.
	added := f.tamper(t, func(b *bolt.Bucket) error {
		head := decodeRaw(t, getRaw(t, b, last))
		rec := sampleRecord(11)
		rec.Seq, rec.Node, rec.Time, rec.PrevHash = last+1, testNode, head.Time, head.Hash
		h, err := RecordHash(rec)
		if err != nil {
			return err
		}
		rec.Hash = h
		return b.Put(seqKey(last+1), encodeRaw(t, rec))
	})
	wantBad(t, VerifyFile(added, f.pub(), f.anchors), last+1, "record 11: unsigned, and no signed record follows")
}

// Logs written when every record was signed verify unchanged, and the
// node goes on appending to one with per-commit signatures.
func TestVerifyAcceptsEveryRecordSigned(t *testing.T) {
	f := newBatchFixture(t, 4, 6)
	old := f.tamper(t, func(b *bolt.Bucket) error {
		for s := uint64(1); s <= 10; s++ {
			rec := decodeRaw(t, getRaw(t, b, s))
			rec.Signature = ed25519.Sign(f.key, rec.Hash) // what the old writer stored
			if err := b.Put(seqKey(s), encodeRaw(t, rec)); err != nil {
				return err
			}
		}
		return nil
	})
	wantSigned(t, old, f.pub(), 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	wantOK(t, VerifyFile(old, f.pub(), f.anchors), 10)

	// Tamper evidence in an all-signed log is as before.
	bad := func(fn func(*yrdv1.AuditRecord)) string {
		p := filepath.Join(t.TempDir(), "bad.db")
		copyFile(t, old, p)
		db, err := bolt.Open(p, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			rec := decodeRaw(t, getRaw(t, b, 5))
			fn(rec)
			return b.Put(seqKey(5), encodeRaw(t, rec))
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	wantBad(t, VerifyFile(bad(func(r *yrdv1.AuditRecord) { r.Signature[3] ^= 1 }), f.pub(), nil), 5, "record 5: signature invalid")
	wantBad(t, VerifyFile(bad(func(r *yrdv1.AuditRecord) { r.Rows++ }), f.pub(), nil), 5, "record 5: hash does not match its content")

	// Appending with per-commit signatures continues the old log.
	l := openLog(t, old, f.key, Options{NoSync: true})
	if _, errs := commitBatch(t, l, sampleRecord(11), sampleRecord(12), sampleRecord(13)); errs[0] != nil || errs[2] != nil {
		t.Fatal(errs)
	}
	wantOK(t, l.Verify(f.anchors), 13)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantSigned(t, old, f.pub(), 13, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13)
	wantOK(t, VerifyFile(old, f.pub(), f.anchors), 13)
}

// Coverage by a later signature works across Verify's chunks: one commit
// longer than a chunk, whose signature fails, names the records it alone
// covered.
func TestVerifyUnsignedRunsAcrossChunks(t *testing.T) {
	f := newBatchFixture(t, 300, 600, 5) // signed: 300, 900, 905
	wantOK(t, VerifyFile(f.path, f.pub(), f.anchors), 905)

	recs := make([]*yrdv1.AuditRecord, len(f.records))
	copy(recs, f.records)
	forged := proto.Clone(recs[899]).(*yrdv1.AuditRecord)
	forged.Signature[0] ^= 1
	recs[899] = forged
	rep := Verify(sliceIter(recs, allSeqs(905)...), f.pub(), nil)
	wantBad(t, rep, 900, "record 900: signature invalid; it is the only signature over records 301-899")
	if rep.Records != 300 {
		t.Errorf("records verified = %d, want 300", rep.Records)
	}

	// Without 901-905 the log ends at a signed record: a valid shorter log
	// (the anchors catch the cut); without 900 too, 301-899 are uncovered.
	wantOK(t, Verify(sliceIter(f.records, allSeqs(900)...), f.pub(), nil), 900)
	wantBad(t, Verify(sliceIter(f.records, allSeqs(899)...), f.pub(), nil), 301, "records 301-899: unsigned")
	wantBad(t, Verify(sliceIter(f.records, allSeqs(899)...), f.pub(), f.anchors), 900, "covers 905 (tail cut); no signature covers records 301-899")
}
