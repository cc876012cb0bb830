package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// catalogState is everything observable about a catalog, for comparisons.
type catalogState struct {
	index    uint64
	datasets []*yrdv1.Dataset
	members  []*yrdv1.Member
	tokens   map[string]*yrdv1.JoinToken
}

func captureState(t *testing.T, c *Catalog, tokenHashes ...string) catalogState {
	t.Helper()
	s := catalogState{
		index:    c.AppliedIndex(),
		datasets: listAll(t, c, ListFilter{IncludeRetired: true, PageSize: 1000}),
		members:  c.Members(),
		tokens:   map[string]*yrdv1.JoinToken{},
	}
	peek := errors.New("peek")
	err := c.Update(0, func(tx *Tx) error {
		for _, h := range tokenHashes {
			if jt, err := tx.JoinToken([]byte(h)); err == nil {
				s.tokens[h] = jt
			}
		}
		return peek
	})
	if !errors.Is(err, peek) {
		t.Fatal(err)
	}
	return s
}

func equalState(t *testing.T, got, want catalogState) {
	t.Helper()
	if got.index != want.index {
		t.Fatalf("applied index %d, want %d", got.index, want.index)
	}
	sameDatasets(t, got.datasets, want.datasets)
	if len(got.members) != len(want.members) {
		t.Fatalf("%d members, want %d", len(got.members), len(want.members))
	}
	for i := range got.members {
		if !proto.Equal(got.members[i], want.members[i]) {
			t.Fatalf("member %d: %v, want %v", i, got.members[i], want.members[i])
		}
	}
	if len(got.tokens) != len(want.tokens) {
		t.Fatalf("tokens %v, want %v", got.tokens, want.tokens)
	}
	for h, jt := range want.tokens {
		if !proto.Equal(got.tokens[h], jt) {
			t.Fatalf("token %s: %v, want %v", h, got.tokens[h], jt)
		}
	}
}

func snapshotBytes(t *testing.T, c *Catalog) ([]byte, uint64) {
	t.Helper()
	snap, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) || n != snap.Size() {
		t.Fatalf("WriteTo = %d, %v (size %d)", n, err, snap.Size())
	}
	return buf.Bytes(), snap.Index()
}

