package node

import (
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// rowStreamer sends a row result as the engine yields it, in batches, and
// digests it for the receipt. A columnar request gets ColumnBatch messages
// unless a column's type has none (then rows from the start) or a value
// does not fit its column's kind (then rows from that row on): either way
// the same rows and the same digest.
type rowStreamer struct {
	n     *Node
	cols  []*yrdv1.ResultColumn
	batch int
	send  func(*yrdv1.QueryResponse) error

	digest *receipt.Digest
	cb     *columnBuilder
	b      *batchBuilder
	ad     *asyncDigest // hashes column batches off the sending goroutine
	sent   uint64
	size   int64
}

func newRowStreamer(n *Node, r execRequest, cols []*yrdv1.ResultColumn, send func(*yrdv1.QueryResponse) error) *rowStreamer {
	s := &rowStreamer{n: n, cols: cols, batch: r.batch, send: send, digest: receipt.NewDigest()}
	if s.batch <= 0 {
		s.batch = defaultBatchRows
	}
	if r.columnar {
		s.cb = newColumnBuilder(cols, s.batch)
	}
	if s.cb == nil {
		s.b = newBatchBuilder(cols, s.batch)
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
	if s.cb != nil && !s.cb.add(vals) {
		if err := s.flush(); err != nil {
			return err
		}
		if err := s.digestDone(); err != nil {
			return err
		}
		s.cb, s.b = nil, newBatchBuilder(s.cols, s.batch)
	}
	if s.cb == nil {
		row, err := s.b.add(vals)
		if err != nil {
			return err
		}
		s.digest.Add(row)
	}
	s.sent++
	if (s.cb != nil && s.cb.rows >= s.batch) || (s.cb == nil && len(s.b.rows) >= s.batch) {
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
		return errorf(ErrInternal, "%v", err)
	}
	return nil
}

// capSize adds up the size as rows are built (protowire), so the cap is
// checked without encoding a batch an extra time.
func (s *rowStreamer) capSize(add int) error {
	if s.size += int64(add); s.size > s.n.cfg.MaxResultBytes {
		return errorf(errResultSize, "the result passed the %d-byte size cap after %d rows; narrow the query", s.n.cfg.MaxResultBytes, s.sent)
	}
	return nil
}

func (s *rowStreamer) flush() error {
	if s.cb != nil {
		if s.cb.rows == 0 {
			return nil
		}
		cbatch, sz := s.cb.take()
		if err := s.capSize(sz); err != nil {
			return err
		}
		s.ad.add(cbatch)
		return s.send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Columns{Columns: cbatch}})
	}
	if len(s.b.rows) == 0 {
		return nil
	}
	if err := s.capSize(s.b.size); err != nil {
		return err
	}
	err := s.send(&yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: s.b.rows}}})
	s.b = newBatchBuilder(s.cols, s.batch)
	return err
}
