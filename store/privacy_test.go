package store

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func spent(t *testing.T, c *Catalog, city, org string, year int) float64 {
	t.Helper()
	f, err := c.PrivacySpent(city, org, year, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPrivacySpentIsPerOrganisationAndYear(t *testing.T) {
	c := openAccessCatalog(t)
	if got := spent(t, c, "hangzhou", "hz-lab", 2026); got != 0 {
		t.Fatalf("before any spend: %v", got)
	}
	mustUpdate(t, c, 1, func(tx *Tx) error {
		if err := tx.PutPrivacySpent("hangzhou", "hz-lab", 2026, "", 1.5); err != nil {
			return err
		}
		// The transaction reads its own write.
		if f, err := tx.PrivacySpent("hangzhou", "hz-lab", 2026, ""); err != nil || f != 1.5 {
			t.Errorf("in the same transaction: %v %v", f, err)
		}
		if err := tx.PutPrivacySpent("hangzhou", "hz-lab", 2027, "", 0.25); err != nil {
			return err
		}
		return tx.PutPrivacySpent("hangzhou", "hz-other", 2026, "", 3)
	})
	for _, c2 := range []struct {
		city, org string
		year      int
		want      float64
	}{
		{"hangzhou", "hz-lab", 2026, 1.5},
		{"hangzhou", "hz-lab", 2027, 0.25},
		{"hangzhou", "hz-lab", 2025, 0},
		{"hangzhou", "hz-other", 2026, 3},
		{"nanjing", "hz-lab", 2026, 0},
	} {
		if got := spent(t, c, c2.city, c2.org, c2.year); got != c2.want {
			t.Errorf("%s/%s %d: %v, want %v", c2.city, c2.org, c2.year, got, c2.want)
		}
	}
	// A failed Update writes nothing.
	boom := errors.New("boom")
	err := c.Update(2, func(tx *Tx) error {
		if err := tx.PutPrivacySpent("hangzhou", "hz-lab", 2026, "", 9); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || spent(t, c, "hangzhou", "hz-lab", 2026) != 1.5 {
		t.Fatalf("rolled-back update: %v, total %v", err, spent(t, c, "hangzhou", "hz-lab", 2026))
	}
}

// TestPrivacySpentInListsOneYear: every record of the year comes back,
// with its family and the organisation-wide totals of older spends, and
// no record of another year.
func TestPrivacySpentInListsOneYear(t *testing.T) {
	c := openAccessCatalog(t)
	if got, err := c.PrivacySpentIn(2026); err != nil || len(got) != 0 {
		t.Fatalf("empty ledger: %v, %v", got, err)
	}
	want := []PrivacySpending{
		{City: "hangzhou", Org: "hz-lab", Year: 2026, Family: "", Spent: 1.5},
		{City: "hangzhou", Org: "hz-lab", Year: 2026, Family: "yrd.elderly-population.v1", Spent: 2},
		{City: "nanjing", Org: "nj-lab", Year: 2026, Family: "yrd.hospital-visits.v1", Spent: 0.5},
	}
	mustUpdate(t, c, 1, func(tx *Tx) error {
		for _, w := range want {
			if err := tx.PutPrivacySpent(w.City, w.Org, w.Year, w.Family, w.Spent); err != nil {
				return err
			}
		}
		if err := tx.PutPrivacySpent("hangzhou", "hz-lab", 2025, "yrd.elderly-population.v1", 9); err != nil {
			return err
		}
		return tx.PutPrivacySpent("nanjing", "nj-lab", 2027, "", 4)
	})
	got, err := c.PrivacySpentIn(2026)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b PrivacySpending) int {
		return cmp.Or(cmp.Compare(a.City, b.City), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Family, b.Family))
	})
	if !slices.Equal(got, want) {
		t.Fatalf("PrivacySpentIn(2026) = %+v, want %+v", got, want)
	}
	if got, err := c.PrivacySpentIn(2024); err != nil || len(got) != 0 {
		t.Fatalf("a year without spends: %v, %v", got, err)
	}
	c.Close()
	if _, err := c.PrivacySpentIn(2026); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

func TestPrivacyKeysAreUnambiguous(t *testing.T) {
	c := openAccessCatalog(t)
	mustUpdate(t, c, 1, func(tx *Tx) error {
		if err := tx.PutPrivacySpent("ab", "c", 2026, "", 1); err != nil {
			return err
		}
		return tx.PutPrivacySpent("a", "bc", 2026, "", 2)
	})
	if spent(t, c, "ab", "c", 2026) != 1 || spent(t, c, "a", "bc", 2026) != 2 || spent(t, c, "a\x01b", "c", 2026) != 0 {
		t.Fatal("keys of different (city, org) pairs collide")
	}
	for _, k := range []struct {
		city, org string
		year      int
		family    string
	}{{"a", "b", 0, ""}, {"上海", "org\x00x", 2026, ""}, {strings.Repeat("c", maxPrivacyKeyPart), "o", math.MaxInt32, ""},
		{"a", "b", 2026, "yrd.elderly-population.v1"}, {"a", "b", 0, strings.Repeat("f", maxPrivacyKeyPart)}} {
		key, err := privacyKey(k.city, k.org, k.year, k.family)
		if err != nil {
			t.Fatal(err)
		}
		city, org, year, family, err := parsePrivacyKey(key)
		if err != nil || city != k.city || org != k.org || year != k.year || family != k.family {
			t.Errorf("parse(key(%q, %q, %d, %q)) = %q, %q, %d, %q, %v", k.city, k.org, k.year, k.family, city, org, year, family, err)
		}
		if _, _, _, _, err := parsePrivacyKey(append(key, 0)); err == nil {
			t.Errorf("key with a trailing byte parsed")
		}
	}
}

func TestPrivacySpentRejectsBadInput(t *testing.T) {
	c := openAccessCatalog(t)
	for name, put := range map[string]func(tx *Tx) error{
		"no city":       func(tx *Tx) error { return tx.PutPrivacySpent("", "o", 2026, "", 1) },
		"no org":        func(tx *Tx) error { return tx.PutPrivacySpent("c", "", 2026, "", 1) },
		"huge org":      func(tx *Tx) error { return tx.PutPrivacySpent("c", strings.Repeat("o", 40000), 2026, "", 1) },
		"negative year": func(tx *Tx) error { return tx.PutPrivacySpent("c", "o", -1, "", 1) },
		"NaN":           func(tx *Tx) error { return tx.PutPrivacySpent("c", "o", 2026, "", math.NaN()) },
		"infinite":      func(tx *Tx) error { return tx.PutPrivacySpent("c", "o", 2026, "", math.Inf(1)) },
		"negative":      func(tx *Tx) error { return tx.PutPrivacySpent("c", "o", 2026, "", -0.5) },
	} {
		if err := c.Update(1, put); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := c.PrivacySpent("", "o", 2026, ""); err == nil {
		t.Error("read without a city accepted")
	}
	if c.AppliedIndex() != 0 {
		t.Fatalf("a refused put moved the applied index to %d", c.AppliedIndex())
	}
}

func TestPrivacySpentSurvivesSnapshotAndRestore(t *testing.T) {
	src := openTestCatalog(t, t.TempDir())
	defer src.Close()
	fill(t, src, 10, 20)
	mustUpdate(t, src, 11, func(tx *Tx) error {
		if err := tx.PutPrivacySpent("hangzhou", "hz-lab", 2026, "", 2.75); err != nil {
			return err
		}
		return tx.PutPrivacySpent("nanjing", "nj-health", 2025, "", 0.1+0.2)
	})
	snap, index := snapshotBytes(t, src)
	// Spends after the snapshot are not in it.
	mustUpdate(t, src, 12, func(tx *Tx) error { return tx.PutPrivacySpent("hangzhou", "hz-lab", 2026, "", 9) })

	dir := t.TempDir()
	dst := openTestCatalog(t, dir)
	if err := dst.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if dst.AppliedIndex() != index {
		t.Fatalf("restored index %d, want %d", dst.AppliedIndex(), index)
	}
	if got := spent(t, dst, "hangzhou", "hz-lab", 2026); got != 2.75 {
		t.Errorf("hz-lab after restore: %v, want 2.75", got)
	}
	if got := spent(t, dst, "nanjing", "nj-health", 2025); got != 0.1+0.2 {
		t.Errorf("nj-health after restore: %v, want exactly %v", got, 0.1+0.2)
	}
	// The restored ledger takes writes and survives a reopen.
	mustUpdate(t, dst, 12, func(tx *Tx) error { return tx.PutPrivacySpent("hangzhou", "hz-lab", 2026, "", 3) })
	dst.Close()
	dst = openTestCatalog(t, dir)
	defer dst.Close()
	if got := spent(t, dst, "hangzhou", "hz-lab", 2026); got != 3 {
		t.Errorf("after reopen: %v, want 3", got)
	}
}

// dropLedger rewrites the catalog file at path as a node built before the
// ledger existed would have written it.
func dropLedger(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketPrivacySpent) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A snapshot taken by a node built before the ledger has no ledger bucket.
// raft restores the latest snapshot on every start, so refusing it would
// keep an upgraded node from starting.
func TestRestoreAndOpenFileWithoutLedger(t *testing.T) {
	oldDir := t.TempDir()
	old := openTestCatalog(t, oldDir)
	fill(t, old, 30, 10)
	old.Close()
	oldPath := filepath.Join(oldDir, "catalog.db")
	dropLedger(t, oldPath)
	snap, err := os.ReadFile(oldPath)
	if err != nil {
		t.Fatal(err)
	}

	c := openTestCatalog(t, t.TempDir())
	defer c.Close()
	if err := c.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("restore of a snapshot without the ledger: %v", err)
	}
	if c.AppliedIndex() != 30 || c.DatasetCount() != 10 || spent(t, c, "hangzhou", "hz-lab", 2026) != 0 {
		t.Fatalf("after restore: index %d, %d datasets", c.AppliedIndex(), c.DatasetCount())
	}
	mustUpdate(t, c, 31, func(tx *Tx) error { return tx.PutPrivacySpent("hangzhou", "hz-lab", 2026, "", 1) })
	if spent(t, c, "hangzhou", "hz-lab", 2026) != 1 {
		t.Fatal("spend after restoring an old snapshot lost")
	}

	// An old catalog file opened in place gains the bucket too.
	reopened, err := OpenCatalog(oldPath, Options{NoSync: true})
	if err != nil {
		t.Fatalf("open of a file without the ledger: %v", err)
	}
	defer reopened.Close()
	mustUpdate(t, reopened, 31, func(tx *Tx) error { return tx.PutPrivacySpent("wuxi", "wx-lab", 2026, "", 0.5) })
	if spent(t, reopened, "wuxi", "wx-lab", 2026) != 0.5 {
		t.Fatal("spend in a reopened old file lost")
	}
}

func TestRestoreRejectsMalformedLedger(t *testing.T) {
	for name, put := range map[string]func(b *bolt.Bucket) error{
		"short value": func(b *bolt.Bucket) error {
			k, _ := privacyKey("hangzhou", "hz-lab", 2026, "")
			return b.Put(k, []byte{1, 2, 3})
		},
		"NaN total": func(b *bolt.Bucket) error {
			k, _ := privacyKey("hangzhou", "hz-lab", 2026, "")
			return b.Put(k, u64bytes(math.Float64bits(math.NaN())))
		},
		"negative total": func(b *bolt.Bucket) error {
			k, _ := privacyKey("hangzhou", "hz-lab", 2026, "")
			return b.Put(k, u64bytes(math.Float64bits(-1)))
		},
		"malformed key": func(b *bolt.Bucket) error { return b.Put([]byte("hangzhou\x00hz-lab"), u64bytes(0)) },
	} {
		t.Run(name, func(t *testing.T) {
			srcDir := t.TempDir()
			src := openTestCatalog(t, srcDir)
			fill(t, src, 50, 3)
			src.Close()
			path := filepath.Join(srcDir, "catalog.db")
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucketPrivacySpent)) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			snap, _ := os.ReadFile(path)

			c := openTestCatalog(t, t.TempDir())
			defer c.Close()
			fill(t, c, 5, 2)
			if err := c.Restore(bytes.NewReader(snap)); err == nil {
				t.Fatal("Restore accepted a malformed ledger")
			}
			if c.AppliedIndex() != 5 || c.DatasetCount() != 2 {
				t.Fatalf("state changed: index %d, %d datasets", c.AppliedIndex(), c.DatasetCount())
			}
		})
	}
}
