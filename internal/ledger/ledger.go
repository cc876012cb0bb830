// Package ledger counts, per exporting organisation and calendar year, the
// distinct individuals whose data a node has sent out of the mainland, so
// that the node can refuse a cross-border flow past the yearly thresholds
// (100,000 individuals; 10,000 for sensitive personal information).
//
// It is node-local: the owner node is the exporter and the only one that
// sees the person keys. Keys are stored as keyed hashes, so the ledger file
// does not itself list who was exported.
package ledger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ErrLimit is returned by Record when the flow would pass the limit.
var ErrLimit = errors.New("ledger: limit would be exceeded")

// Ledger is a bbolt file of exported individuals. Safe for concurrent use.
type Ledger struct {
	db  *bolt.DB
	key []byte
}

// Open opens or creates the ledger at path; key keys the person hashes.
func Open(path string, key []byte) (*Ledger, error) {
	if len(key) < 16 {
		return nil, errors.New("ledger: key shorter than 16 bytes")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	return &Ledger{db: db, key: append([]byte(nil), key...)}, nil
}

// Close closes the file.
func (l *Ledger) Close() error { return l.db.Close() }

// Kind separates the two yearly counts.
type Kind uint8

const (
	// Personal counts individuals whose (non-sensitive) data went out.
	Personal Kind = iota
	// Sensitive counts individuals whose sensitive personal data went out.
	Sensitive
)

func bucketName(org string, year int, k Kind) []byte {
	return []byte(org + "\x00" + strconv.Itoa(year) + "\x00" + strconv.Itoa(int(k)))
}

var countKey = []byte{0} // hashes are 32 bytes, so a 1-byte key never collides

// parseBucketName is bucketName's inverse. It splits from the right, since
// the year and kind hold no NUL whatever the organisation's name holds.
func parseBucketName(name []byte) (org string, year int, k Kind, ok bool) {
	s := string(name)
	i := strings.LastIndexByte(s, 0)
	if i < 0 {
		return "", 0, 0, false
	}
	kind, err := strconv.ParseUint(s[i+1:], 10, 8)
	if err != nil {
		return "", 0, 0, false
	}
	s = s[:i]
	j := strings.LastIndexByte(s, 0)
	if j < 0 {
		return "", 0, 0, false
	}
	if year, err = strconv.Atoi(s[j+1:]); err != nil {
		return "", 0, 0, false
	}
	return s[:j], year, Kind(kind), true
}

// YearCount is one organisation's count of one kind in a year.
type YearCount struct {
	Org   string
	Kind  Kind
	Count uint64
}

// CountsIn returns every count recorded for year, whatever the
// organisation and kind, in bucket order (by organisation, then kind).
// An organisation appears once a flow of its has been recorded.
func (l *Ledger) CountsIn(year int) ([]YearCount, error) {
	var out []YearCount
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			org, y, k, ok := parseBucketName(name)
			if !ok || y != year {
				return nil
			}
			if v := b.Get(countKey); len(v) == 8 {
				out = append(out, YearCount{Org: org, Kind: k, Count: binary.BigEndian.Uint64(v)})
			}
			return nil
		})
	})
	return out, err
}

// Count returns the distinct individuals recorded for org in year.
func (l *Ledger) Count(org string, year int, k Kind) (uint64, error) {
	var n uint64
	err := l.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketName(org, year, k)); b != nil {
			if v := b.Get(countKey); len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return n, err
}

// Record adds the person keys of one flow to org's count for year, in one
// transaction. If the count would pass limit it records nothing and
// returns ErrLimit with the count before and the individuals the flow
// would add. It returns the new total otherwise.
func (l *Ledger) Record(org string, year int, k Kind, persons []string, limit uint64) (total, added uint64, err error) {
	err = l.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName(org, year, k))
		if err != nil {
			return err
		}
		if v := b.Get(countKey); len(v) == 8 {
			total = binary.BigEndian.Uint64(v)
		}
		fresh := make(map[[32]byte]bool, len(persons))
		for _, p := range persons {
			h := l.hash(p)
			if fresh[h] || b.Get(h[:]) != nil {
				continue
			}
			fresh[h] = true
		}
		added = uint64(len(fresh))
		if total+added > limit {
			return ErrLimit
		}
		for h := range fresh {
			if err := b.Put(h[:], nil); err != nil {
				return err
			}
		}
		total += added
		return b.Put(countKey, binary.BigEndian.AppendUint64(nil, total))
	})
	return total, added, err
}

// Preview returns org's count for year and how many of persons it does not
// hold yet, without recording anything.
func (l *Ledger) Preview(org string, year int, k Kind, persons []string) (total, fresh uint64, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(org, year, k))
		if b != nil {
			if v := b.Get(countKey); len(v) == 8 {
				total = binary.BigEndian.Uint64(v)
			}
		}
		seen := make(map[[32]byte]bool, len(persons))
		for _, p := range persons {
			h := l.hash(p)
			if seen[h] || (b != nil && b.Get(h[:]) != nil) {
				continue
			}
			seen[h] = true
		}
		fresh = uint64(len(seen))
		return nil
	})
	return total, fresh, err
}

func (l *Ledger) hash(person string) [32]byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(person))
	var h [32]byte
	m.Sum(h[:0])
	return h
}

// Backup writes a consistent copy of the file to w while the node runs on
// (`yrdnode backup`).
func (l *Ledger) Backup(w io.Writer) (n int64, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
