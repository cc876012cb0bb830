package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var bucketRecords = []byte("records")

// pageSize is how many records one read transaction copies out. Iterators
// yield outside the transaction, so a slow consumer (an export to a
// regulator, a full verification) never pins a bbolt read transaction,
// which would stall the writer when the file's mmap has to grow.
const pageSize = 1024

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// RecordError is a problem with one stored record, found while reading it.
// Seq is the key the record is stored under (or, for a malformed key, the
// seq expected there); Verify reports it as FirstBad.
type RecordError struct {
	Seq uint64
	Msg string
}

func (e *RecordError) Error() string { return e.Msg }

// decodeStored decodes a stored value and checks what only the raw bytes
// show: the key's form, that the record sits under its own seq, and that
// the bytes are exactly the canonical encoding. The last check is what
// catches a changed byte that still decodes to the same record (e.g. a
// bool stored as 2 instead of 1), which the hash alone would not.
func decodeStored(k, v []byte) (*yrdv1.AuditRecord, error) {
	if len(k) != 8 {
		return nil, fmt.Errorf("malformed key %x", k)
	}
	seq := binary.BigEndian.Uint64(k)
	if v == nil {
		return nil, &RecordError{seq, fmt.Sprintf("record %d: key holds a bucket, not a record", seq)}
	}
	rec := new(yrdv1.AuditRecord)
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, &RecordError{seq, fmt.Sprintf("record %d: cannot be decoded: %v", seq, err)}
	}
	if rec.Seq != seq {
		return nil, &RecordError{seq, fmt.Sprintf("record %d out of order: key %d holds record %d", seq, seq, rec.Seq)}
	}
	if again, err := canonical.Marshal(rec); err != nil || !bytes.Equal(again, v) {
		return nil, &RecordError{seq, fmt.Sprintf("record %d: stored bytes are not the canonical encoding of a record", seq)}
	}
	return rec, nil
}

// reader holds the read paths shared by a live Log and a read-only Reader.
type reader struct {
	db *bolt.DB
}

func (r reader) get(seq uint64) (*yrdv1.AuditRecord, error) {
	var rec *yrdv1.AuditRecord
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return errNoBucket
		}
		v := b.Get(seqKey(seq))
		if v == nil {
			return ErrNotFound
		}
		var err error
		rec, err = decodeStored(seqKey(seq), v)
		return err
	})
	return rec, err
}

var errNoBucket = errors.New(`audit: no "records" bucket: not an audit log`)

// records iterates over the stored records with seq > after, in key order.
// A record that cannot be read yields a *RecordError and iteration goes on.
func (r reader) records(after uint64) iter.Seq2[*yrdv1.AuditRecord, error] {
	return func(yield func(*yrdv1.AuditRecord, error) bool) {
		var from []byte // last key of the previous page
		last := after   // last well-formed seq seen, to name malformed keys
		for {
			var ks, vs [][]byte
			err := r.db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketRecords)
				if b == nil {
					return errNoBucket
				}
				c := b.Cursor()
				var k, v []byte
				switch {
				case from != nil:
					if k, v = c.Seek(from); bytes.Equal(k, from) {
						k, v = c.Next()
					}
				case after == 0:
					// From the very first key, so stray keys sorting before
					// seq 1 are seen too.
					k, v = c.First()
				default:
					k, v = c.Seek(seqKey(after + 1))
				}
				for ; k != nil && len(ks) < pageSize; k, v = c.Next() {
					ks = append(ks, bytes.Clone(k))
					vs = append(vs, bytes.Clone(v))
				}
				return nil
			})
			if err != nil {
				yield(nil, err)
				return
			}
			for i, k := range ks {
				rec, err := decodeStored(k, vs[i])
				if err != nil {
					var re *RecordError
					if !errors.As(err, &re) {
						err = &RecordError{last + 1, fmt.Sprintf("record %d: %v", last+1, err)}
					}
				}
				if len(k) == 8 {
					last = binary.BigEndian.Uint64(k)
				}
				if !yield(rec, err) {
					return
				}
			}
			if len(ks) < pageSize {
				return
			}
			from = ks[len(ks)-1]
		}
	}
}

// head reads the last stored record's seq and hash.
func (r reader) head() (uint64, []byte, error) {
	var k, v []byte
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return errNoBucket
		}
		k, v = b.Cursor().Last()
		k, v = bytes.Clone(k), bytes.Clone(v)
		return nil
	})
	if err != nil || k == nil {
		return 0, bytes.Clone(zeroHash), err
	}
	rec, err := decodeStored(k, v)
	if err != nil {
		return 0, nil, err
	}
	return rec.Seq, rec.Hash, nil
}

// Reader reads an audit log file without writing to it, for tools and for
// checking a log offline.
type Reader struct {
	r reader
}

// ReadOnly opens the log at path read-only. bbolt locks the file, so this
// waits (and then fails) while a node has the log open; VerifyFile works on
// a copy instead.
func ReadOnly(path string) (*Reader, error) {
	if _, err := os.Stat(path); err != nil {
		// bbolt would create a missing file even when read-only is asked.
		return nil, fmt.Errorf("audit: %w", err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if err != nil {
		return nil, fmt.Errorf("audit: open %s read-only: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords) == nil {
			return errNoBucket
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	return &Reader{reader{db: db}}, nil
}

// Close closes the file.
func (r *Reader) Close() error { return r.r.db.Close() }

// Head returns the last record's seq and hash, (0, zero hash) when empty.
func (r *Reader) Head() (seq uint64, hash []byte, err error) { return r.r.head() }

// Get returns record seq, or ErrNotFound.
func (r *Reader) Get(seq uint64) (*yrdv1.AuditRecord, error) { return r.r.get(seq) }

// Records iterates over the stored records with seq > after in key order,
// yielding a *RecordError for a record that cannot be read and going on.
func (r *Reader) Records(after uint64) iter.Seq2[*yrdv1.AuditRecord, error] {
	return r.r.records(after)
}

// List returns the records matching f in seq order and the AfterSeq of the
// next page, 0 when there is none.
func (r *Reader) List(f Filter) ([]*yrdv1.AuditRecord, uint64, error) { return r.r.list(f) }

// Export writes the records matching f to w as JSON Lines (protojson with
// proto field names, one record per line) and returns how many it wrote.
// Unlike List, a zero f.Limit exports every match.
func (r *Reader) Export(w io.Writer, f Filter) (int, error) { return r.r.export(w, f) }

// Verify checks the file's records under pub and anchors.
func (r *Reader) Verify(pub ed25519.PublicKey, anchors []*yrdv1.AuditAnchor) Report {
	return Verify(r.r.records(0), pub, anchors)
}
