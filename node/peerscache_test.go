package node

import (
	"os"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// A data dir from before the rename keeps its member cache: the node moves
// peers.json to members.cache.json on start, once.
func TestMemberCacheMovesFromItsOldName(t *testing.T) {
	cfg := Config{DataDir: t.TempDir()}
	want := []*yrdv1.Member{{PeerId: "p1", City: "shanghai"}}
	if err := savePeers(cfg.legacyPeersPath(), want); err != nil {
		t.Fatal(err)
	}
	got, err := loadMemberCache(cfg)
	if err != nil || !sameMembers(got, want) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := os.Stat(cfg.legacyPeersPath()); !os.IsNotExist(err) {
		t.Fatalf("peers.json is still there: %v", err)
	}
	if _, err := os.Stat(cfg.peersPath()); err != nil {
		t.Fatal(err)
	}
	// An operator's file later put under the old name is not read.
	os.WriteFile(cfg.legacyPeersPath(), []byte(`[{"id": "x", "voter": true}]`), 0o600)
	if got, err := loadMemberCache(cfg); err != nil || !sameMembers(got, want) {
		t.Fatalf("after a new peers.json: %v, %v", got, err)
	}
}
