package store

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestUpdateVisibleOnlyAfterCommitAndReadsOwnWrites(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	d := genDataset(1)
	mustUpdate(t, c, 7, func(tx *Tx) error {
		if err := tx.PutDataset(d); err != nil {
			return err
		}
		if err := tx.PutMember(member("peer-a", "shanghai")); err != nil {
			return err
		}
		// The transaction sees its own writes; concurrent readers do not yet.
		if got, err := tx.Dataset(d.Id); err != nil || !proto.Equal(got, d) {
			t.Errorf("tx.Dataset = %v, %v", got, err)
		}
		if _, err := tx.Member("peer-a"); err != nil {
			t.Errorf("tx.Member: %v", err)
		}
		if _, ok := c.GetDataset(d.Id); ok {
			t.Error("dataset visible before commit")
		}
		if c.AppliedIndex() != 0 {
			t.Error("applied index moved before commit")
		}
		return nil
	})
	if c.AppliedIndex() != 7 {
		t.Fatalf("applied index = %d, want 7", c.AppliedIndex())
	}
	got, ok := c.GetDataset(d.Id)
	if !ok || !proto.Equal(got, d) {
		t.Fatalf("GetDataset = %v, %v", got, ok)
	}
	// The store kept its own copy: mutating the caller's proto changes nothing.
	d.Title = "changed by caller"
	if got, _ := c.GetDataset(d.Id); got.Title == d.Title {
		t.Fatal("index shares the caller's proto")
	}
	if m, ok := c.Member("peer-a"); !ok || m.City != "shanghai" {
		t.Fatalf("Member = %v, %v", m, ok)
	}
	if c.DatasetCount() != 1 {
		t.Fatalf("DatasetCount = %d", c.DatasetCount())
	}
}

