package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func auditIdentity(t *testing.T) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := priv.Raw()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.PrivateKey(raw), id
}

// TestAuditVerifyFileOffline: a copy of a node's audit log verifies with
// only the writer's peer id, and fails under another node's id.
func TestAuditVerifyFileOffline(t *testing.T) {
	key, id := auditIdentity(t)
	_, other := auditIdentity(t)
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := audit.Open(path, key, id.String(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := l.Append(context.Background(), &yrdv1.AuditRecord{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, DatasetId: "shanghai.x.y", Detail: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "audit", "verify", "--file", path, "--peer", id.String())
	if r.code != 0 || !strings.Contains(r.stdout, "ok: 5 records") {
		t.Fatalf("verify with the writer's id: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, "audit", "verify", "--file", path, "--peer", other.String())
	if r.code == 0 || !strings.Contains(r.stderr, "fails verification at record") {
		t.Fatalf("verify with another node's id: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = run(t, nil, "audit", "verify", "--file", path); r.code != 2 {
		t.Fatalf("--file without --peer: exit %d, want 2 (usage)", r.code)
	}
}
