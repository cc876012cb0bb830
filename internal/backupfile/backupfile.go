// Package backupfile is the format of `yrdnode backup` files: a small JSON
// header (format version, who made it and when, the raft index it holds,
// and the size and sha256 of every section), the sections' bytes, and a
// trailer with the sha256 of everything before it. Open checks all of it
// before a restore reads a byte, so a truncated or altered file is refused
// with an error naming the part that failed. The layout is documented in
// docs/operations.md.
package backupfile

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Magic is the first line of every backup file.
const Magic = "YRDNODE-BACKUP"

// Version is the format version this package writes and reads.
const Version = 1

// Section names of a node backup. Catalog and audit are in every backup;
// the node's own state (credentials, exports, difference) since the node
// key stopped being the only way to keep it: see docs/operations.md.
const (
	SectionCatalog     = "catalog"     // the raft FSM state: a bbolt catalog file
	SectionAudit       = "audit"       // the node's own audit log: a bbolt file
	SectionCredentials = "credentials" // API keys and issued certificates (auth.db)
	SectionExports     = "exports"     // the cross-border export ledger (exports.db)
	SectionDifference  = "difference"  // the memory of released groups (diffcheck.db)
)

// maxHeader bounds the header line, so a file that is not a backup is
// refused without reading it all into memory.
const maxHeader = 1 << 20

// Header describes a backup. It is one JSON line after the magic line.
type Header struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// City and PeerID are the node the backup was taken from; Cities are
	// the cities that were members of its cluster then.
	City        string   `json:"city"`
	PeerID      string   `json:"peer_id"`
	NodeVersion string   `json:"node_version,omitempty"`
	Cities      []string `json:"cities,omitempty"`
	// CatalogIndex is the raft index the catalog section has applied.
	CatalogIndex uint64    `json:"catalog_index"`
	Sections     []Section `json:"sections"`
}

// Section is one part of the file, in the order the parts follow the
// header.
type Section struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Part is a section to write: its name and a file holding its bytes.
type Part struct {
	Name string
	File *os.File
}

// Write writes a backup of h with parts to w. It hashes each part first,
// so the header can carry the checksums, then copies it; h.Sections and
// h.Version are filled in here.
func Write(w io.Writer, h Header, parts []Part) error {
	h.Version = Version
	h.Sections = nil
	for _, p := range parts {
		s, err := hashPart(p)
		if err != nil {
			return err
		}
		h.Sections = append(h.Sections, s)
	}
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	if _, err := fmt.Fprintf(out, "%s\n%s\n", Magic, head); err != nil {
		return err
	}
	for i, p := range parts {
		if _, err := p.File.Seek(0, io.SeekStart); err != nil {
			return err
		}
		n, err := io.Copy(out, p.File)
		if err != nil {
			return fmt.Errorf("backup: write section %s: %w", p.Name, err)
		}
		if n != h.Sections[i].Size {
			return fmt.Errorf("backup: section %s changed while it was written", p.Name)
		}
	}
	_, err = fmt.Fprintf(w, "sha256 %s\n", hex.EncodeToString(sum.Sum(nil)))
	return err
}

func hashPart(p Part) (Section, error) {
	if _, err := p.File.Seek(0, io.SeekStart); err != nil {
		return Section{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, p.File)
	if err != nil {
		return Section{}, fmt.Errorf("backup: read section %s: %w", p.Name, err)
	}
	return Section{Name: p.Name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Backup is an opened backup file whose checksums all matched.
type Backup struct {
	Header Header
	file   *os.File
	offset map[string]int64 // where each section starts
}

// Open reads the whole file at path and checks its format, every section's
// size and sha256, and the trailer's sha256 over the rest. Any mismatch is
// an error naming the file and what failed.
func Open(path string) (*Backup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := check(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func check(f *os.File) (*Backup, error) {
	whole := sha256.New() // everything before the trailer, as consumed
	r := bufio.NewReader(f)
	h, head, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	whole.Write(head)
	b := &Backup{Header: h, file: f, offset: map[string]int64{}}
	pos := int64(len(head))
	for _, s := range h.Sections {
		b.offset[s.Name] = pos
		if err := checkSection(r, whole, s); err != nil {
			return nil, err
		}
		pos += s.Size
	}
	return b, checkTrailer(r, hex.EncodeToString(whole.Sum(nil)))
}

// readHeader reads the magic line and the header, returning the header
// and the bytes of the two lines.
func readHeader(r *bufio.Reader) (Header, []byte, error) {
	var h Header
	magic, err := r.ReadString('\n')
	if err != nil || magic != Magic+"\n" {
		return h, nil, errors.New("not a yrdnode backup (the first line is not " + Magic + ")")
	}
	line, err := readLine(r, maxHeader)
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, nil, fmt.Errorf("header is not valid: %w", err)
	}
	if h.Version != Version {
		return h, nil, fmt.Errorf("format version %d; this yrdnode reads version %d", h.Version, Version)
	}
	seen := map[string]bool{}
	for _, s := range h.Sections {
		if s.Name == "" || seen[s.Name] || s.Size < 0 || len(s.SHA256) != 64 {
			return h, nil, fmt.Errorf("header: section %q is malformed or repeated", s.Name)
		}
		seen[s.Name] = true
	}
	return h, append(append([]byte(magic), line...), '\n'), nil
}

// readLine reads up to and without the next newline, at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, fmt.Errorf("longer than %d bytes", limit)
		}
		if err == nil {
			return line[:len(line)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("truncated: %w", err)
		}
	}
}

func checkSection(r io.Reader, whole io.Writer, s Section) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, whole), io.LimitReader(r, s.Size))
	if err != nil {
		return fmt.Errorf("section %s: %w", s.Name, err)
	}
	if n < s.Size {
		return fmt.Errorf("truncated: section %s has %d of its %d bytes", s.Name, n, s.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("section %s is damaged: its sha256 is %s, the header says %s", s.Name, got, s.SHA256)
	}
	return nil
}

// checkTrailer reads the last line, "sha256 HEX", and compares it with
// want, the hash of everything before it; nothing may follow it.
func checkTrailer(r *bufio.Reader, want string) error {
	line, err := readLine(r, 128)
	if err != nil {
		return fmt.Errorf("truncated: the closing checksum line is missing")
	}
	got, ok := bytes.CutPrefix(line, []byte("sha256 "))
	if !ok {
		return fmt.Errorf("the closing checksum line is malformed")
	}
	if string(got) != want {
		return fmt.Errorf("damaged: the file's sha256 is %s, its closing line says %s", want, got)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("damaged: bytes follow the closing checksum line")
	}
	return nil
}

// Section returns a reader of the named section's bytes, or an error if
// the backup has none of that name.
func (b *Backup) Section(name string) (io.Reader, error) {
	for _, s := range b.Header.Sections {
		if s.Name == name {
			return io.NewSectionReader(b.file, b.offset[name], s.Size), nil
		}
	}
	return nil, fmt.Errorf("the backup has no %s section", name)
}

// Has reports whether the backup has a section of that name.
func (b *Backup) Has(name string) bool {
	_, ok := b.offset[name]
	return ok
}

// Close closes the file.
func (b *Backup) Close() error { return b.file.Close() }
