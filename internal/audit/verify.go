package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"runtime"
	"sync"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Report is the outcome of a verification.
type Report struct {
	OK bool
	// Records is how many records verified before the first problem. A
	// record counts once a valid signature covers it: its own, or that of
	// a later record it is chained to. So unsigned records just before a
	// problem do not count, and Records can be below FirstBad-1.
	Records uint64
	// FirstBad is the seq of the first bad record, the seq where a gap or
	// a cut tail was detected, or the first of the unsigned records that
	// end the log; 0 when the problem is not a record's
	// (a bad anchor, a wrong argument).
	FirstBad uint64
	// Problem says what is wrong, in words for an auditor.
	Problem string
}

func (r Report) String() string {
	if r.OK {
		return fmt.Sprintf("ok: %d records verified", r.Records)
	}
	return fmt.Sprintf("FAILED after %d good records: %s", r.Records, r.Problem)
}

// badSignature is checkRecord's problem for a signature that does not verify.
const badSignature = "signature invalid"

// checkRecord checks one record's hash and, if it has one, its signature;
// "" means good. A record without a signature passes here: Verify then
// requires a later signed record to cover it.
func checkRecord(rec *yrdv1.AuditRecord, pub ed25519.PublicKey) string {
	if len(rec.Hash) != HashSize {
		return fmt.Sprintf("hash is %d bytes, want %d", len(rec.Hash), HashSize)
	}
	h, err := RecordHash(rec)
	if err != nil {
		return fmt.Sprintf("cannot be encoded: %v", err)
	}
	if !bytes.Equal(h, rec.Hash) {
		return "hash does not match its content"
	}
	if len(rec.Signature) > 0 && !ed25519.Verify(pub, rec.Hash, rec.Signature) {
		return badSignature
	}
	return ""
}

// verifyChunk is how many records Verify checks at once: their hashes and
// signatures in parallel (an ed25519 verification, where there is one,
// dominates the cost), then the chain links in order.
const verifyChunk = 512

// Verify checks a log, given as its records in seq order, against the
// node's public key and the node's anchors, and stops at the first problem.
// Each record must follow the one before (no gap, no reordering), hash to
// its stored hash and link to its predecessor's hash; a record an anchor
// covers must have the anchored hash, and the log must reach the highest
// anchor (else its tail was cut).
//
// A record that carries a signature must carry a valid one. A record
// without one (all but the last of a group commit) is accepted only if a
// later record carries a valid signature: that signature covers its hash,
// which covers its predecessor's, and so on back. So the log must end with
// a signed record; unsigned records at its end are reported, naming the
// first. A log in which every record is signed (as the node wrote them
// before signatures were per commit) verifies the same way.
//
// Anchors that do not verify under pub are not used, and fail the report.
//
// records may yield errors; a *RecordError names the bad seq. Only an
// iterator that sees the stored bytes can tell that they are exactly the
// canonical encoding, so check files through Log.Records, Reader.Records
// or VerifyFile, which do.
func Verify(records iter.Seq2[*yrdv1.AuditRecord, error], pub ed25519.PublicKey, anchors []*yrdv1.AuditAnchor) Report {
	if len(pub) != ed25519.PublicKeySize {
		return Report{Problem: fmt.Sprintf("public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)}
	}
	v := &verifier{pub: pub, expected: 1, prev: zeroHash}
	for i, a := range anchors {
		if err := VerifyAnchor(pub, a); err != nil {
			if v.badAnchors == "" {
				v.badAnchors = fmt.Sprintf("anchor %d: %v", i, err)
			}
			continue
		}
		v.valid = append(v.valid, a)
	}
	chunk := make([]*yrdv1.AuditRecord, 0, verifyChunk)
	for rec, err := range records {
		if err == nil && rec != nil {
			if chunk = append(chunk, rec); len(chunk) < verifyChunk {
				continue
			}
		}
		// Problems in the records before this one come first.
		if rep, bad := v.run(chunk); bad {
			return rep
		}
		chunk = chunk[:0]
		var re *RecordError
		switch {
		case errors.As(err, &re):
			return v.fail(re.Seq, "%s", re.Msg)
		case err != nil:
			return v.fail(v.expected, "record %d: cannot be read: %v", v.expected, err)
		case rec == nil:
			return v.fail(v.expected, "record %d: missing (nil)", v.expected)
		}
	}
	if rep, bad := v.run(chunk); bad {
		return rep
	}
	return v.finish()
}

// verifier is Verify's state between chunks.
type verifier struct {
	pub        ed25519.PublicKey
	valid      []*yrdv1.AuditAnchor
	badAnchors string // reported only if the records are good
	at         map[uint64][]*yrdv1.AuditAnchor
	node       string
	expected   uint64
	prev       []byte
	records    uint64 // records covered by a valid signature
	// pending is how many good unsigned records follow the last signed
	// one, the first of them being record uncovered; a signed record
	// covers them.
	pending   uint64
	uncovered uint64
}

func (v *verifier) fail(seq uint64, format string, args ...any) Report {
	return Report{Records: v.records, FirstBad: seq, Problem: fmt.Sprintf(format, args...)}
}

// run checks chunk, which follows everything checked so far.
func (v *verifier) run(chunk []*yrdv1.AuditRecord) (Report, bool) {
	problems := checkAll(chunk, v.pub)
	for i, rec := range chunk {
		switch {
		case rec.Seq > v.expected && v.expected == 1:
			return v.fail(1, "log starts at record %d: %s missing", rec.Seq, span(1, rec.Seq-1)), true
		case rec.Seq > v.expected:
			return v.fail(v.expected, "record %d follows %d: %s missing", rec.Seq, v.expected-1, span(v.expected, rec.Seq-1)), true
		case rec.Seq < v.expected:
			return v.fail(v.expected, "record %d out of order: it comes after record %d", rec.Seq, v.expected-1), true
		}
		// Content first: a changed byte is a changed record, whatever field.
		if problems[i] == badSignature && v.pending > 0 {
			return v.fail(rec.Seq, "record %d: %s; it is the only signature over %s",
				rec.Seq, problems[i], span(v.uncovered, rec.Seq-1)), true
		}
		if problems[i] != "" {
			return v.fail(rec.Seq, "record %d: %s", rec.Seq, problems[i]), true
		}
		if v.at == nil {
			// The first record names the log's node; anchors for other
			// nodes say nothing about this log.
			var n int
			v.node = rec.Node
			v.at, n = anchorsOf(v.valid, rec.Node)
			if n != len(v.valid) && v.badAnchors == "" {
				v.badAnchors = fmt.Sprintf("anchors given for a node other than %q", v.node)
			}
		}
		if rec.Node != v.node {
			return v.fail(rec.Seq, "record %d: written by node %q, the log is node %q's", rec.Seq, rec.Node, v.node), true
		}
		if !bytes.Equal(rec.PrevHash, v.prev) {
			if rec.Seq == 1 {
				return v.fail(1, "record 1: prev_hash is not the zero hash"), true
			}
			return v.fail(rec.Seq, "record %d: prev_hash does not match record %d's hash", rec.Seq, rec.Seq-1), true
		}
		for _, a := range v.at[rec.Seq] {
			if !bytes.Equal(a.HeadHash, rec.Hash) {
				return v.fail(rec.Seq, "record %d: hash differs from the anchored head (%s)", rec.Seq, anchorName(a)), true
			}
		}
		if len(rec.Signature) == 0 {
			if v.pending == 0 {
				v.uncovered = rec.Seq
			}
			v.pending++
		} else {
			v.records += v.pending + 1
			v.pending = 0
		}
		v.expected++
		v.prev = rec.Hash
	}
	return Report{}, false
}

// checkAll runs checkRecord over recs on every CPU.
func checkAll(recs []*yrdv1.AuditRecord, pub ed25519.PublicKey) []string {
	problems := make([]string, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				problems[i] = checkRecord(recs[i], pub)
			}
		})
	}
	wg.Wait()
	return problems
}

