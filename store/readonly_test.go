package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadOnlyCatalog: a read-only open sees what was written, never
// changes the file, cannot be written through, and is refused while the
// file is open for writing (a running node).
func TestReadOnlyCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	if _, err := OpenCatalog(path+".none", Options{ReadOnly: true}); err == nil {
		t.Fatal("a missing catalog opened read-only")
	}
	c, err := OpenCatalog(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(1, func(tx *Tx) error { return tx.PutDataset(genDataset(1)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCatalog(path, Options{ReadOnly: true}); !errors.Is(err, ErrInUse) {
		t.Fatalf("read-only open of a catalog in use: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	ro, err := OpenCatalog(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ro.GetDataset(genDataset(1).GetId()); !ok || ro.AppliedIndex() != 1 {
		t.Fatalf("read-only catalog: dataset %v, applied %d", ok, ro.AppliedIndex())
	}
	if err := ro.Update(2, func(tx *Tx) error { return tx.PutDataset(genDataset(2)) }); err == nil {
		t.Fatal("wrote through a read-only catalog")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a read-only open changed the file")
	}
}