func TestUpdateErrorWritesNothingAndKeepsIndex(t *testing.T) {
	dir := t.TempDir()
	c := openTestCatalog(t, dir)
	fill(t, c, 3, 5)
	before, _, _ := c.ListDatasets(ListFilter{IncludeRetired: true})
	boom := errors.New("boom")
	err := c.Update(4, func(tx *Tx) error {
		changed := genDataset(0)
		changed.Title = "half-applied"
		for _, err := range []error{
			tx.PutDataset(changed),
			tx.PutDataset(genDataset(99)),
			tx.PutMember(member("peer-x", "wuxi")),
			tx.PutJoinToken(&yrdv1.JoinToken{TokenHash: []byte("h")}),
		} {
			if err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want boom", err)
	}
	check := func(c *Catalog) {
		t.Helper()
		if c.AppliedIndex() != 3 {
			t.Fatalf("applied index = %d, want 3", c.AppliedIndex())
		}
		after, _, _ := c.ListDatasets(ListFilter{IncludeRetired: true})
		sameDatasets(t, after, before)
		if _, ok := c.Member("peer-x"); ok || len(c.Members()) != 0 {
			t.Fatal("member from failed update visible")
		}
		// Peek inside a transaction that is rolled back, so the check
		// itself moves nothing.
		errPeek := errors.New("peek")
		err := c.Update(5, func(tx *Tx) error {
			if got, err := tx.Dataset(genDataset(0).Id); err != nil || got.Title == "half-applied" {
				t.Errorf("dataset 0 changed: %v, %v", got, err)
			}
			if _, err := tx.Dataset(genDataset(99).Id); !errors.Is(err, ErrNotFound) {
				t.Errorf("dataset 99 stored: %v", err)
			}
			if _, err := tx.JoinToken([]byte("h")); !errors.Is(err, ErrNotFound) {
				t.Errorf("token stored: %v", err)
			}
			return errPeek
		})
		if !errors.Is(err, errPeek) {
			t.Fatal(err)
		}
	}
	check(c)
	c.Close()
	c = openTestCatalog(t, dir)
	defer c.Close()
	check(c)
}

func TestUpdateAfterCloseAndTxAfterReturnFail(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	var leaked *Tx
	mustUpdate(t, c, 1, func(tx *Tx) error { leaked = tx; return nil })
	if err := leaked.PutDataset(genDataset(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Tx used after Update: %v, want ErrClosed", err)
	}
	c.Close()
	if err := c.Update(2, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
	if _, _, err := c.ListDatasets(ListFilter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListDatasets after Close: %v", err)
	}
	if _, err := c.Snapshot(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
}

func TestReopenPreservesDatasetsMembersTokensIndexAndRebuildsIndex(t *testing.T) {
	dir := t.TempDir()
	c := openTestCatalog(t, dir)
	all := fill(t, c, 10, 300)
	exp := time.Unix(1_760_000_000, 0)
	mustUpdate(t, c, 11, func(tx *Tx) error {
		for _, m := range []*yrdv1.Member{member("peer-b", "nanjing"), member("peer-a", "shanghai"), member("peer-c", "hefei")} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return tx.PutJoinToken(&yrdv1.JoinToken{TokenHash: []byte{1, 2, 3}, City: "wuxi", ExpiresAt: timestamppb.New(exp)})
	})
	mustUpdate(t, c, 12, func(tx *Tx) error { return tx.DeleteMember("peer-c") })
	wantList := listAll(t, c, ListFilter{OwnerCity: "Shanghai", Level: yrdv1.ClassificationLevel_LEVEL_GENERAL})
	if len(wantList) == 0 {
		t.Fatal("test data has no general shanghai datasets")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = openTestCatalog(t, dir)
	defer c.Close()
	if c.AppliedIndex() != 12 || c.DatasetCount() != len(all) {
		t.Fatalf("after reopen: index %d, %d datasets", c.AppliedIndex(), c.DatasetCount())
	}
	for _, d := range all {
		if got, ok := c.GetDataset(d.Id); !ok || !proto.Equal(got, d) {
			t.Fatalf("dataset %s after reopen: %v", d.Id, got)
		}
	}
	sameDatasets(t, listAll(t, c, ListFilter{OwnerCity: "Shanghai", Level: yrdv1.ClassificationLevel_LEVEL_GENERAL}), wantList)
	ms := c.Members()
	if len(ms) != 2 || ms[0].PeerId != "peer-a" || ms[1].PeerId != "peer-b" {
		t.Fatalf("Members after reopen = %v", ms)
	}
	mustUpdate(t, c, 13, func(tx *Tx) error {
		jt, err := tx.JoinToken([]byte{1, 2, 3})
		if err != nil || jt.City != "wuxi" || !jt.ExpiresAt.AsTime().Equal(exp) {
			t.Errorf("JoinToken after reopen = %v, %v", jt, err)
		}
		txm, err := tx.Members()
		if err != nil || len(txm) != 2 || txm[0].PeerId != "peer-a" {
			t.Errorf("tx.Members = %v, %v", txm, err)
		}
		if _, err := tx.Member("peer-c"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted member: %v", err)
		}
		return nil
	})
}

func TestMembersOrderedByPeerIDAndDeleteMember(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	mustUpdate(t, c, 1, func(tx *Tx) error {
		for _, id := range []string{"12D3z", "12D3a", "12D3m"} {
			if err := tx.PutMember(member(id, "city-"+id)); err != nil {
				return err
			}
		}
		if err := tx.DeleteMember("12D3m"); err != nil {
			return err
		}
		return tx.DeleteMember("never-existed")
	})
	ms := c.Members()
	if len(ms) != 2 || ms[0].PeerId != "12D3a" || ms[1].PeerId != "12D3z" {
		t.Fatalf("Members = %v", ms)
	}
	if _, ok := c.Member("12D3m"); ok {
		t.Fatal("deleted member visible")
	}
}

func TestDeleteExpiredJoinTokensRemovesOnlyThoseExpiredOver24h(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	now := time.Unix(1_760_000_000, 0)
	tokens := map[string]time.Duration{"old": -25 * time.Hour, "recent": -23 * time.Hour, "live": time.Hour}
	mustUpdate(t, c, 1, func(tx *Tx) error {
		for name, d := range tokens {
			if err := tx.PutJoinToken(&yrdv1.JoinToken{TokenHash: []byte(name), ExpiresAt: timestamppb.New(now.Add(d))}); err != nil {
				return err
			}
		}
		return tx.DeleteExpiredJoinTokens(now)
	})
	mustUpdate(t, c, 2, func(tx *Tx) error {
		for name := range tokens {
			_, err := tx.JoinToken([]byte(name))
			if gone := errors.Is(err, ErrNotFound); gone != (name == "old") {
				t.Errorf("token %s: err %v", name, err)
			}
		}
		return nil
	})
}

func TestOpenRejectsFileLockedByAnotherHandle(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the open timeout")
	}
	dir := t.TempDir()
	c := openTestCatalog(t, dir)
	defer c.Close()
	if _, err := OpenCatalog(filepath.Join(dir, "catalog.db"), Options{}); err == nil {
		t.Fatal("second open of a locked catalog succeeded")
	}
}

// The store must stay free of transport and node code; only these imports
// (and the standard library) are allowed in non-test files.
func TestNonTestFilesImportOnlyAllowedPackages(t *testing.T) {
	allowed := []string{
		"go.etcd.io/bbolt", "github.com/hashicorp/raft", "github.com/google/btree",
		"google.golang.org/protobuf/",
	}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			ok := !strings.Contains(strings.Split(path, "/")[0], ".") ||
				path == "github.com/yrd-exchange/yrdnode/proto/yrd/v1" ||
				path == "github.com/yrd-exchange/yrdnode/store/wal" || // the raft log, same rules
				path == "github.com/yrd-exchange/yrdnode/internal/fsutil" // standard library only
			for _, a := range allowed {
				ok = ok || path == strings.TrimSuffix(a, "/") || strings.HasPrefix(path, a)
			}
			if !ok {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