// finish applies the checks that need the whole log: the tail against the
// anchors, and anchors that could not be used.
func (v *verifier) finish() Report {
	if v.at == nil { // empty log: no node to tell anchors apart by
		v.at = make(map[uint64][]*yrdv1.AuditAnchor)
		for _, a := range v.valid {
			v.at[a.Seq] = append(v.at[a.Seq], a)
		}
	}
	last := v.expected - 1
	var top *yrdv1.AuditAnchor
	for seq, as := range v.at {
		if seq > last && (top == nil || seq > top.Seq) {
			top = as[0]
		}
		for _, a := range as {
			if seq == 0 && !bytes.Equal(a.HeadHash, zeroHash) {
				return v.fail(0, "%s covers seq 0 with a non-empty head", anchorName(a))
			}
		}
	}
	if top != nil {
		// A cut inside a group commit also leaves unsigned records at the
		// end; the cut is the cause, so it is what is named.
		unsigned := ""
		if v.pending > 0 {
			unsigned = fmt.Sprintf("; no signature covers %s before it", span(v.uncovered, last))
		}
		return v.fail(last+1, "log ends at %d but %s covers %d (tail cut)%s", last, anchorName(top), top.Seq, unsigned)
	}
	if v.pending > 0 {
		return v.fail(v.uncovered, "%s: unsigned, and no signed record follows: the log must end with a signed record (its tail was cut inside a group commit, or records were added without the key)",
			span(v.uncovered, last))
	}
	if v.badAnchors != "" {
		return v.fail(0, "%s", v.badAnchors)
	}
	return Report{OK: true, Records: v.records}
}

// anchorsOf indexes the anchors of node by seq and counts them.
func anchorsOf(anchors []*yrdv1.AuditAnchor, node string) (map[uint64][]*yrdv1.AuditAnchor, int) {
	m := make(map[uint64][]*yrdv1.AuditAnchor)
	n := 0
	for _, a := range anchors {
		if a.Node == node {
			m[a.Seq] = append(m[a.Seq], a)
			n++
		}
	}
	return m, n
}

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("record %d", from)
	}
	return fmt.Sprintf("records %d-%d", from, to)
}

// VerifyFile checks the log file at path offline. It verifies a private
// copy opened read-only, so it neither waits for a running node's file
// lock nor can touch the evidence. Copying a file that a node is writing
// may catch a torn state; for a live log use (*Log).Verify, or verify a
// copy taken with (*Log).Backup.
func VerifyFile(path string, pub ed25519.PublicKey, anchors []*yrdv1.AuditAnchor) (rep Report) {
	tmp, err := copyToTemp(path)
	if err != nil {
		return Report{Problem: fmt.Sprintf("cannot copy %s: %v", path, err)}
	}
	defer os.Remove(tmp)
	r, err := ReadOnly(tmp)
	if err != nil {
		return Report{Problem: fmt.Sprintf("cannot open %s: %v", path, err)}
	}
	defer r.Close()
	// bbolt panics on some corrupt page structures; a verifier of possibly
	// hostile files reports that instead of crashing.
	defer func() {
		if p := recover(); p != nil {
			rep = Report{Records: rep.Records, Problem: fmt.Sprintf("bbolt file is corrupt: %v", p)}
		}
	}()
	return r.Verify(pub, anchors)
}

func copyToTemp(path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp("", "yrd-audit-verify-*.db")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst.Name())
		return "", err
	}
	return dst.Name(), nil
}
