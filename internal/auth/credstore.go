package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Errors. ErrUnauthenticated covers every reason a credential is refused,
// so a caller cannot tell an unknown key from a revoked one.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrNotFound        = errors.New("not found")
	ErrInvalid         = errors.New("invalid")
)

var (
	bucketKeys  = []byte("api_keys")
	bucketCerts = []byte("certificates")
)

const (
	tokenPrefix    = "yrdk_"
	defaultCertTTL = 90 * 24 * time.Hour
	maxCertTTL     = 397 * 24 * time.Hour
)

// Store keeps a node's credentials in a bbolt file and a verified copy in
// memory, so every request is checked without touching disk and a
// revocation takes effect on the very next one.
type Store struct {
	db    *bolt.DB
	ca    *CA
	mu    sync.RWMutex
	keys  map[string]*yrdv1.APIKey
	certs map[string]*yrdv1.Certificate
}

// OpenStore opens (or creates) the credential store at path for the CA's city.
func OpenStore(path string, ca *CA) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("credential store: %w", err)
	}
	s := &Store{db: db, ca: ca, keys: map[string]*yrdv1.APIKey{}, certs: map[string]*yrdv1.Certificate{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketCerts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
			key := new(yrdv1.APIKey)
			if err := proto.Unmarshal(v, key); err != nil {
				return fmt.Errorf("api key %s: %w", k, err)
			}
			s.keys[key.GetId()] = key
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			c := new(yrdv1.Certificate)
			if err := proto.Unmarshal(v, c); err != nil {
				return fmt.Errorf("certificate %s: %w", k, err)
			}
			s.certs[c.GetSerial()] = c
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// CA is the city CA the store issues certificates from.
func (s *Store) CA() *CA { return s.ca }

func (s *Store) put(bucket []byte, key string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), data) })
}

// CreateKey makes an API key for p and returns its record and the token,
// which is shown once and never stored.
func (s *Store) CreateKey(p *yrdv1.Principal, createdBy string) (*yrdv1.APIKey, string, error) {
	if err := ValidatePrincipal(p); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id, secret := make([]byte, 8), make([]byte, 32)
	rand.Read(id)
	rand.Read(secret)
	sum := sha256.Sum256(secret)
	key := &yrdv1.APIKey{Id: hex.EncodeToString(id), Principal: proto.Clone(p).(*yrdv1.Principal),
		CreatedAt: timestamppb.Now(), CreatedBy: createdBy, SecretHash: sum[:]}
	if err := s.put(bucketKeys, key.GetId(), key); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	s.keys[key.GetId()] = key
	s.mu.Unlock()
	return redacted(key), tokenPrefix + key.GetId() + "_" + base64.RawURLEncoding.EncodeToString(secret), nil
}

func redacted(k *yrdv1.APIKey) *yrdv1.APIKey {
	c := proto.Clone(k).(*yrdv1.APIKey)
	c.SecretHash = nil
	return c
}

// VerifyKey returns the principal of a valid, unrevoked API key token; a
// refusal is an *AuthError.
func (s *Store) VerifyKey(token string) (*yrdv1.APIKey, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	id, secretB64, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return nil, refuse(RefusedBadKey, nil, "not an API key (want %s<id>_<secret>)", tokenPrefix)
	}
	secret, err := base64.RawURLEncoding.DecodeString(secretB64)
	if err != nil {
		return nil, refuse(RefusedBadKey, nil, "malformed API key")
	}
	s.mu.RLock()
	key := s.keys[id]
	s.mu.RUnlock()
	sum := sha256.Sum256(secret)
	// One message for both, so a caller cannot probe which keys exist; the
	// reason (revoked only with the right secret) is for the audit trail.
	if key == nil || subtle.ConstantTimeCompare(sum[:], key.GetSecretHash()) != 1 {
		return nil, refuse(RefusedBadKey, nil, "API key unknown or revoked")
	}
	if key.GetRevokedAt() != nil {
		return nil, refuse(RefusedRevokedKey, key.GetPrincipal(), "API key unknown or revoked")
	}
	return key, nil
}

