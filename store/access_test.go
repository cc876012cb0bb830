package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func openAccessCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGrantsByDatasetAndOrg(t *testing.T) {
	c := openAccessCatalog(t)
	var want []*yrdv1.Grant
	err := c.Update(1, func(tx *Tx) error {
		for i := 0; i < 6; i++ {
			g := &yrdv1.Grant{Id: fmt.Sprintf("g%d", i), DatasetId: []string{"a.b", "a.bc"}[i%2],
				RequesterOrg: []string{"org-x", "org-y", "org-x"}[i%3], State: yrdv1.GrantState_GRANT_STATE_REQUESTED}
			if err := tx.PutGrant(g); err != nil {
				return err
			}
			want = append(want, g)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ListGrants(GrantFilter{DatasetID: "a.b"})
	if err != nil || len(got) != 3 {
		t.Fatalf("grants of a.b: %v %v (a prefix must not match a.bc)", got, err)
	}
	got, _ = c.ListGrants(GrantFilter{DatasetID: "a.b", RequesterOrg: "org-x"})
	if len(got) != 2 {
		t.Fatalf("grants of a.b for org-x: %v", got)
	}
	got, _ = c.ListGrants(GrantFilter{})
	if len(got) != 6 {
		t.Fatalf("all grants: %d", len(got))
	}
	g, err := c.GetGrant("g4")
	if err != nil || !proto.Equal(g, want[4]) {
		t.Fatalf("GetGrant: %v %v", g, err)
	}
	if _, err := c.GetGrant("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown grant: %v", err)
	}
	// A state change is found by the state filter.
	c.Update(2, func(tx *Tx) error {
		g := proto.Clone(want[0]).(*yrdv1.Grant)
		g.State = yrdv1.GrantState_GRANT_STATE_APPROVED
		return tx.PutGrant(g)
	})
	got, _ = c.ListGrants(GrantFilter{State: yrdv1.GrantState_GRANT_STATE_APPROVED})
	if len(got) != 1 || got[0].GetId() != "g0" {
		t.Fatalf("approved grants: %v", got)
	}
}

func TestPolicyAndAnchors(t *testing.T) {
	c := openAccessCatalog(t)
	if _, err := c.Policy(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("policy before any: %v", err)
	}
	err := c.Update(1, func(tx *Tx) error {
		if err := tx.PutPolicy(&yrdv1.PolicyParams{Version: 3}); err != nil {
			return err
		}
		for _, node := range []string{"n1", "n2"} {
			for _, seq := range []uint64{5, 300, 70000} {
				if err := tx.PutAnchor(&yrdv1.AuditAnchor{Node: node, Seq: seq}); err != nil {
					return err
				}
			}
		}
		last, err := tx.LatestAnchor("n1")
		if err != nil || last.GetSeq() != 70000 {
			return fmt.Errorf("latest anchor of n1: %v %v", last, err)
		}
		if _, err := tx.LatestAnchor("n0"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("latest anchor of unknown node: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy()
	if err != nil || p.GetVersion() != 3 {
		t.Fatalf("policy: %v %v", p, err)
	}
	a, err := c.Anchors("n2")
	if err != nil || len(a) != 3 || a[0].GetSeq() != 5 || a[2].GetSeq() != 70000 {
		t.Fatalf("anchors of n2: %v %v", a, err)
	}
}
