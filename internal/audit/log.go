package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var (
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrFailed wraps the write error that stopped the log; every later
	// Append returns it until the node reopens the log.
	ErrFailed = errors.New("audit: log failed")
	// ErrNotFound is returned by Get for a sequence number not in the log.
	ErrNotFound = errors.New("audit: record not found")
)

// DefaultMaxBatch bounds one group commit when Options.MaxBatch is 0.
const DefaultMaxBatch = 1024

// DefaultLinger is Options.Linger when it is 0.
const DefaultLinger = 10 * time.Millisecond

// openTimeout bounds the wait for bbolt's file lock: a second process on the
// same file should fail, not hang the node's start.
const openTimeout = 5 * time.Second

// Options tune a Log. The zero value is the safe production setting.
type Options struct {
	// NoSync skips fsync. Only for tests: a record would no longer be
	// durable when Append returns.
	NoSync bool
	// MaxBatch is the most appends written in one transaction.
	MaxBatch int
	// Clock stamps records that arrive without a time; time.Now if nil.
	Clock func() time.Time
	// Linger is how long a group commit of queued records only (Enqueue,
	// which nobody waits on) waits for more before it is written, so that
	// a stream of catalog changes costs one commit (two fsyncs of the disk
	// the raft log syncs on) per Linger rather than per change. An Append
	// or Flush arriving meanwhile is written at once, with them. 0 means
	// DefaultLinger; negative, no wait.
	Linger time.Duration
}

// Log is a node's append-only, hash-chained, signed audit log: the last
// record of every group commit is signed (see the package doc). It is safe
// for concurrent use.
type Log struct {
	r        reader
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	node     string
	clock    func() time.Time
	maxBatch int
	linger   time.Duration

	reqs      chan *request
	closing   chan struct{} // closed by Close
	exited    chan struct{} // closed by the writer on its way out
	closeOnce sync.Once
	closeErr  error

	commits atomic.Uint64 // transactions committed, to see batching at work

	head   atomic.Pointer[headState]
	failed atomic.Pointer[error] // sticky write error, see ErrFailed
}

type headState struct {
	seq  uint64
	hash []byte
}

// request is one pending Append; done is buffered so the writer never
// blocks on a caller that gave up.
type request struct {
	rec    *yrdv1.AuditRecord
	done   chan error
	queued bool // by Enqueue: nobody waits for it
}

// Open opens or creates the audit log at path. key signs the last record of
// every group commit and node is written into each record; the existing
// head, if any, must be signed and verify under key, so a node never
// extends a log it cannot vouch for.
func Open(path string, key ed25519.PrivateKey, node string, opts Options) (*Log, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if node == "" {
		return nil, errors.New("audit: empty node id")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      openTimeout,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{
		r:        reader{db: db},
		key:      key,
		pub:      key.Public().(ed25519.PublicKey),
		node:     node,
		clock:    opts.Clock,
		maxBatch: opts.MaxBatch,
		linger:   opts.Linger,
		closing:  make(chan struct{}),
		exited:   make(chan struct{}),
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.linger == 0 {
		l.linger = DefaultLinger
	}
	l.reqs = make(chan *request, l.maxBatch)
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRecords)
		return err
	})
	if err == nil {
		err = l.loadHead()
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	go l.writer()
	return l, nil
}

// loadHead reads the last record and checks it before the chain continues
// from it. Only the head is checked here; the full check is Verify. The
// head must carry a valid signature of its own: the next group commit's
// signature covers it through the chain, so extending an unsigned head
// would vouch for records (say, ones added to the file while the node was
// down) that this key never signed.
func (l *Log) loadHead() error {
	h := &headState{hash: zeroHash}
	err := l.r.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketRecords).Cursor().Last()
		if k == nil {
			return nil
		}
		rec, rerr := decodeStored(k, v)
		if rerr != nil {
			return rerr
		}
		if p := checkRecord(rec, l.pub); p != "" {
			return fmt.Errorf("record %d: %s", rec.Seq, p)
		}
		if len(rec.Signature) == 0 {
			return fmt.Errorf("record %d: unsigned, so no signature covers it", rec.Seq)
		}
		h.seq, h.hash = rec.Seq, rec.Hash
		return nil
	})
	if err != nil {
		return fmt.Errorf("last record: %w", err)
	}
	l.head.Store(h)
	return nil
}

