package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// localData is the node's raw data: the engines that serve the datasets it
// owns, and the ledger of what left the mainland.
type localData struct {
	engines []connector.Engine
	exports *ledger.Ledger
	differ  *diffcheck.Store // fingerprints of released groups

	configured map[string]bool // every dataset with local data here

	mu      sync.Mutex
	pending map[string]bool // datasets to re-check after a catalog change
	kick    chan struct{}
}

// openData opens the configured connectors and the export ledger. A
// dataset whose local data does not match the catalog is not served, and
// the log says why; that does not stop the node.
func (n *Node) openData(ctx context.Context) error {
	d := &localData{pending: map[string]bool{}, configured: map[string]bool{}, kick: make(chan struct{}, 1)}
	n.data = d
	secret, err := n.secret("yrd.ledger")
	if err != nil {
		return err
	}
	if d.exports, err = ledger.Open(n.cfg.ledgerPath(), secret); err != nil {
		return err
	}
	if d.differ, err = diffcheck.Open(n.cfg.diffCheckPath(), diffcheck.Options{Window: n.cfg.DiffCheckWindow, Logger: n.log}); err != nil {
		return err
	}
	lookup := func(id string) (*yrdv1.Dataset, bool) { return n.catalog.GetDataset(id) }
	if len(n.cfg.Data.Files) > 0 {
		db, err := connector.OpenDuckDB(ctx, n.cfg.Data.Files, lookup)
		if err != nil {
			return err
		}
		d.engines = append(d.engines, db)
	}
	if pg := n.cfg.Data.Postgres; pg != nil {
		p, err := connector.OpenPostgres(ctx, pg.DSN, pg.Tables, lookup)
		if err != nil {
			return err
		}
		d.engines = append(d.engines, p)
	}
	for _, f := range n.cfg.Data.Files {
		d.configured[f.DatasetID] = true
	}
	if pg := n.cfg.Data.Postgres; pg != nil {
		for _, t := range pg.Tables {
			d.configured[t.DatasetID] = true
		}
	}
	for id := range d.configured {
		n.reportServing(id)
	}
	return nil
}

func (d *localData) close() error {
	if d == nil {
		return nil
	}
	var errs []error
	for _, e := range d.engines {
		errs = append(errs, e.Close())
	}
	if d.exports != nil {
		errs = append(errs, d.exports.Close())
	}
	if d.differ != nil {
		errs = append(errs, d.differ.Close())
	}
	return errors.Join(errs...)
}

// engineFor returns the engine configured for dataset id, or nil.
func (n *Node) engineFor(id string) connector.Engine {
	if n.data == nil {
		return nil
	}
	for _, e := range n.data.engines {
		if e.Configured(id) {
			return e
		}
	}
	return nil
}

func (n *Node) reportServing(id string) {
	e := n.engineFor(id)
	if e == nil {
		return
	}
	if ms := e.Problems(id); len(ms) > 0 {
		level := slog.LevelWarn
		if _, published := n.catalog.GetDataset(id); !published {
			level = slog.LevelInfo // configured ahead of publishing: normal
		}
		for _, m := range ms {
			n.log.Log(n.base, level, "dataset not served", "dataset", id, "problem", m.String())
		}
		return
	}
	n.log.Info("dataset served", "dataset", id)
}

// dataChanged queues a re-check of a dataset's local data after its
// catalog entry changed. Called on the FSM goroutine, so it only queues.
func (n *Node) dataChanged(id string) {
	if n.engineFor(id) == nil {
		return
	}
	n.data.mu.Lock()
	n.data.pending[id] = true
	n.data.mu.Unlock()
	select {
	case n.data.kick <- struct{}{}:
	default:
	}
}

// recheckLoop re-checks datasets queued by dataChanged, and every
// configured dataset each DataRecheckInterval, so that local files or
// tables changed under a running node are noticed (served again once
// fixed, not served once they stop matching).
func (n *Node) recheckLoop() {
	t := time.NewTicker(n.cfg.DataRecheckInterval)
	defer t.Stop()
	for {
		var ids map[string]bool
		periodic := false
		select {
		case <-n.base.Done():
			return
		case <-n.data.kick:
			n.data.mu.Lock()
			ids = n.data.pending
			n.data.pending = map[string]bool{}
			n.data.mu.Unlock()
		case <-t.C:
			ids, periodic = n.data.configured, true
		}
		for id := range ids {
			was := n.Serving(id)
			n.engineFor(id).CheckDataset(n.base, id)
			// A periodic check speaks only when something changed.
			if !periodic || n.Serving(id) != was {
				n.reportServing(id)
			}
		}
	}
}

// secret derives a node-local key for one purpose from the node's
// identity key, so no further secret needs to be kept.
func (n *Node) secret(purpose string, parts ...string) ([]byte, error) {
	sk, err := n.signingKey()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, sk.Seed())
	m.Write([]byte(purpose))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil), nil
}

// Serving reports whether this node serves dataset id's local data now.
func (n *Node) Serving(id string) bool {
	e := n.engineFor(id)
	return e != nil && e.Serving(id)
}
