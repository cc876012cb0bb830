package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// The privacy budget ledger: per requesting organisation (city and org) and
// calendar year, the total epsilon its noisy queries have spent. Like grants
// it is read from bbolt in a read transaction rather than mirrored in
// memory, so Restore needs nothing beyond swapping the file.
//
// Key: uvarint len(city) | city | uvarint len(org) | org | 4-byte big-endian
// year, then, for a budget kept per dataset family, uvarint len(family) |
// family. The length prefixes make the key unambiguous whatever bytes city,
// org and family hold, and keep one organisation's years together in year
// order. Keys without a family are the organisation-wide totals of spends
// recorded before families existed.
// Value: the total as 8-byte big-endian IEEE 754 bits, finite and ≥ 0.
var bucketPrivacySpent = []byte("privacy_spent")

// maxPrivacyKeyPart bounds city and org in a ledger key, far below bbolt's
// 32 KiB key limit, so that a put can never fail on the key's size.
const maxPrivacyKeyPart = 1024

func privacyKey(city, org string, year int, family string) ([]byte, error) {
	switch {
	case city == "" || org == "":
		return nil, errors.New("store: privacy budget: city and org are required")
	case len(city) > maxPrivacyKeyPart || len(org) > maxPrivacyKeyPart || len(family) > maxPrivacyKeyPart:
		return nil, fmt.Errorf("store: privacy budget: city, org and family are at most %d bytes", maxPrivacyKeyPart)
	case year < 0 || year > math.MaxInt32:
		return nil, fmt.Errorf("store: privacy budget: year %d out of range", year)
	}
	k := make([]byte, 0, 3*binary.MaxVarintLen64+len(city)+len(org)+len(family)+4)
	k = binary.AppendUvarint(k, uint64(len(city)))
	k = append(k, city...)
	k = binary.AppendUvarint(k, uint64(len(org)))
	k = append(k, org...)
	k = binary.BigEndian.AppendUint32(k, uint32(year))
	if family != "" {
		k = binary.AppendUvarint(k, uint64(len(family)))
		k = append(k, family...)
	}
	return k, nil
}

// parsePrivacyKey is privacyKey's inverse; it rejects any key privacyKey
// would not have produced.
func parsePrivacyKey(k []byte) (city, org string, year int, family string, err error) {
	part := func() (string, bool) {
		n, w := binary.Uvarint(k)
		if w <= 0 || n == 0 || n > maxPrivacyKeyPart || n > uint64(len(k)-w) {
			return "", false
		}
		s := string(k[w : w+int(n)])
		k = k[w+int(n):]
		return s, true
	}
	city, ok1 := part()
	org, ok2 := part()
	if !ok1 || !ok2 || len(k) < 4 || binary.BigEndian.Uint32(k) > math.MaxInt32 {
		return "", "", 0, "", errors.New("malformed key")
	}
	year = int(binary.BigEndian.Uint32(k))
	if k = k[4:]; len(k) > 0 {
		var ok bool
		if family, ok = part(); !ok || len(k) != 0 {
			return "", "", 0, "", errors.New("malformed key")
		}
	}
	return city, org, year, family, nil
}

func decodeSpent(v []byte) (float64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("holds %d bytes, want 8", len(v))
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(v))
	if !validSpent(f) {
		return 0, fmt.Errorf("holds %v, want a finite total ≥ 0", f)
	}
	return f, nil
}

func validSpent(f float64) bool { return f >= 0 && !math.IsInf(f, 1) } // NaN fails f >= 0

// readSpent reads the total at key from b, which may be nil (a file written
// before the ledger existed).
func readSpent(b *bolt.Bucket, key []byte) (float64, error) {
	if b == nil {
		return 0, nil
	}
	v := b.Get(key)
	if v == nil {
		return 0, nil
	}
	f, err := decodeSpent(v)
	if err != nil {
		return 0, fmt.Errorf("store: decode %s %q: %w", bucketPrivacySpent, key, err)
	}
	return f, nil
}

// PrivacySpent returns the total epsilon org of city has spent in year on
// family ("" for the organisation-wide total of older spends), as seen by
// this transaction: 0 if it has spent none.
func (t *Tx) PrivacySpent(city, org string, year int, family string) (float64, error) {
	key, err := privacyKey(city, org, year, family)
	if err != nil {
		return 0, err
	}
	b, err := t.bucket(bucketPrivacySpent)
	if err != nil {
		return 0, err
	}
	return readSpent(b, key)
}

// PutPrivacySpent records total as what org of city has spent in year on
// family. The caller adds up; the store only refuses a total that is
// negative, NaN or infinite.
func (t *Tx) PutPrivacySpent(city, org string, year int, family string, total float64) error {
	key, err := privacyKey(city, org, year, family)
	if err != nil {
		return err
	}
	if !validSpent(total) {
		return fmt.Errorf("store: privacy budget: total %v is not a finite number ≥ 0", total)
	}
	b, err := t.bucket(bucketPrivacySpent)
	if err != nil {
		return err
	}
	return b.Put(key, binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(total)))
}

// PrivacySpent returns the total epsilon org of city has spent in year on
// family (0 if none), as of the last committed Update. It reads bbolt in a
// read transaction, so it is safe for concurrent use with Update and
// Restore.
func (c *Catalog) PrivacySpent(city, org string, year int, family string) (float64, error) {
	key, err := privacyKey(city, org, year, family)
	if err != nil {
		return 0, err
	}
	var f float64
	err = c.view(func(tx *bolt.Tx) error {
		var rerr error
		f, rerr = readSpent(tx.Bucket(bucketPrivacySpent), key)
		return rerr
	})
	return f, err
}

// PrivacySpending is one record of the privacy budget ledger: what Org of
// City has spent in Year on Family ("" for the organisation-wide total of
// older spends).
type PrivacySpending struct {
	City, Org string
	Year      int
	Family    string
	Spent     float64
}

// PrivacySpentIn returns every privacy budget record of year, as of the
// last committed Update, in key order. The key leads with city and org, not
// the year, so it reads the whole ledger: one record per organisation,
// family and year, which stays small.
func (c *Catalog) PrivacySpentIn(year int) ([]PrivacySpending, error) {
	var out []PrivacySpending
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrivacySpent)
		if b == nil {
			return nil // a file from before the ledger
		}
		return b.ForEach(func(k, v []byte) error {
			city, org, y, family, err := parsePrivacyKey(k)
			if err != nil {
				return fmt.Errorf("store: %s %x: %w", bucketPrivacySpent, k, err)
			}
			if y != year {
				return nil
			}
			f, err := decodeSpent(v)
			if err != nil {
				return fmt.Errorf("store: %s %x: %w", bucketPrivacySpent, k, err)
			}
			out = append(out, PrivacySpending{City: city, Org: org, Year: y, Family: family, Spent: f})
			return nil
		})
	})
	return out, err
}

// checkPrivacySpent reads every ledger record of a restored file and
// rejects malformed ones. A missing bucket (a file from before the ledger)
// is fine.
func checkPrivacySpent(tx *bolt.Tx) error {
	b := tx.Bucket(bucketPrivacySpent)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if _, _, _, _, err := parsePrivacyKey(k); err != nil {
			return fmt.Errorf("%s %x: %w", bucketPrivacySpent, k, err)
		}
		if _, err := decodeSpent(v); err != nil {
			return fmt.Errorf("%s %x: %w", bucketPrivacySpent, k, err)
		}
		return nil
	})
}
