package audit

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// seqIter yields f's records by seq (1-based), in the order given.
func seqIter(f fixture, seqs ...int) func(func(*yrdv1.AuditRecord, error) bool) {
	return sliceIter(f.records, seqs...)
}

func sliceIter(recs []*yrdv1.AuditRecord, seqs ...int) func(func(*yrdv1.AuditRecord, error) bool) {
	return func(yield func(*yrdv1.AuditRecord, error) bool) {
		for _, s := range seqs {
			if !yield(recs[s-1], nil) {
				return
			}
		}
	}
}

func allSeqs(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// Verify takes any iterator, so a member can check records it got by other
// means than the file (an export, an RPC stream).
func TestVerifyIteratorDetectsGapAndReplay(t *testing.T) {
	f := newFixture(t, 5)
	seqOf := func(seqs ...int) func(func(*yrdv1.AuditRecord, error) bool) { return seqIter(f, seqs...) }
	wantOK(t, Verify(seqOf(1, 2, 3, 4, 5), f.pub(), f.anchors), 5)
	wantBad(t, Verify(seqOf(1, 2, 4, 5), f.pub(), nil), 3, "record 4 follows 2: record 3 missing")
	wantBad(t, Verify(seqOf(1, 2, 3, 2), f.pub(), nil), 4, "record 2 out of order")
	wantBad(t, Verify(seqOf(1, 2, 3), f.pub(), f.anchors), 4, "log ends at 3", "covers 5 (tail cut)")
	wantBad(t, Verify(seqOf(1), f.pub()[:5], nil), 0, "public key")
}

// Verify checks records in parallel chunks; the problem it reports must
// still be the first in seq order, across and within chunks.
func TestVerifyReportsEarliestProblemAcrossChunks(t *testing.T) {
	const n = 1300 // > 2 verify chunks and > 1 read page
	f := newFixture(t, n)
	wantOK(t, VerifyFile(f.path, f.pub(), f.anchors), n)

	edited := func(edits map[int]func(*yrdv1.AuditRecord)) []*yrdv1.AuditRecord {
		recs := make([]*yrdv1.AuditRecord, n)
		for i, r := range f.records {
			if e := edits[i+1]; e != nil {
				r = proto.Clone(r).(*yrdv1.AuditRecord)
				e(r)
			}
			recs[i] = r
		}
		return recs
	}
	badSig := func(r *yrdv1.AuditRecord) { r.Signature[0] ^= 1 }
	badContent := func(r *yrdv1.AuditRecord) { r.Detail += "!" }

	recs := edited(map[int]func(*yrdv1.AuditRecord){700: badSig, 900: badContent})
	wantBad(t, Verify(sliceIter(recs, allSeqs(n)...), f.pub(), nil), 700, "record 700: signature invalid")
	recs = edited(map[int]func(*yrdv1.AuditRecord){1200: badSig, 1100: badContent})
	wantBad(t, Verify(sliceIter(recs, allSeqs(n)...), f.pub(), nil), 1100, "record 1100: hash does not match")
	// A gap before a bad signature in the same chunk wins.
	recs = edited(map[int]func(*yrdv1.AuditRecord){5: badSig})
	wantBad(t, Verify(sliceIter(recs, 1, 2, 4, 5, 6), f.pub(), nil), 3, "record 3 missing")

	// A read error comes after the bad record yielded before it.
	recs = edited(map[int]func(*yrdv1.AuditRecord){1050: badSig})
	withErr := func(yield func(*yrdv1.AuditRecord, error) bool) {
		for _, r := range recs[:1099] {
			if !yield(r, nil) {
				return
			}
		}
		yield(nil, &RecordError{Seq: 1100, Msg: "record 1100: cannot be decoded"})
	}
	wantBad(t, Verify(withErr, f.pub(), nil), 1050, "record 1050: signature invalid")
	plainErr := func(yield func(*yrdv1.AuditRecord, error) bool) {
		for _, r := range f.records[:1099] {
			if !yield(r, nil) {
				return
			}
		}
		yield(nil, errors.New("disk on fire"))
	}
	rep := Verify(plainErr, f.pub(), nil)
	wantBad(t, rep, 1100, "record 1100: cannot be read: disk on fire")
	if rep.Records != 1099 {
		t.Errorf("records verified before the error = %d, want 1099", rep.Records)
	}

	// Tampering on the second read page of a file is found there.
	path := f.tamper(t, func(b *bolt.Bucket) error { return b.Delete(seqKey(1250)) })
	wantBad(t, VerifyFile(path, f.pub(), nil), 1250, "record 1251 follows 1249: record 1250 missing")
}