// RevokeKey revokes a key at once.
func (s *Store) RevokeKey(id string) (*yrdv1.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.keys[id]
	if key == nil {
		return nil, fmt.Errorf("%w: API key %q", ErrNotFound, id)
	}
	if key.GetRevokedAt() == nil {
		key = proto.Clone(key).(*yrdv1.APIKey)
		key.RevokedAt = timestamppb.Now()
		if err := s.put(bucketKeys, id, key); err != nil {
			return nil, err
		}
		s.keys[id] = key
	}
	return redacted(key), nil
}

// Keys lists every key, without secret hashes, oldest first.
func (s *Store) Keys() []*yrdv1.APIKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*yrdv1.APIKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, redacted(k))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetCreatedAt().AsTime().Before(out[j].GetCreatedAt().AsTime()) })
	return out
}

// IssueCertificate signs a client certificate for p over pubDER (PKIX).
func (s *Store) IssueCertificate(p *yrdv1.Principal, pubDER []byte, ttl time.Duration, issuedBy string) (*yrdv1.Certificate, error) {
	if err := ValidatePrincipal(p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if ttl == 0 {
		ttl = defaultCertTTL
	}
	if ttl < time.Minute || ttl > maxCertTTL {
		return nil, fmt.Errorf("%w: ttl: %v is outside [1m, %v]", ErrInvalid, ttl, maxCertTTL)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return nil, fmt.Errorf("%w: public_key: %v", ErrInvalid, err)
	}
	cert, err := s.ca.issueClient(pub.(crypto.PublicKey), p, ttl, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	rec := &yrdv1.Certificate{Serial: serialHex(cert), Principal: proto.Clone(p).(*yrdv1.Principal),
		NotBefore: timestamppb.New(cert.NotBefore), NotAfter: timestamppb.New(cert.NotAfter), IssuedBy: issuedBy,
		Pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))}
	if err := s.put(bucketCerts, rec.GetSerial(), rec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.certs[rec.GetSerial()] = rec
	s.mu.Unlock()
	return rec, nil
}

// VerifyCertificate returns the record of a certificate the TLS layer has
// already verified against the CA, refusing one that is revoked or that
// this node has no record of.
func (s *Store) VerifyCertificate(c *x509.Certificate) (*yrdv1.Certificate, error) {
	s.mu.RLock()
	rec := s.certs[serialHex(c)]
	s.mu.RUnlock()
	if rec == nil {
		return nil, refuse(RefusedBadCertificate, nil, "certificate %s unknown or revoked", serialHex(c))
	}
	if rec.GetRevokedAt() != nil {
		return nil, refuse(RefusedRevokedCertificate, rec.GetPrincipal(), "certificate %s unknown or revoked", serialHex(c))
	}
	return rec, nil
}

// RevokeCertificate revokes a certificate at once.
func (s *Store) RevokeCertificate(serial string) (*yrdv1.Certificate, error) {
	serial = strings.ToLower(strings.TrimPrefix(serial, "0x"))
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.certs[serial]
	if rec == nil {
		return nil, fmt.Errorf("%w: certificate %q", ErrNotFound, serial)
	}
	if rec.GetRevokedAt() == nil {
		rec = proto.Clone(rec).(*yrdv1.Certificate)
		rec.RevokedAt = timestamppb.Now()
		if err := s.put(bucketCerts, serial, rec); err != nil {
			return nil, err
		}
		s.certs[serial] = rec
	}
	return rec, nil
}

// Certificates lists every issued certificate, oldest first.
func (s *Store) Certificates() []*yrdv1.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*yrdv1.Certificate, 0, len(s.certs))
	for _, c := range s.certs {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetNotBefore().AsTime().Before(out[j].GetNotBefore().AsTime()) })
	return out
}

// Backup writes a consistent copy of the file to w while the node runs on
// (`yrdnode backup`).
func (s *Store) Backup(w io.Writer) (n int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
