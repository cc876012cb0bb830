package owner

import (
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// rowStreamer sends a row result as the engine yields it, in batches, and
// digests it for the receipt. A columnar request gets ColumnBatch messages
// unless a column's type has none (then rows from the start) or a value
// does not fit its column's kind (then rows from that row on): either way
// the same rows and the same digest.
type rowStreamer struct {
	cols     []*yrdv1.ResultColumn
	batch    int
	maxBytes int64
	send     Send

	digest *receipt.Digest
	cb     *resultcodec.ColumnBuilder
	b      *resultcodec.RowBuilder
	ad     *asyncDigest // hashes column batches off the sending goroutine
	sent   uint64
	size   int64
}

func newRowStreamer(r Request, cols []*yrdv1.ResultColumn, maxBytes int64, send Send) *rowStreamer {
	s := &rowStreamer{cols: cols, batch: batchRows(r), maxBytes: maxBytes, send: send, digest: receipt.NewDigest()}
	if r.Columnar {
		s.cb = resultcodec.NewColumnBuilder(cols, s.batch)
	}
	if s.cb == nil {
		s.b = resultcodec.NewRowBuilder(cols, s.batch)
	} else {
		s.ad = startAsyncDigest(s.digest)
	}
	return s
}

// close ends the digest goroutine, on every return.
func (s *rowStreamer) close() {
	if s.ad != nil {
		_ = s.ad.wait()
	}
}

// add sends one engine row (in a batch, when the batch fills).
func (s *rowStreamer) add(vals []any) error {
	if s.cb != nil && !s.cb.Add(vals) {
		if err := s.flush(); err != nil {
			return err
		}
		if err := s.digestDone(); err != nil {
			return err
		}
		s.cb, s.b = nil, resultcodec.NewRowBuilder(s.cols, s.batch)
	}
	if s.cb == nil {
		row, err := s.b.Add(vals)
		if err != nil {
			return errkind.Errorf(errkind.Internal, "%v", err)
		}
		s.digest.Add(row)
	}
	s.sent++
	if (s.cb != nil && s.cb.Len() >= s.batch) || (s.cb == nil && s.b.Len() >= s.batch) {
		return s.flush()
	}
	return nil
}

// finish sends the last batch and returns what was sent.
func (s *rowStreamer) finish() (sentRows, error) {
	if err := s.flush(); err != nil {
		return sentRows{}, err
	}
	if err := s.digestDone(); err != nil {
		return sentRows{}, err
	}
	return sentRows{n: s.sent, digest: s.digest.Sum()}, nil
}

// digestDone waits for the column batches' digest, before rows are added
// to it or it is summed.
func (s *rowStreamer) digestDone() error {
	if s.ad == nil {
		return nil
	}
	if err := s.ad.wait(); err != nil {
		return errkind.Errorf(errkind.Internal, "%v", err)
	}
	return nil
}

// capSize adds up the size as rows are built (protowire), so the cap is
// checked without encoding a batch an extra time.
func (s *rowStreamer) capSize(add int) error {
	if s.size += int64(add); s.size > s.maxBytes {
		return errkind.Errorf(ErrResultSize, "the result passed the %d-byte size cap after %d rows; narrow the query", s.maxBytes, s.sent)
	}
	return nil
}

func (s *rowStreamer) flush() error {
	if s.cb != nil {
		if s.cb.Len() == 0 {
			return nil
		}
		cbatch, sz := s.cb.Take()
		if err := s.capSize(sz); err != nil {
			return err
		}
		s.ad.add(cbatch)
		return s.send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Columns{Columns: cbatch}})
	}
	if s.b.Len() == 0 {
		return nil
	}
	if err := s.capSize(s.b.Size()); err != nil {
		return err
	}
	err := s.send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: s.b.Rows()}}})
	s.b = resultcodec.NewRowBuilder(s.cols, s.batch)
	return err
}

// asyncDigest adds column batches to a receipt digest on a goroutine of its
// own, so that hashing (formatting each date and timestamp as its row-form
// text, then SHA-256) overlaps reading and sending the next batch instead
// of adding to the one goroutine that streams the result. A batch must not
// change once handed over; sending it only reads it.
type asyncDigest struct {
	d      *receipt.Digest
	ch     chan *yrdv1.ColumnBatch
	done   chan error
	closed bool
	err    error
}

func startAsyncDigest(d *receipt.Digest) *asyncDigest {
	a := &asyncDigest{d: d, ch: make(chan *yrdv1.ColumnBatch, 4), done: make(chan error, 1)}
	go func() {
		var err error
		for b := range a.ch {
			if err == nil {
				err = a.d.AddColumns(b)
			}
		}
		a.done <- err
	}()
	return a
}

// add queues b to be hashed after the batches before it.
func (a *asyncDigest) add(b *yrdv1.ColumnBatch) { a.ch <- b }

// wait returns once every queued batch is hashed; the digest may then be
// used again. Calling it again returns the same result.
func (a *asyncDigest) wait() error {
	if !a.closed {
		a.closed = true
		close(a.ch)
		a.err = <-a.done
	}
	return a.err
}
