package backupfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func part(t testing.TB, name, content string) Part {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return Part{Name: name, File: f}
}

// written returns the bytes of a backup with two sections.
func written(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := Header{Created: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), City: "shanghai", PeerID: "12D3KooW",
		Cities: []string{"shanghai", "hangzhou"}, CatalogIndex: 42}
	parts := []Part{part(t, SectionCatalog, "catalog bytes"), part(t, SectionAudit, "audit bytes, longer")}
	if err := Write(&buf, h, parts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func save(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "b.yrdbak")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	data := written(t)
	if !strings.HasPrefix(string(data), Magic+"\n{") {
		t.Fatalf("file starts %q", data[:40])
	}
	b, err := Open(save(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := b.Header
	if h.Version != Version || h.City != "shanghai" || h.CatalogIndex != 42 || len(h.Sections) != 2 || h.Sections[0].Size != 13 {
		t.Fatalf("header %+v", h)
	}
	for name, want := range map[string]string{SectionCatalog: "catalog bytes", SectionAudit: "audit bytes, longer"} {
		r, err := b.Section(name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != want {
			t.Fatalf("section %s = %q", name, got)
		}
	}
	if _, err := b.Section("keys"); err == nil || !strings.Contains(err.Error(), "no keys section") || b.Has("keys") || !b.Has(SectionAudit) {
		t.Fatalf("missing section: %v", err)
	}
}

// FuzzOpen: whatever the file holds, Open refuses it or returns a backup
// whose every section reads back at its declared size; it never panics.
func FuzzOpen(f *testing.F) {
	f.Add(written(f))
	f.Add([]byte(Magic + "\n{}\nsha256 00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Open(save(t, data))
		if err != nil {
			return
		}
		defer b.Close()
		for _, s := range b.Header.Sections {
			r, err := b.Section(s.Name)
			if err != nil {
				t.Fatalf("section %s listed but not readable: %v", s.Name, err)
			}
			if n, _ := io.Copy(io.Discard, r); n != s.Size {
				t.Fatalf("section %s reads %d bytes, header says %d", s.Name, n, s.Size)
			}
		}
	})
}

func TestDamageIsRefusedNamingWhatFailed(t *testing.T) {
	data := written(t)
	catalogAt := bytes.Index(data, []byte("catalog bytes"))
	cityAt := bytes.Index(data, []byte("shanghai"))
	flip := func(at int) []byte {
		d := bytes.Clone(data)
		d[at] ^= 0x20
		return d
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a yrdnode backup"},
		{"other file", []byte("SQLite format 3\x00"), "not a yrdnode backup"},
		{"cut in the header", data[:len(Magic)+10], "header: truncated"},
		{"cut in the catalog", data[:catalogAt+5], "truncated: section catalog has 5 of its 13 bytes"},
		{"cut before the checksum line", data[:bytes.LastIndex(data, []byte("sha256 "))], "closing checksum line is missing"},
		{"a byte of the catalog changed", flip(catalogAt + 2), "section catalog is damaged"},
		{"the header changed", flip(cityAt), "damaged: the file's sha256 is"},
		{"bytes after the end", append(bytes.Clone(data), 'x'), "bytes follow the closing checksum line"},
		{"newer format", bytes.Replace(data, []byte(`"version":1`), []byte(`"version":2`), 1), "format version 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := save(t, tc.data)
			b, err := Open(p)
			if err == nil {
				b.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file and %q", err, tc.want)
			}
		})
	}
}
