package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func TestSeedForNewClusterKeepsTheCatalogAndDropsTheMembers(t *testing.T) {
	c := openTestCatalog(t, t.TempDir())
	err := c.Update(17, func(tx *Tx) error {
		if err := tx.PutDataset(genDataset(1)); err != nil {
			return err
		}
		if err := tx.PutPolicy(&yrdv1.PolicyParams{Version: 3, PrivacyBudget: 2.5}); err != nil {
			return err
		}
		if err := tx.PutJoinToken(&yrdv1.JoinToken{TokenHash: []byte("h"), City: "hangzhou"}); err != nil {
			return err
		}
		return tx.PutMember(&yrdv1.Member{PeerId: "old-peer", City: "shanghai"})
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.db")
	f, _ := os.Create(path)
	if _, err := snap.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	snap.Close()

	index, err := SeedForNewCluster(path)
	if err != nil || index != 17 {
		t.Fatalf("index %d, err %v", index, err)
	}
	seeded, err := OpenCatalog(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer seeded.Close()
	if _, ok := seeded.GetDataset(genDataset(1).GetId()); !ok {
		t.Fatal("dataset lost")
	}
	if p, err := seeded.Policy(); err != nil || p.GetVersion() != 3 {
		t.Fatalf("policy %v, %v", p, err)
	}
	if m := seeded.Members(); len(m) != 0 {
		t.Fatalf("members kept: %v", m)
	}
	if jt, err := seeded.JoinToken([]byte("h")); err == nil {
		t.Fatalf("join token kept: %v", jt)
	}
	if seeded.AppliedIndex() != 17 {
		t.Fatalf("applied index %d", seeded.AppliedIndex())
	}
}

func TestSeedForNewClusterRefusesWhatIsNotACatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(path, []byte("not a database at all, just some text of some length"), 0o600)
	if _, err := SeedForNewCluster(path); err == nil || !strings.Contains(err.Error(), "catalog in the backup") {
		t.Fatalf("err %v", err)
	}
}
