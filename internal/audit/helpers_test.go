package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const testNode = "12D3KooWAuditTestNode"

// testKey is deterministic so failures reproduce.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// baseTime is the fake clock's start; record i (from 1) is stamped
// baseTime + i seconds when written in order.
var baseTime = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// stepClock returns a clock that advances one second per call.
func stepClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return baseTime.Add(time.Duration(n.Add(1)) * time.Second) }
}

var (
	testCities = []string{"Shanghai", "Hangzhou", "Nanjing", "Hefei"}
	testOrgs   = []string{"sh-health", "hz-transport", "nj-energy"}
	testNames  = []string{"alice", "bob", "carol", "dave", "erin"}
)

// sampleRecord returns the i-th of a varied set of records, so filters have
// something to tell apart and every field type is on disk.
func sampleRecord(i int) *yrdv1.AuditRecord {
	return &yrdv1.AuditRecord{
		Requester: &yrdv1.Principal{
			City: testCities[i%len(testCities)],
			Org:  testOrgs[i%len(testOrgs)],
			Name: testNames[i%len(testNames)],
			Role: yrdv1.Role_ROLE_ANALYST,
		},
		Action:           yrdv1.AuditAction(1 + i%12),
		DatasetId:        fmt.Sprintf("ds-%d", i%5),
		GrantId:          fmt.Sprintf("grant-%d", i%7),
		Decision:         yrdv1.Effect(1 + i%3),
		RuleIds:          []string{"R-001", fmt.Sprintf("R-%03d", 10+i%4)},
		PolicyVersion:    uint64(3 + i%2),
		Rows:             uint64(100 * i),
		Individuals:      uint64(7 * i),
		QueryFingerprint: fmt.Sprintf("sha256:%064x", i),
		CrossBorder:      i%2 == 1,
		Detail:           fmt.Sprintf("decision reason for request number %d", i),
	}
}

func openLog(t testing.TB, path string, key ed25519.PrivateKey, opts Options) *Log {
	t.Helper()
	l, err := Open(path, key, testNode, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendN appends sampleRecord(from..from+n-1) in order.
func appendN(t testing.TB, l *Log, from, n int) []*yrdv1.AuditRecord {
	t.Helper()
	out := make([]*yrdv1.AuditRecord, 0, n)
	for i := from; i < from+n; i++ {
		rec, err := l.Append(context.Background(), sampleRecord(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, rec)
	}
	return out
}

// fixture is a closed log of n records with anchors at every 10th seq and
// at the head, as the node would have put them in the catalog.
type fixture struct {
	path    string
	key     ed25519.PrivateKey
	records []*yrdv1.AuditRecord
	anchors []*yrdv1.AuditAnchor
}

func newFixture(t testing.TB, n int) fixture {
	t.Helper()
	f := fixture{path: filepath.Join(t.TempDir(), "audit.db"), key: testKey(1)}
	l := openLog(t, f.path, f.key, Options{NoSync: true, Clock: stepClock()})
	for i := 1; i <= n; i++ {
		f.records = append(f.records, appendN(t, l, i, 1)...)
		if i%10 == 0 || i == n {
			seq, head := l.Head()
			f.anchors = append(f.anchors, NewAnchor(f.key, testNode, seq, head, baseTime.Add(time.Duration(i)*time.Second)))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) pub() ed25519.PublicKey { return pubOf(f.key) }

// tamper copies the fixture's file and lets fn edit the copy's records
// bucket directly through bbolt, as an attacker with file access would.
func (f fixture) tamper(t testing.TB, fn func(b *bolt.Bucket) error) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "tampered.db")
	copyFile(t, f.path, dst)
	db, err := bolt.Open(dst, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketRecords)) }); err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// getRaw returns a copy of the stored value of seq (bbolt's is mmapped).
func getRaw(t testing.TB, b *bolt.Bucket, seq uint64) []byte {
	t.Helper()
	v := b.Get(seqKey(seq))
	if v == nil {
		t.Fatalf("record %d not stored", seq)
	}
	return bytes.Clone(v)
}

func decodeRaw(t testing.TB, v []byte) *yrdv1.AuditRecord {
	t.Helper()
	rec := new(yrdv1.AuditRecord)
	if err := proto.Unmarshal(v, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func encodeRaw(t testing.TB, rec *yrdv1.AuditRecord) []byte {
	t.Helper()
	v, err := canonical.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantBad asserts a failed report naming seq and a problem containing each
// of the given phrases.
func wantBad(t testing.TB, rep Report, seq uint64, phrases ...string) {
	t.Helper()
	if rep.OK {
		t.Fatalf("verification passed, want failure at %d: %+v", seq, rep)
	}
	if rep.FirstBad != seq {
		t.Errorf("FirstBad = %d, want %d (problem: %q)", rep.FirstBad, seq, rep.Problem)
	}
	for _, p := range phrases {
		if !strings.Contains(rep.Problem, p) {
			t.Errorf("problem %q does not say %q", rep.Problem, p)
		}
	}
}

func wantOK(t testing.TB, rep Report, records uint64) {
	t.Helper()
	if !rep.OK || rep.Records != records || rep.FirstBad != 0 || rep.Problem != "" {
		t.Fatalf("report = %+v, want OK with %d records", rep, records)
	}
}
