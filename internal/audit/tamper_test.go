package audit

import (
	"bytes"
	"crypto/ed25519"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const fixtureSize = 30

func TestVerifyUntouchedLogPasses(t *testing.T) {
	f := newFixture(t, fixtureSize)
	wantOK(t, VerifyFile(f.path, f.pub(), nil), fixtureSize)
	wantOK(t, VerifyFile(f.path, f.pub(), f.anchors), fixtureSize)
	// The catalog may hold the same head twice (re-anchored after a restart).
	wantOK(t, VerifyFile(f.path, f.pub(), append(f.anchors, f.anchors...)), fixtureSize)

	l := openLog(t, f.path, f.key, Options{NoSync: true})
	defer l.Close()
	wantOK(t, l.Verify(nil), fixtureSize)
	wantOK(t, l.Verify(f.anchors), fixtureSize)
	// VerifyFile works on a copy, so it does not wait for the live log's lock.
	wantOK(t, VerifyFile(f.path, f.pub(), f.anchors), fixtureSize)
}

func TestVerifyEmptyLogPasses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	key := testKey(1)
	l := openLog(t, path, key, Options{NoSync: true})
	seq, head := l.Head()
	if seq != 0 || !bytes.Equal(head, zeroHash) {
		t.Fatalf("empty head = %d %x", seq, head)
	}
	a := NewAnchor(key, testNode, seq, head, baseTime)
	wantOK(t, l.Verify([]*yrdv1.AuditAnchor{a}), 0)
	l.Close()
	wantOK(t, VerifyFile(path, pubOf(key), []*yrdv1.AuditAnchor{a}), 0)
}

// Every single-byte change of a middle record is caught at that record,
// whether the protobuf still decodes or not.
func TestVerifyDetectsAnyFlippedByte(t *testing.T) {
	// A short log: it is verified once per flip, ~700 times.
	f := newFixture(t, 5)
	const seq = 3
	var orig []byte
	f.tamper(t, func(b *bolt.Bucket) error { orig = getRaw(t, b, seq); return nil })

	decodable := 0
	for pos := range orig {
		for _, mask := range []byte{0x01, 0x80} {
			v := bytes.Clone(orig)
			v[pos] ^= mask
			if proto.Unmarshal(v, new(yrdv1.AuditRecord)) == nil {
				decodable++
			}
			path := f.tamper(t, func(b *bolt.Bucket) error { return b.Put(seqKey(seq), v) })
			rep := VerifyFile(path, f.pub(), nil)
			if rep.OK || rep.FirstBad != seq || rep.Problem == "" {
				t.Fatalf("byte %d ^ %#x: report %+v, want failure at %d", pos, mask, rep, seq)
			}
		}
	}
	t.Logf("%d of %d flipped variants still decoded as a record", decodable, 2*len(orig))
	if decodable == 0 {
		t.Fatal("no flip kept the protobuf decodable; the test covers only half the cases")
	}
}

func TestVerifyDetectsChangedCharacterInStringField(t *testing.T) {
	f := newFixture(t, fixtureSize)
	const seq = 15
	path := f.tamper(t, func(b *bolt.Bucket) error {
		v := getRaw(t, b, seq)
		i := bytes.Index(v, []byte("reason for request"))
		if i < 0 {
			t.Fatal("detail text not found in the stored record")
		}
		v[i] = 'R' // still valid UTF-8: the record decodes, only its text differs
		if decodeRaw(t, v).Detail == f.records[seq-1].Detail {
			t.Fatal("edit did not change the detail")
		}
		return b.Put(seqKey(seq), v)
	})
	wantBad(t, VerifyFile(path, f.pub(), nil), seq, "record 15: hash does not match its content")
}

// A byte change that decodes to the very same record (a bool stored as 3
// instead of 1) leaves the hash intact; the canonical-bytes check finds it.
func TestVerifyDetectsNonCanonicalByteChange(t *testing.T) {
	f := newFixture(t, fixtureSize)
	const seq = 15 // odd: cross_border is true
	path := f.tamper(t, func(b *bolt.Bucket) error {
		v := getRaw(t, b, seq)
		// cross_border (field 14, varint) = 1, then detail (field 15).
		i := bytes.Index(v, []byte{0x70, 0x01, 0x7a})
		if i < 0 {
			t.Fatal("cross_border not found in the stored record")
		}
		v[i+1] = 0x03
		if !proto.Equal(decodeRaw(t, v), f.records[seq-1]) {
			t.Fatal("edit changed the decoded record; it should not")
		}
		return b.Put(seqKey(seq), v)
	})
	wantBad(t, VerifyFile(path, f.pub(), nil), seq, "record 15", "not the canonical encoding")
}

