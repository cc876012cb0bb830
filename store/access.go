package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Grants, the policy parameters and audit anchors are read far less often
// than datasets are listed, so they are read from bbolt in a read
// transaction (microseconds) rather than mirrored in memory.
var (
	bucketGrants = []byte("grants")
	// dataset id \x00 requester org \x00 grant id → nothing: the grants a
	// policy decision needs, found by prefix.
	bucketGrantsByDataset = []byte("grants_by_dataset")
	// node \x00 8-byte seq → AuditAnchor
	bucketAnchors = []byte("audit_anchors")

	keyPolicy = []byte("policy")
)

func grantIndexKey(g *yrdv1.Grant) []byte {
	return []byte(g.GetDatasetId() + "\x00" + g.GetRequesterOrg() + "\x00" + g.GetId())
}

// Grant returns the grant with id, or ErrNotFound.
func (t *Tx) Grant(id string) (*yrdv1.Grant, error) {
	g := new(yrdv1.Grant)
	if err := t.get(bucketGrants, []byte(id), g); err != nil {
		return nil, err
	}
	return g, nil
}

// PutGrant stores g. A grant's dataset and requester never change.
func (t *Tx) PutGrant(g *yrdv1.Grant) error {
	if g.GetId() == "" {
		return errors.New("store: grant without id")
	}
	if err := t.put(bucketGrants, []byte(g.GetId()), g); err != nil {
		return err
	}
	b, err := t.bucket(bucketGrantsByDataset)
	if err != nil {
		return err
	}
	return b.Put(grantIndexKey(g), nil)
}

// Policy returns the stored policy parameters, or ErrNotFound before any
// were set.
func (t *Tx) Policy() (*yrdv1.PolicyParams, error) {
	p := new(yrdv1.PolicyParams)
	if err := t.get(bucketMeta, keyPolicy, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PutPolicy stores the policy parameters.
func (t *Tx) PutPolicy(p *yrdv1.PolicyParams) error { return t.put(bucketMeta, keyPolicy, p) }

func anchorKey(node string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(node+"\x00"), seq)
}

// LatestAnchor returns node's most recent anchor, or ErrNotFound.
func (t *Tx) LatestAnchor(node string) (*yrdv1.AuditAnchor, error) {
	b, err := t.bucket(bucketAnchors)
	if err != nil {
		return nil, err
	}
	return lastAnchor(b, node)
}

func lastAnchor(b *bolt.Bucket, node string) (*yrdv1.AuditAnchor, error) {
	prefix := []byte(node + "\x00")
	c := b.Cursor()
	// Seek past the node's last key, then step back.
	k, _ := c.Seek(append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, ErrNotFound
	}
	a := new(yrdv1.AuditAnchor)
	if err := proto.Unmarshal(b.Get(k), a); err != nil {
		return nil, fmt.Errorf("store: decode anchor: %w", err)
	}
	return a, nil
}

// PutAnchor records an audit anchor.
func (t *Tx) PutAnchor(a *yrdv1.AuditAnchor) error {
	return t.put(bucketAnchors, anchorKey(a.GetNode(), a.GetSeq()), a)
}

// view runs fn in a read transaction on the current file.
func (c *Catalog) view(fn func(tx *bolt.Tx) error) error {
	c.dbmu.RLock()
	defer c.dbmu.RUnlock()
	if c.closed.Load() {
		return ErrClosed
	}
	return c.db.View(fn)
}

// GetGrant returns the grant with id.
func (c *Catalog) GetGrant(id string) (*yrdv1.Grant, error) {
	var g *yrdv1.Grant
	err := c.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketGrants).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		g = new(yrdv1.Grant)
		return proto.Unmarshal(v, g)
	})
	return g, err
}

// JoinToken returns the join token record with the given hash, or
// ErrNotFound: why a token was refused, for the audit trail.
func (c *Catalog) JoinToken(hash []byte) (*yrdv1.JoinToken, error) {
	var jt *yrdv1.JoinToken
	err := c.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketJoinTokens).Get(hash)
		if v == nil {
			return ErrNotFound
		}
		jt = new(yrdv1.JoinToken)
		return proto.Unmarshal(v, jt)
	})
	return jt, err
}

// GrantFilter selects grants; empty fields match anything.
type GrantFilter struct {
	DatasetID    string
	RequesterOrg string
	State        yrdv1.GrantState
}

// ListGrants returns the grants matching f, by dataset then requester then id.
func (c *Catalog) ListGrants(f GrantFilter) ([]*yrdv1.Grant, error) {
	var out []*yrdv1.Grant
	err := c.view(func(tx *bolt.Tx) error {
		grants := tx.Bucket(bucketGrants)
		keep := func(id []byte) error {
			g := new(yrdv1.Grant)
			if err := proto.Unmarshal(grants.Get(id), g); err != nil {
				return fmt.Errorf("store: decode grant %s: %w", id, err)
			}
			if (f.RequesterOrg == "" || g.GetRequesterOrg() == f.RequesterOrg) && (f.State == 0 || g.GetState() == f.State) {
				out = append(out, g)
			}
			return nil
		}
		if f.DatasetID == "" {
			return tx.Bucket(bucketGrantsByDataset).ForEach(func(k, _ []byte) error {
				return keep(k[bytes.LastIndexByte(k, 0)+1:])
			})
		}
		prefix := []byte(f.DatasetID + "\x00")
		if f.RequesterOrg != "" {
			prefix = append(prefix, f.RequesterOrg+"\x00"...)
		}
		cur := tx.Bucket(bucketGrantsByDataset).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			if err := keep(k[bytes.LastIndexByte(k, 0)+1:]); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Policy returns the stored policy parameters, or ErrNotFound.
func (c *Catalog) Policy() (*yrdv1.PolicyParams, error) {
	var p *yrdv1.PolicyParams
	err := c.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyPolicy)
		if v == nil {
			return ErrNotFound
		}
		p = new(yrdv1.PolicyParams)
		return proto.Unmarshal(v, p)
	})
	return p, err
}

// LatestAnchor returns node's most recent audit anchor, or ErrNotFound.
func (c *Catalog) LatestAnchor(node string) (*yrdv1.AuditAnchor, error) {
	var a *yrdv1.AuditAnchor
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAnchors)
		if b == nil {
			return ErrNotFound
		}
		var err error
		a, err = lastAnchor(b, node)
		return err
	})
	return a, err
}

// Anchors returns node's audit anchors, oldest first.
func (c *Catalog) Anchors(node string) ([]*yrdv1.AuditAnchor, error) {
	var out []*yrdv1.AuditAnchor
	err := c.view(func(tx *bolt.Tx) error {
		prefix := []byte(node + "\x00")
		cur := tx.Bucket(bucketAnchors).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			a := new(yrdv1.AuditAnchor)
			if err := proto.Unmarshal(v, a); err != nil {
				return fmt.Errorf("store: decode anchor: %w", err)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}