func TestSnapshotThenWritesThenRestoreIntoFreshCatalogGivesSnapshotState(t *testing.T) {
	src := openTestCatalog(t, t.TempDir())
	defer src.Close()
	fill(t, src, 10, 500)
	mustUpdate(t, src, 11, func(tx *Tx) error {
		if err := tx.PutMember(member("peer-a", "shanghai")); err != nil {
			return err
		}
		return tx.PutJoinToken(&yrdv1.JoinToken{TokenHash: []byte("t1"), City: "wuxi"})
	})
	want := captureState(t, src, "t1", "t2")

	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Index() != 11 {
		t.Fatalf("snapshot index %d, want 11", snap.Index())
	}
	// Writers keep going while the snapshot streams.
	done := make(chan error)
	go func() {
		for i := uint64(12); i < 60; i++ {
			err := src.Update(i, func(tx *Tx) error {
				d := genDataset(int(i))
				d.Title, d.Version = fmt.Sprintf("rewritten at %d", i), i
				if err := tx.PutDataset(d); err != nil {
					return err
				}
				if err := tx.PutDataset(genDataset(int(i) + 10_000)); err != nil {
					return err
				}
				if err := tx.DeleteMember("peer-a"); err != nil {
					return err
				}
				return tx.PutJoinToken(&yrdv1.JoinToken{TokenHash: []byte("t2")})
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	snap.Close()
	if _, err := snap.WriteTo(io.Discard); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}

	dir := t.TempDir()
	dst := openTestCatalog(t, dir)
	if err := dst.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	equalState(t, captureState(t, dst, "t1", "t2"), want)
	// The restored file is the catalog now: it survives a reopen and takes writes.
	mustUpdate(t, dst, 12, func(tx *Tx) error { return tx.PutDataset(genDataset(7777)) })
	dst.Close()
	dst = openTestCatalog(t, dir)
	defer dst.Close()
	if dst.AppliedIndex() != 12 || dst.DatasetCount() != 501 {
		t.Fatalf("after reopen: index %d, %d datasets", dst.AppliedIndex(), dst.DatasetCount())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.restore-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left: %v", leftovers)
	}
}

func TestRestoreOlderSnapshotKeepsNewerState(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	fill(t, c, 5, 50)
	old, oldIndex := snapshotBytes(t, c)
	for i := uint64(6); i <= 9; i++ {
		mustUpdate(t, c, i, func(tx *Tx) error { return tx.PutDataset(genDataset(int(i) * 100)) })
	}
	want := captureState(t, c)
	if err := c.Restore(bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	equalState(t, captureState(t, c), want)

	// Same for a snapshot at exactly our index, and into another replica
	// that is further ahead.
	same, _ := snapshotBytes(t, c)
	if err := c.Restore(bytes.NewReader(same)); err != nil {
		t.Fatal(err)
	}
	equalState(t, captureState(t, c), want)
	ahead := openTestCatalog(t, t.TempDir())
	defer ahead.Close()
	fill(t, ahead, oldIndex+100, 3)
	wantAhead := captureState(t, ahead)
	if err := ahead.Restore(bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	equalState(t, captureState(t, ahead), wantAhead)
}

func TestRestoreGarbageReturnsErrorAndLeavesStateIntact(t *testing.T) {
	dir := t.TempDir()
	c := openTestCatalog(t, dir)
	defer c.Close()
	fill(t, c, 3, 20)
	want := captureState(t, c)
	valid, _ := snapshotBytes(t, c)

	// A well-formed bbolt file that is not a catalog.
	foreignPath := filepath.Join(t.TempDir(), "foreign.db")
	fdb, err := bolt.Open(foreignPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	fdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	fdb.Close()
	foreign, _ := os.ReadFile(foreignPath)

	random := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{1}).Read(random)
	// A newer snapshot with a valid header but damaged pages: bbolt would
	// fault or panic reading these. (A snapshot at or below our index is
	// discarded unread, so the damage must come from a catalog ahead of us.)
	ahead := openTestCatalog(t, t.TempDir())
	fill(t, ahead, 50, 200)
	newer, _ := snapshotBytes(t, ahead)
	ahead.Close()
	pageSize := int(binary.NativeEndian.Uint32(newer[boltPageHeader+8:]))
	rootPage := int(binary.NativeEndian.Uint64(newer[boltPageHeader+16:]))
	damaged := func(first, last int) []byte {
		b := bytes.Clone(newer)
		r := rand.New(rand.NewPCG(uint64(first), uint64(last)))
		for i := first * pageSize; i < (last+1)*pageSize; i++ {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	inputs := map[string][]byte{
		"empty":             nil,
		"random":            random,
		"text":              []byte("definitely not a database"),
		"truncated":         valid[:len(valid)/2],
		"foreign":           foreign,
		"damaged root page": damaged(rootPage, rootPage),
		"damaged all pages": damaged(2, len(newer)/pageSize-1),
		"truncated newer":   newer[:len(newer)-pageSize],
	}
	for name, in := range inputs {
		if err := c.Restore(bytes.NewReader(in)); err != nil {
			t.Logf("%s: %v", name, err)
		} else {
			t.Errorf("%s: Restore succeeded", name)
		}
		equalState(t, captureState(t, c), want)
	}
	if err := c.Restore(iotestErrReader{}); err == nil {
		t.Error("reader error: Restore succeeded")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.restore-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left: %v", leftovers)
	}
	mustUpdate(t, c, 4, func(tx *Tx) error { return tx.PutDataset(genDataset(999)) })
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// pairs are datasets every writer Update rewrites together with one version;
// a reader seeing two versions at once has observed a partial update.
const pairs = 8

func pairUpdate(c *Catalog, index uint64, version uint64) error {
	return c.Update(index, func(tx *Tx) error {
		for p := range pairs {
			d := genDataset(p)
			d.Tags, d.Version, d.Retired = []string{"pair"}, version, false
			if err := tx.PutDataset(d); err != nil {
				return err
			}
		}
		return tx.PutMember(&yrdv1.Member{PeerId: "peer", ApiAddr: fmt.Sprint(version)})
	})
}

func TestConcurrentReadersDuringUpdateAndRestoreSeeWholeStates(t *testing.T) {
	// The snapshot source is far ahead so that Restore really swaps.
	src := openTestCatalog(t, t.TempDir())
	defer src.Close()
	fill(t, src, 1, 300)
	if err := pairUpdate(src, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	snapshot, _ := snapshotBytes(t, src)

	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	fill(t, c, 1, 100)
	if err := pairUpdate(c, 2, 2); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, 8)
	for r := range 3 {
		wg.Go(func() {
			for !stop.Load() {
				if err := checkWholePairState(c, r); err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		})
	}
	// Snapshots are taken and streamed concurrently too.
	wg.Go(func() {
		for !stop.Load() {
			if err := streamSnapshot(c); err != nil {
				errs <- err
				return
			}
		}
	})

	for i := uint64(3); i < 120; i++ {
		if err := pairUpdate(c, i, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Restore(bytes.NewReader(snapshot)); err != nil {
		t.Fatal(err)
	}
	if c.AppliedIndex() != 1000 || c.DatasetCount() != 300 {
		t.Fatalf("after restore: index %d, %d datasets", c.AppliedIndex(), c.DatasetCount())
	}
	for i := uint64(1001); i < 1060; i++ {
		if err := pairUpdate(c, i, i); err != nil {
			t.Fatal(err)
		}
	}
	// Let the readers see the final state: wait for more reads after the
	// last update (or for a reader's error).
	for after, deadline := reads.Load(), time.Now().Add(30*time.Second); reads.Load() < after+10 && len(errs) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("readers stopped reading")
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reads.Load() == 0 {
		t.Fatal("readers never ran")
	}
	if m, _ := c.Member("peer"); m.ApiAddr != "1059" {
		t.Fatalf("member after updates: %v", m)
	}
}

// checkWholePairState is one read by reader r of the catalog in
// TestConcurrentReadersDuringUpdateAndRestoreSeeWholeStates: it fails if
// the read saw part of an update or of a restore.
func checkWholePairState(c *Catalog, r int) error {
	ds, _, err := c.ListDatasets(ListFilter{Tag: "PAIR", PageSize: 50})
	if err != nil {
		return err
	}
	if len(ds) != pairs {
		return fmt.Errorf("reader %d: %d pair datasets", r, len(ds))
	}
	for _, d := range ds {
		if d.Version != ds[0].Version {
			return fmt.Errorf("reader %d: versions %d and %d in one list", r, d.Version, ds[0].Version)
		}
	}
	if n := c.DatasetCount(); n != 100 && n != 300 {
		return fmt.Errorf("reader %d: %d datasets", r, n)
	}
	if _, ok := c.GetDataset(genDataset(0).Id); !ok || len(c.Members()) != 1 {
		return fmt.Errorf("reader %d: dataset or member missing", r)
	}
	return nil
}

// streamSnapshot takes a snapshot of c and streams it to nowhere.
func streamSnapshot(c *Catalog) error {
	snap, err := c.Snapshot()
	if err != nil {
		return err
	}
	_, err = snap.WriteTo(io.Discard)
	snap.Close()
	return err
}