func TestVerifyDetectsDeletedRecord(t *testing.T) {
	f := newFixture(t, fixtureSize)
	path := f.tamper(t, func(b *bolt.Bucket) error { return b.Delete(seqKey(12)) })
	wantBad(t, VerifyFile(path, f.pub(), f.anchors), 12, "record 13 follows 11: record 12 missing")

	path = f.tamper(t, func(b *bolt.Bucket) error {
		for s := uint64(12); s <= 14; s++ {
			if err := b.Delete(seqKey(s)); err != nil {
				return err
			}
		}
		return nil
	})
	wantBad(t, VerifyFile(path, f.pub(), nil), 12, "record 15 follows 11: records 12-14 missing")

	path = f.tamper(t, func(b *bolt.Bucket) error { return b.Delete(seqKey(1)) })
	wantBad(t, VerifyFile(path, f.pub(), nil), 1, "record 1 missing")
}

func TestVerifyDetectsSwappedValues(t *testing.T) {
	f := newFixture(t, fixtureSize)
	path := f.tamper(t, func(b *bolt.Bucket) error {
		v7, v8 := getRaw(t, b, 7), getRaw(t, b, 8)
		if err := b.Put(seqKey(7), v8); err != nil {
			return err
		}
		return b.Put(seqKey(8), v7)
	})
	wantBad(t, VerifyFile(path, f.pub(), nil), 7, "record 7 out of order", "holds record 8")
}

// Swapping the keys and relabelling each record's seq to match its new key
// hides the reorder from the key check; the hashes still catch it.
func TestVerifyDetectsSwappedKeys(t *testing.T) {
	f := newFixture(t, fixtureSize)
	path := f.tamper(t, func(b *bolt.Bucket) error {
		r7, r8 := decodeRaw(t, getRaw(t, b, 7)), decodeRaw(t, getRaw(t, b, 8))
		r7.Seq, r8.Seq = 8, 7
		if err := b.Delete(seqKey(7)); err != nil {
			return err
		}
		if err := b.Delete(seqKey(8)); err != nil {
			return err
		}
		if err := b.Put(seqKey(7), encodeRaw(t, r8)); err != nil {
			return err
		}
		return b.Put(seqKey(8), encodeRaw(t, r7))
	})
	wantBad(t, VerifyFile(path, f.pub(), nil), 7, "record 7: hash does not match its content")
}

func TestVerifyDetectsTailCutWithAnchor(t *testing.T) {
	f := newFixture(t, fixtureSize)
	path := f.tamper(t, func(b *bolt.Bucket) error {
		for s := uint64(26); s <= fixtureSize; s++ {
			if err := b.Delete(seqKey(s)); err != nil {
				return err
			}
		}
		return nil
	})
	wantBad(t, VerifyFile(path, f.pub(), f.anchors), 26,
		"log ends at 25 but an anchor at 2026-03-01T09:00:30Z covers 30 (tail cut)")

	// Without an anchor past the cut, the shorter log is a valid log: that
	// is exactly why the node anchors its head in the catalog.
	wantOK(t, VerifyFile(path, f.pub(), nil), 25)
	wantOK(t, VerifyFile(path, f.pub(), f.anchors[:2]), 25) // anchors at 10, 20
}

func TestVerifyDetectsHeadDifferingFromAnchor(t *testing.T) {
	f := newFixture(t, fixtureSize)
	// Same key, different history: a log the node rebuilt after the fact.
	other := filepath.Join(t.TempDir(), "rebuilt.db")
	l := openLog(t, other, f.key, Options{NoSync: true})
	appendN(t, l, 100, fixtureSize)
	l.Close()
	wantOK(t, VerifyFile(other, f.pub(), nil), fixtureSize)
	wantBad(t, VerifyFile(other, f.pub(), f.anchors), 10,
		"record 10: hash differs from the anchored head (an anchor at 2026-03-01T09:00:10Z)")
}

// An attacker without the key edits a record and recomputes its hash; the
// signature no longer matches.
func TestVerifyDetectsRehashedRecordWithoutKey(t *testing.T) {
	f := newFixture(t, fixtureSize)
	const seq = 18
	forge := func(sign func(*yrdv1.AuditRecord)) string {
		return f.tamper(t, func(b *bolt.Bucket) error {
			rec := decodeRaw(t, getRaw(t, b, seq))
			rec.Detail = "nothing to see here"
			rec.Decision = yrdv1.Effect_EFFECT_DENY
			h, err := RecordHash(rec)
			if err != nil {
				return err
			}
			rec.Hash = h
			sign(rec)
			return b.Put(seqKey(seq), encodeRaw(t, rec))
		})
	}
	keepOldSignature := forge(func(*yrdv1.AuditRecord) {})
	wantBad(t, VerifyFile(keepOldSignature, f.pub(), nil), seq, "record 18: signature invalid")

	mallory := testKey(66)
	ownSignature := forge(func(r *yrdv1.AuditRecord) { r.Signature = ed25519.Sign(mallory, r.Hash) })
	wantBad(t, VerifyFile(ownSignature, f.pub(), f.anchors), seq, "record 18: signature invalid")
}