// Head returns the sequence number and hash of the last durable record:
// (0, 32 zero bytes) for an empty log. Feed them to NewAnchor.
func (l *Log) Head() (seq uint64, hash []byte) {
	h := l.head.Load()
	return h.seq, bytes.Clone(h.hash)
}

// PublicKey returns the key that verifies this log's records and anchors.
func (l *Log) PublicKey() ed25519.PublicKey { return l.pub }

// Append adds rec to the log and returns the stored record, with seq, time
// (unless set), node, prev_hash and hash filled in, and the signature if
// the record was the last of its group commit (the others are covered by
// that signature through the chain). It returns only once the record is
// durable. rec itself is not modified.
//
// If ctx ends first Append returns ctx's error; the record may still be
// written. Any error means the caller must treat the action as unaudited.
func (l *Log) Append(ctx context.Context, rec *yrdv1.AuditRecord) (*yrdv1.AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.stickyErr(); err != nil {
		return nil, err
	}
	select {
	case <-l.closing:
		return nil, ErrClosed
	default:
	}
	r := &request{rec: proto.Clone(rec).(*yrdv1.AuditRecord), done: make(chan error, 1)}
	select {
	case l.reqs <- r:
	case <-l.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-r.done:
		return result(r, err)
	case <-l.exited:
		// The writer answers everything it dequeued before exiting; a
		// request that slipped in after its last drain was never written.
		select {
		case err := <-r.done:
			return result(r, err)
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Enqueue queues rec for the next group commit and returns without waiting
// for it to be durable: for records of changes that have already happened
// and are durable elsewhere (a committed catalog change is in the
// replicated raft log), where waiting would only add an fsync to the
// caller's latency. Records keep their order with those of Append. A
// crash may lose records queued but not yet committed: at most one group
// commit's worth, which gathers queued records for up to Options.Linger;
// a write failure makes the log fail every later call.
//
// It blocks only while the queue is full, which is the writer's
// back-pressure, or until ctx ends.
func (l *Log) Enqueue(ctx context.Context, rec *yrdv1.AuditRecord) error {
	if err := l.stickyErr(); err != nil {
		return err
	}
	r := &request{rec: proto.Clone(rec).(*yrdv1.AuditRecord), done: make(chan error, 1), queued: true}
	select {
	case <-l.closing:
		return ErrClosed
	default:
	}
	select {
	case l.reqs <- r:
		return nil
	case <-l.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush returns once every record queued before it is written (or has
// failed), so a reader sees the records of changes already answered.
func (l *Log) Flush(ctx context.Context) error {
	r := &request{done: make(chan error, 1)} // no record: a barrier
	select {
	case l.reqs <- r:
	case <-l.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-l.exited:
		return nil // Close writes everything queued
	case <-ctx.Done():
		return ctx.Err()
	}
}

func result(r *request, err error) (*yrdv1.AuditRecord, error) {
	if err != nil {
		return nil, err
	}
	return r.rec, nil
}

func (l *Log) stickyErr() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops accepting appends, writes those already queued, stops the
// writer goroutine and closes the file.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.exited
		l.closeErr = l.r.db.Close()
	})
	return l.closeErr
}

// writer is the one goroutine that writes records: it owns the chain state
// (next seq, prev hash) so no lock is held across an fsync.
func (l *Log) writer() {
	defer close(l.exited)
	batch := make([]*request, 0, l.maxBatch)
	for {
		select {
		case r := <-l.reqs:
			batch = l.lingerFor(l.collect(append(batch[:0], r)))
			l.commit(batch)
		case <-l.closing:
			// Appends that got into the queue before Close are written, so
			// Close never drops a record a caller is waiting on.
			for {
				batch = l.collect(batch[:0])
				if len(batch) == 0 {
					return
				}
				l.commit(batch)
			}
		}
	}
}

// collect adds whatever is already queued, up to maxBatch, without waiting:
// appends that arrived during the previous fsync share the next one.
func (l *Log) collect(batch []*request) []*request {
	for len(batch) < l.maxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// lingerFor waits, for a batch of queued records only, up to l.linger for
// more (see Options.Linger); a request somebody waits on, a full batch or
// Close ends the wait.
func (l *Log) lingerFor(batch []*request) []*request {
	if l.linger < 0 || len(batch) >= l.maxBatch || !allQueued(batch) {
		return batch
	}
	t := time.NewTimer(l.linger)
	defer t.Stop()
	for len(batch) < l.maxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			if !r.queued {
				return l.collect(batch)
			}
		case <-t.C:
			return batch
		case <-l.closing:
			return batch
		}
	}
	return batch
}

func allQueued(batch []*request) bool {
	for _, r := range batch {
		if !r.queued {
			return false
		}
	}
	return true
}

// commit writes batch in one transaction and answers every request in it.
// Every record is chained; only the batch's last record is signed, which
// costs one ed25519 signature per commit instead of one per record.
func (l *Log) commit(batch []*request) {
	if err := l.stickyErr(); err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	h := l.head.Load()
	seq, prev := h.seq, h.hash
	written := make([]*request, 0, len(batch))
	err := l.r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		// Keys only ever grow, so full pages are never split again.
		b.FillPercent = 1.0
		// Each record is put once the next one is sealed, so the batch's
		// last record is known when it is put: that one is signed.
		var last *yrdv1.AuditRecord
		for _, r := range batch {
			if r.rec == nil { // a Flush barrier
				written = append(written, r)
				continue
			}
			if err := l.seal(r.rec, seq+1, prev); err != nil {
				// A record that cannot be encoded (e.g. invalid UTF-8)
				// fails alone; it takes no seq.
				r.done <- err
				continue
			}
			if last != nil {
				if err := put(b, last); err != nil {
					return err
				}
			}
			last = r.rec
			// Copy: the caller owns r.rec once answered and may scribble on it.
			seq, prev = seq+1, bytes.Clone(r.rec.Hash)
			written = append(written, r)
		}
		if last == nil {
			return nil
		}
		last.Signature = ed25519.Sign(l.key, last.Hash)
		return put(b, last)
	})
	if err != nil {
		err = fmt.Errorf("%w: write: %w", ErrFailed, err)
		l.failed.CompareAndSwap(nil, &err)
		for _, r := range batch {
			// Requests that failed to encode hold their answer already.
			select {
			case r.done <- err:
			default:
			}
		}
		return
	}
	l.head.Store(&headState{seq: seq, hash: prev})
	l.commits.Add(1)
	for _, r := range written {
		r.done <- nil
	}
}

