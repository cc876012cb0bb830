package consensus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/store"
	"github.com/yrd-exchange/yrdnode/store/wal"
)

// tcpLayer is a raft.StreamLayer on loopback TCP. A single-node cluster
// never dials, so the server ids used as addresses need not resolve.
type tcpLayer struct{ net.Listener }

func (l tcpLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

func newTCPLayer(t *testing.T) tcpLayer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return tcpLayer{ln}
}

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.ID, c.Dir = "node-1", dir
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return c
}

func openTestCatalog(t *testing.T, dir string) *store.Catalog {
	t.Helper()
	c, err := store.OpenCatalog(filepath.Join(dir, "catalog.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// samplePublish is a publish command for sample dataset i, from its owner.
func samplePublish(i int) *yrdv1.Command {
	d := proto.Clone(sample.Datasets()[i]).(*yrdv1.Dataset)
	cmd := publishCmd(d)
	cmd.Time = timestamppb.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	cmd.OriginCity, cmd.OriginPeer = d.GetOwnerCity(), d.GetOwnerCity()+"-peer"
	return cmd
}

func waitLeader(t *testing.T, isLeader func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !isLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader elected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeOldDataDir runs raft the way versions before the WAL did, with
// raft.db as both log and stable store, and applies n publishes. It
// returns the last log index and the term.
func writeOldDataDir(t *testing.T, cfg Config, catalog *store.Catalog, n int) (last, term uint64) {
	t.Helper()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	logs, err := store.OpenLogStore(filepath.Join(cfg.Dir, "raft.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotsRetained, newHCLogger(cfg.Logger))
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: newTCPLayer(t), MaxPool: 1, Timeout: time.Second, Logger: newHCLogger(cfg.Logger)})
	defer trans.Close()
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = cfg.LeaderLeaseTimeout, cfg.CommitTimeout
	rc.Logger = newHCLogger(cfg.Logger)
	r, err := raft.NewRaft(rc, newFSM(catalog, nil, cfg.Logger), logs, logs, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(cfg.ID)}}}
	if err := r.BootstrapCluster(boot).Error(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, func() bool { return r.State() == raft.Leader })
	for i := range n {
		data, _ := proto.Marshal(samplePublish(i))
		f := r.Apply(data, 5*time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		if res := f.Response().(*yrdv1.CommandResult); res.GetErrorCode() != ok {
			t.Fatalf("publish %d: %v", i, res)
		}
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	last, _ = logs.LastIndex()
	term, _ = logs.GetUint64([]byte("CurrentTerm"))
	return last, term
}

// A node upgraded in place: its raft.db holds the log. Open moves the
// entries to the WAL, leaves raft.db with the stable keys only, and raft
// goes on from the same log.
func TestOpenMovesTheLogOutOfAnOldRaftDB(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "raft"))
	catalog := openTestCatalog(t, dir)
	defer catalog.Close()
	const n = 3
	oldLast, oldTerm := writeOldDataDir(t, cfg, catalog, n)
	if oldLast < n+1 {
		t.Fatalf("old log ends at %d", oldLast)
	}

	r, err := Open(cfg, catalog, newTCPLayer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := r.logs.FirstIndex(); first != 1 {
		t.Fatalf("WAL starts at %d, want 1", first)
	}
	if last, _ := r.logs.LastIndex(); last != oldLast {
		t.Fatalf("WAL ends at %d, want %d", last, oldLast)
	}
	if last, _ := r.stable.LastIndex(); last != 0 {
		t.Fatalf("raft.db still holds entries up to %d", last)
	}
	if term, err := r.stable.GetUint64([]byte("CurrentTerm")); err != nil || term < oldTerm {
		t.Fatalf("CurrentTerm = %d, %v; was %d", term, err, oldTerm)
	}
	var l raft.Log
	if err := r.logs.GetLog(1, &l); err != nil || l.Type != raft.LogConfiguration {
		t.Fatalf("entry 1 = %+v, %v; want the bootstrap configuration", l, err)
	}
	if !r.HasState() {
		t.Fatal("HasState = false after moving the log")
	}
	waitLeader(t, r.IsLeader)
	res, err := r.Apply(context.Background(), samplePublish(n))
	if err != nil || res.GetErrorCode() != ok {
		t.Fatalf("apply after upgrade: %v, %v", res, err)
	}
	if got := catalog.DatasetCount(); got != n+1 {
		t.Fatalf("catalog holds %d datasets, want %d", got, n+1)
	}
	last, _ := r.logs.LastIndex()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// A second start has nothing to move; the log is all in the WAL.
	r, err = Open(cfg, catalog, newTCPLayer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if first, _ := r.logs.FirstIndex(); first != 1 {
		t.Fatalf("after restart the WAL starts at %d", first)
	}
	if got, _ := r.logs.LastIndex(); got < last {
		t.Fatalf("after restart the WAL ends at %d, want %d", got, last)
	}
	waitLeader(t, r.IsLeader)
	if res, err := r.Apply(context.Background(), samplePublish(n+1)); err != nil || res.GetErrorCode() != ok {
		t.Fatalf("apply after restart: %v, %v", res, err)
	}
}

// A crash between installing a snapshot and deleting the log it replaces
// leaves a log that ends before the snapshot; Open empties it so raft can
// append after the snapshot.
func TestOpenDropsALogThatEndsBeforeTheNewestSnapshot(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	logs, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	for i := uint64(1); i <= 10; i++ {
		if err := logs.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, newHCLogger(cfg.Logger))
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("")
	conf := raft.Configuration{Servers: []raft.Server{{ID: "node-1", Address: "node-1"}}}
	for _, snapIndex := range []uint64{10, 50} {
		sink, err := snaps.Create(raft.SnapshotVersionMax, snapIndex, 2, conf, 1, trans)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		if err := dropLogBehindSnapshot(cfg, logs, snaps); err != nil {
			t.Fatal(err)
		}
		first, _ := logs.FirstIndex()
		last, _ := logs.LastIndex()
		want := fmt.Sprintf("%d-%d", 1, 10)
		if snapIndex > 10 {
			want = "0-0"
		}
		if got := fmt.Sprintf("%d-%d", first, last); got != want {
			t.Fatalf("snapshot at %d: log %s, want %s", snapIndex, got, want)
		}
	}
}
