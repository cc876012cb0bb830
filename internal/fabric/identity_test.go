package fabric

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestKeyCreateLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "node.key")

	k1, created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !created {
		t.Fatal("first LoadOrCreateKey did not report created")
	}
	if k1.Type() != crypto.Ed25519 {
		t.Fatalf("key type %s, want Ed25519", k1.Type())
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %#o, want 0600", st.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".node.key.tmp*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}

	k2, created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if created {
		t.Fatal("second LoadOrCreateKey reported created")
	}
	if !k1.Equals(k2) {
		t.Fatal("reloaded key differs")
	}
	k3, err := LoadKey(path)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	if !k1.Equals(k3) {
		t.Fatal("LoadKey returned a different key")
	}
}

func TestLoadKeyRejectsGroupOrOtherPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX permissions")
	}
	path := filepath.Join(t.TempDir(), "node.key")
	k, _, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(path); err == nil {
			t.Errorf("LoadKey accepted a key file with mode %#o", mode)
		}
		if _, _, err := LoadOrCreateKey(path); err == nil {
			t.Errorf("LoadOrCreateKey accepted a key file with mode %#o", mode)
		}
	}
	// LoadOrCreateKey must not have replaced the key while refusing it.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equals(k2) {
		t.Fatal("key file was replaced")
	}
}

func TestLoadKeyRejectsNonEd25519Key(t *testing.T) {
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err == nil {
		t.Fatal("LoadKey accepted a secp256k1 key")
	}
}

func TestJoinSigningBytesLayout(t *testing.T) {
	id, err := peer.IDFromPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("yrdnode-join-v1\x00tok\x00" + id.String())
	if got := JoinSigningBytes("tok", id); !bytes.Equal(got, want) {
		t.Fatalf("JoinSigningBytes = %q, want %q", got, want)
	}
}

func TestSignVerifyJoin(t *testing.T) {
	key, other := newKey(t), newKey(t)
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	const token = "join-token-123"

	sig, err := SignJoin(key, token)
	if err != nil {
		t.Fatalf("SignJoin: %v", err)
	}
	if err := VerifyJoin(id, token, sig); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}

	otherSig, err := SignJoin(other, token)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyJoin(id, token, otherSig); !errors.Is(err, ErrJoinSignature) {
		t.Errorf("signature by another key: err = %v, want ErrJoinSignature", err)
	}
	if err := VerifyJoin(id, "another-token", sig); !errors.Is(err, ErrJoinSignature) {
		t.Errorf("signature over another token: err = %v, want ErrJoinSignature", err)
	}
	tampered := bytes.Clone(sig)
	tampered[0] ^= 1
	if err := VerifyJoin(id, token, tampered); !errors.Is(err, ErrJoinSignature) {
		t.Errorf("tampered signature: err = %v, want ErrJoinSignature", err)
	}
	if err := VerifyJoin(id, token, nil); err == nil {
		t.Error("empty signature accepted")
	}
	if _, err := SignJoin(key, ""); err == nil {
		t.Error("SignJoin accepted an empty token")
	}
	if err := VerifyJoin(id, "", sig); err == nil {
		t.Error("VerifyJoin accepted an empty token")
	}
}
