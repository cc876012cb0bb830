package consensus

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/store"
)

// bootstrapOne opens raft for cfg over catalog as a new cluster of one
// and waits until it leads.
func bootstrapOne(t *testing.T, cfg Config, catalog *store.Catalog) *Raft {
	t.Helper()
	r, err := Open(cfg, catalog, newTCPLayer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, r.IsLeader)
	return r
}

// startOne opens raft for cfg over catalog and waits until it leads.
func startOne(t *testing.T, cfg Config, catalog *store.Catalog) *Raft {
	t.Helper()
	r, err := Open(cfg, catalog, newTCPLayer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitLeader(t, r.IsLeader)
	return r
}

func apply(t *testing.T, r *Raft, i int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := r.Apply(ctx, samplePublish(i))
	if err != nil {
		t.Fatal(err)
	}
	return res.GetIndex()
}

func TestSeedStartsANewClusterFromACatalogCopy(t *testing.T) {
	oldDir := t.TempDir()
	oldCatalog := openTestCatalog(t, oldDir)
	old := bootstrapOne(t, testConfig(filepath.Join(oldDir, "raft")), oldCatalog)
	apply(t, old, 0)
	snap, err := oldCatalog.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var state bytes.Buffer
	snap.WriteTo(&state)
	index := snap.Index()
	snap.Close()
	old.Close()
	oldCatalog.Close()

	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "raft"))
	cfg.ID = "node-new"
	off, err := OpenOffline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Seed(index, bytes.NewReader(state.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := off.Seed(index, bytes.NewReader(state.Bytes())); err == nil {
		t.Fatal("seeded twice")
	}
	off.Close()
	catalog := openTestCatalog(t, dir)
	defer catalog.Close()
	r, err := Open(cfg, catalog, newTCPLayer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitLeader(t, r.IsLeader)
	if _, ok := catalog.GetDataset(sample.Datasets()[0].GetId()); !ok {
		t.Fatal("the seeded catalog lost its dataset")
	}
	if got := apply(t, r, 1); got <= index {
		t.Fatalf("new write at index %d, not after the seed's %d", got, index)
	}
}

func TestRecoverAfterLostQuorum(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "raft"))
	catalog := openTestCatalog(t, dir)
	r := bootstrapOne(t, cfg, catalog)
	apply(t, r, 0)
	// A second voter that never answers: the node has lost its quorum.
	r.AddVoter("127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := r.Apply(ctx, samplePublish(1))
	cancel()
	if err == nil {
		t.Fatal("a write committed without quorum")
	}
	r.Close()

	off, err := OpenOffline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Recover(catalog, []Server{{ID: cfg.ID, Voter: true}}); err != nil {
		t.Fatal(err)
	}
	off.Close()
	// Closing waits for every snapshot of the catalog to be released.
	closed := make(chan error, 1)
	go func() { closed <- catalog.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the catalog does not close after a recovery: a snapshot was left open")
	}
	catalog = openTestCatalog(t, dir)
	defer catalog.Close()
	r = startOne(t, cfg, catalog)
	defer r.Close()
	apply(t, r, 2)
	servers, _ := r.Servers()
	if len(servers) != 1 || servers[0].ID != cfg.ID {
		t.Fatalf("servers after recovery: %v", servers)
	}
	if _, ok := catalog.GetDataset(sample.Datasets()[0].GetId()); !ok {
		t.Fatal("recovery lost a dataset")
	}
}
