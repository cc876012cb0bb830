package audit

import (
	"context"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// A record's request id is chained and signed like the rest of it: the
// log verifies, and a changed id is caught at its record. Records without
// one (all those written before the field) verify as before: the other
// tests' fixtures are such records.
func TestRequestIDIsHashedAndSigned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	key := testKey(1)
	l := openLog(t, path, key, Options{NoSync: true, Clock: stepClock()})
	for _, id := range []string{"", "req-1", "req-2"} {
		if _, err := l.Append(context.Background(), &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, RequestId: id}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := l.Get(2)
	if err != nil || rec.GetRequestId() != "req-1" {
		t.Fatalf("record 2: %v %v", rec, err)
	}
	l.Close()
	wantOK(t, VerifyFile(path, pubOf(key), nil), 3)

	f := fixture{path: path, key: key}
	tampered := f.tamper(t, func(b *bolt.Bucket) error {
		r := new(yrdv1.AuditRecord)
		if err := proto.Unmarshal(getRaw(t, b, 2), r); err != nil {
			return err
		}
		r.RequestId = "req-9"
		v, err := canonical.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put(seqKey(2), v)
	})
	wantBad(t, VerifyFile(tampered, pubOf(key), nil), 2)
}