// seal fills in the chain fields of rec as record seq after prev, leaving
// it unsigned: commit signs the last record of a batch.
func (l *Log) seal(rec *yrdv1.AuditRecord, seq uint64, prev []byte) error {
	rec.Seq = seq
	rec.Node = l.node
	if rec.Time == nil {
		rec.Time = timestamppb.New(l.clock())
	}
	rec.PrevHash = bytes.Clone(prev)
	rec.Hash, rec.Signature = nil, nil
	h, err := RecordHash(rec)
	if err != nil {
		return err
	}
	rec.Hash = h
	return nil
}

// put stores a sealed record under its seq.
func put(b *bolt.Bucket, rec *yrdv1.AuditRecord) error {
	v, err := canonical.Marshal(rec)
	if err != nil {
		return fmt.Errorf("audit: encode record %d: %w", rec.Seq, err)
	}
	return b.Put(seqKey(rec.Seq), v)
}

// Get returns record seq, or ErrNotFound.
func (l *Log) Get(seq uint64) (*yrdv1.AuditRecord, error) { return l.r.get(seq) }

// List returns the records matching f in seq order and the AfterSeq of the
// next page, 0 when there is none.
func (l *Log) List(f Filter) ([]*yrdv1.AuditRecord, uint64, error) { return l.r.list(f) }

// Export writes the records matching f to w as JSON Lines; see Reader.Export.
func (l *Log) Export(w io.Writer, f Filter) (int, error) {
	return l.r.export(w, f)
}

// Records iterates over the stored records after seq after; see
// Reader.Records.
func (l *Log) Records(after uint64) iter.Seq2[*yrdv1.AuditRecord, error] {
	return l.r.records(after)
}

// Backup writes a consistent copy of the log file to w while appends go
// on, e.g. for VerifyFile or for handing the file to a regulator.
func (l *Log) Backup(w io.Writer) (n int64, err error) {
	err = l.r.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Verify checks the whole log under the node's own key and anchors.
func (l *Log) Verify(anchors []*yrdv1.AuditAnchor) Report {
	return Verify(l.r.records(0), l.pub, anchors)
}