func TestVerifyWithAnotherNodesKeyFails(t *testing.T) {
	f := newFixture(t, fixtureSize)
	wantBad(t, VerifyFile(f.path, pubOf(testKey(2)), nil), 1, "record 1: signature invalid")
}

func TestVerifyRejectsForgedAnchor(t *testing.T) {
	f := newFixture(t, fixtureSize)
	// A forged anchor claiming a longer log must not make the log look cut.
	forged := NewAnchor(testKey(66), testNode, 50, bytes.Repeat([]byte{7}, HashSize), baseTime)
	rep := VerifyFile(f.path, f.pub(), append(f.anchors[:len(f.anchors):len(f.anchors)], forged))
	wantBad(t, rep, 0, "anchor 3", "anchor signature invalid")
	if rep.Records != fixtureSize {
		t.Errorf("records verified = %d, want %d", rep.Records, fixtureSize)
	}
}

func TestVerifyRejectsAnchorOfAnotherNode(t *testing.T) {
	f := newFixture(t, fixtureSize)
	a := NewAnchor(f.key, "12D3KooWSomeoneElse", 50, bytes.Repeat([]byte{7}, HashSize), baseTime)
	wantBad(t, VerifyFile(f.path, f.pub(), []*yrdv1.AuditAnchor{a}), 0, "node other than")
}

func TestVerifyAnchorCoversEveryField(t *testing.T) {
	key := testKey(1)
	head := bytes.Repeat([]byte{9}, HashSize)
	fresh := func() *yrdv1.AuditAnchor { return NewAnchor(key, testNode, 42, head, baseTime) }
	if err := VerifyAnchor(pubOf(key), fresh()); err != nil {
		t.Fatal(err)
	}
	if VerifyAnchor(pubOf(testKey(2)), fresh()) == nil {
		t.Error("anchor verified under another key")
	}
	edits := map[string]func(a *yrdv1.AuditAnchor){
		"node":      func(a *yrdv1.AuditAnchor) { a.Node += "x" },
		"seq":       func(a *yrdv1.AuditAnchor) { a.Seq++ },
		"head":      func(a *yrdv1.AuditAnchor) { a.HeadHash[31] ^= 1 },
		"seconds":   func(a *yrdv1.AuditAnchor) { a.Time.Seconds++ },
		"nanos":     func(a *yrdv1.AuditAnchor) { a.Time.Nanos++ },
		"no time":   func(a *yrdv1.AuditAnchor) { a.Time = nil },
		"signature": func(a *yrdv1.AuditAnchor) { a.Signature[0] ^= 1 },
	}
	for name, edit := range edits {
		a := fresh()
		edit(a)
		if VerifyAnchor(pubOf(key), a) == nil {
			t.Errorf("anchor with changed %s still verifies", name)
		}
	}
}

func TestOpenRefusesLogItCannotVouchFor(t *testing.T) {
	f := newFixture(t, fixtureSize)
	if l, err := Open(f.path, testKey(2), testNode, Options{}); err == nil {
		l.Close()
		t.Fatal("opened another node's log with this node's key")
	}
	path := f.tamper(t, func(b *bolt.Bucket) error {
		v := getRaw(t, b, fixtureSize)
		v[len(v)-1] ^= 1 // last signature byte
		return b.Put(seqKey(fixtureSize), v)
	})
	if l, err := Open(path, f.key, testNode, Options{}); err == nil {
		l.Close()
		t.Fatal("opened a log whose head record is tampered")
	}
}

func TestVerifyFileReportsUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	rep := VerifyFile(filepath.Join(dir, "missing.db"), pubOf(testKey(1)), nil)
	if rep.OK || rep.Problem == "" {
		t.Errorf("missing file: %+v", rep)
	}
	junk := filepath.Join(dir, "junk.db")
	copyFile(t, "doc.go", junk)
	if rep := VerifyFile(junk, pubOf(testKey(1)), nil); rep.OK || rep.Problem == "" {
		t.Errorf("non-bbolt file: %+v", rep)
	}
}
