package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// joinTokenRetention is how long an expired join token is kept, so that a
// late redeem attempt gets "expired" rather than "unknown token".
const joinTokenRetention = 24 * time.Hour

// marshalOpts makes encoding deterministic so every replica writes the same
// bytes for the same command.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Tx is the typed view of one Update's bbolt write transaction. Reads see
// the transaction's own earlier writes. A Tx is not safe for concurrent use
// and is invalid once fn returns.
type Tx struct {
	btx  *bolt.Tx
	done bool

	// Changes to publish to the in-memory index after commit. A nil member
	// marks a deletion.
	datasets map[string]*yrdv1.Dataset
	members  map[string]*yrdv1.Member
}

func (t *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	if t.done {
		return nil, ErrClosed
	}
	return t.btx.Bucket(name), nil
}

// get unmarshals the record at key into m, or returns ErrNotFound.
func (t *Tx) get(bucket []byte, key []byte, m proto.Message) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	v := b.Get(key)
	if v == nil {
		return ErrNotFound
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return fmt.Errorf("store: decode %s %q: %w", bucket, key, err)
	}
	return nil
}

func (t *Tx) put(bucket []byte, key []byte, m proto.Message) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	v, err := marshalOpts.Marshal(m)
	if err != nil {
		return fmt.Errorf("store: encode %s %q: %w", bucket, key, err)
	}
	return b.Put(key, v)
}

// Dataset returns the stored dataset, or ErrNotFound. The result is a fresh
// copy the caller may modify.
func (t *Tx) Dataset(id string) (*yrdv1.Dataset, error) {
	d := new(yrdv1.Dataset)
	if err := t.get(bucketDatasets, []byte(id), d); err != nil {
		return nil, err
	}
	return d, nil
}

// PutDataset inserts or replaces the dataset with d's id. The store keeps
// its own copy, so the caller may keep using d.
func (t *Tx) PutDataset(d *yrdv1.Dataset) error {
	if d.GetId() == "" {
		return errors.New("store: dataset id is required")
	}
	// Clone so the index never shares a proto that the caller could mutate.
	return t.putDataset(proto.Clone(d).(*yrdv1.Dataset))
}

// PutDatasetOwned is PutDataset without the copy: the store keeps d itself
// and shares it with readers, so neither the caller nor anyone it hands d to
// may modify d, or any message it references, afterwards. The raft FSM uses
// it for the datasets it decodes from a command.
func (t *Tx) PutDatasetOwned(d *yrdv1.Dataset) error {
	if d.GetId() == "" {
		return errors.New("store: dataset id is required")
	}
	return t.putDataset(d)
}

func (t *Tx) putDataset(d *yrdv1.Dataset) error {
	if err := t.put(bucketDatasets, []byte(d.GetId()), d); err != nil {
		return err
	}
	if t.datasets == nil {
		t.datasets = make(map[string]*yrdv1.Dataset)
	}
	t.datasets[d.GetId()] = d
	return nil
}

// Member returns the registry entry for peerID, or ErrNotFound.
func (t *Tx) Member(peerID string) (*yrdv1.Member, error) {
	m := new(yrdv1.Member)
	if err := t.get(bucketMembers, []byte(peerID), m); err != nil {
		return nil, err
	}
	return m, nil
}

// PutMember inserts or replaces the registry entry for m's peer id.
func (t *Tx) PutMember(m *yrdv1.Member) error {
	if m.GetPeerId() == "" {
		return errors.New("store: member peer id is required")
	}
	if err := t.put(bucketMembers, []byte(m.GetPeerId()), m); err != nil {
		return err
	}
	t.noteMember(m.GetPeerId(), proto.Clone(m).(*yrdv1.Member))
	return nil
}

// DeleteMember removes peerID from the registry; deleting a missing member
// is not an error, so replaying a removal is harmless.
func (t *Tx) DeleteMember(peerID string) error {
	b, err := t.bucket(bucketMembers)
	if err != nil {
		return err
	}
	if err := b.Delete([]byte(peerID)); err != nil {
		return err
	}
	t.noteMember(peerID, nil)
	return nil
}

func (t *Tx) noteMember(peerID string, m *yrdv1.Member) {
	if t.members == nil {
		t.members = make(map[string]*yrdv1.Member)
	}
	t.members[peerID] = m
}

// Members returns the registry ordered by peer id.
func (t *Tx) Members() ([]*yrdv1.Member, error) {
	b, err := t.bucket(bucketMembers)
	if err != nil {
		return nil, err
	}
	var out []*yrdv1.Member
	err = b.ForEach(func(k, v []byte) error {
		m := new(yrdv1.Member)
		if err := proto.Unmarshal(v, m); err != nil {
			return fmt.Errorf("store: decode member %q: %w", k, err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// JoinToken returns the token record with the given hash, or ErrNotFound.
func (t *Tx) JoinToken(hash []byte) (*yrdv1.JoinToken, error) {
	jt := new(yrdv1.JoinToken)
	if err := t.get(bucketJoinTokens, hash, jt); err != nil {
		return nil, err
	}
	return jt, nil
}

// PutJoinToken inserts or replaces the token record keyed by its hash.
func (t *Tx) PutJoinToken(jt *yrdv1.JoinToken) error {
	if len(jt.GetTokenHash()) == 0 {
		return errors.New("store: join token hash is required")
	}
	return t.put(bucketJoinTokens, jt.GetTokenHash(), jt)
}

// DeleteExpiredJoinTokens removes tokens that expired more than 24h before
// now. now must come from the command being applied, not the local clock,
// so every replica deletes the same tokens.
func (t *Tx) DeleteExpiredJoinTokens(now time.Time) error {
	b, err := t.bucket(bucketJoinTokens)
	if err != nil {
		return err
	}
	cutoff := now.Add(-joinTokenRetention)
	var doomed [][]byte
	err = b.ForEach(func(k, v []byte) error {
		jt := new(yrdv1.JoinToken)
		if err := proto.Unmarshal(v, jt); err != nil {
			return fmt.Errorf("store: decode join token %x: %w", k, err)
		}
		if jt.GetExpiresAt() != nil && jt.GetExpiresAt().AsTime().Before(cutoff) {
			// Copy: k points into the page and deleting during ForEach is
			// not allowed.
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// The methods below read the in-memory index without a bbolt transaction
// and are safe for concurrent use with Update and Restore. The returned
// protos are shared with the index and other readers: callers must treat
// them as read-only (proto.Clone before modifying). The store itself never
// mutates a proto once indexed; an update replaces it.

// GetDataset returns the dataset with id, including a retired one.
func (c *Catalog) GetDataset(id string) (*yrdv1.Dataset, bool) {
	it, ok := c.state.Load().byID.Get(idItem{id: id})
	if !ok {
		return nil, false
	}
	return it.e.ds, true
}

// DatasetCount is the number of datasets, retired ones included.
func (c *Catalog) DatasetCount() int { return c.state.Load().byID.Len() }

// Members returns the member registry ordered by peer id. The slice is the
// caller's; the protos are shared and read-only.
func (c *Catalog) Members() []*yrdv1.Member {
	return append([]*yrdv1.Member(nil), c.state.Load().members.sorted...)
}

// Member returns the registry entry for peerID.
func (c *Catalog) Member(peerID string) (*yrdv1.Member, bool) {
	m, ok := c.state.Load().members.byID[peerID]
	return m, ok
}
