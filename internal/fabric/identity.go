package fabric

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxKeyFileSize bounds what LoadKey reads; a marshalled ed25519 key is 68 bytes.
const maxKeyFileSize = 4096

// joinDomain separates join signatures from any other use of the node key.
const joinDomain = "yrdnode-join-v1"

// ErrJoinSignature is returned by VerifyJoin when the signature does not
// verify for the given peer id and token.
var ErrJoinSignature = errors.New("fabric: join signature does not verify")

// LoadOrCreateKey loads the node key at path, or generates a new ed25519 key
// and writes it there if the file does not exist. created reports whether a
// new key was written.
func LoadOrCreateKey(path string) (key crypto.PrivKey, created bool, err error) {
	key, err = LoadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}

	key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("fabric: generate node key: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("fabric: marshal node key: %w", err)
	}
	switch err := writeNewFile(path, raw); {
	case err == nil:
		return key, true, nil
	case errors.Is(err, fs.ErrExist):
		// Another process created it first; use theirs so both agree.
		key, err := LoadKey(path)
		return key, false, err
	default:
		return nil, false, err
	}
}

// LoadKey reads an ed25519 node key written by LoadOrCreateKey. It refuses a
// file that group or others may access: the key is the node's identity.
func LoadKey(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fabric: open node key: %w", err)
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fabric: stat node key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("fabric: node key %s is not a regular file", path)
	}
	// Windows has no POSIX mode bits to check.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("fabric: node key %s has mode %#o; it must not be accessible by group or others (chmod 600 it)",
			path, st.Mode().Perm())
	}

	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("fabric: read node key: %w", err)
	}
	if len(raw) > maxKeyFileSize {
		return nil, fmt.Errorf("fabric: node key %s is too large to be a key", path)
	}
	key, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("fabric: node key %s: %w", path, err)
	}
	if key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("fabric: node key %s is a %s key, want Ed25519", path, key.Type())
	}
	return key, nil
}

// writeNewFile writes data to path with mode 0600 without ever exposing a
// partial file: it writes a temporary file in the same directory, syncs it,
// and links it into place. Linking (not renaming) fails with fs.ErrExist
// instead of silently replacing a key another process just created.
func writeNewFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fabric: create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("fabric: write node key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the link this only drops the temporary name

	// CreateTemp already uses 0600; Chmod makes it explicit regardless of umask.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("fabric: write node key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("fabric: write node key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fabric: write node key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fabric: write node key: %w", err)
	}

	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// Some filesystems cannot hard-link; fall back to an atomic rename.
		if _, statErr := os.Lstat(path); statErr == nil {
			return fs.ErrExist
		}
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("fabric: write node key: %w", err)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes the new directory entry durable; best effort, as not every
// platform can fsync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// JoinSigningBytes returns the exact bytes a join request signs:
//
//	"yrdnode-join-v1" 0x00 token 0x00 id.String()
//
// The prefix keeps a join signature from being valid for any other message
// the node key signs (Noise uses its own prefix).
func JoinSigningBytes(token string, id peer.ID) []byte {
	ids := id.String()
	b := make([]byte, 0, len(joinDomain)+1+len(token)+1+len(ids))
	b = append(b, joinDomain...)
	b = append(b, 0)
	b = append(b, token...)
	b = append(b, 0)
	b = append(b, ids...)
	return b
}

// SignJoin signs JoinSigningBytes(token, id) with key, where id is the peer id
// derived from key. The joining node sends the signature to prove it holds
// the key of the peer id it asks to be admitted under.
func SignJoin(key crypto.PrivKey, token string) ([]byte, error) {
	if key == nil {
		return nil, errors.New("fabric: sign join: nil key")
	}
	if token == "" {
		return nil, errors.New("fabric: sign join: empty token")
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("fabric: sign join: derive peer id: %w", err)
	}
	sig, err := key.Sign(JoinSigningBytes(token, id))
	if err != nil {
		return nil, fmt.Errorf("fabric: sign join: %w", err)
	}
	return sig, nil
}

// VerifyJoin checks that sig is id's signature over JoinSigningBytes(token, id).
// The public key comes from the peer id itself (ed25519 ids embed it), so no
// key needs to be sent alongside. A bad signature yields ErrJoinSignature.
func VerifyJoin(id peer.ID, token string, sig []byte) error {
	if token == "" {
		return errors.New("fabric: verify join: empty token")
	}
	if len(sig) == 0 {
		return errors.New("fabric: verify join: empty signature")
	}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("fabric: verify join: invalid peer id: %w", err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("fabric: verify join: peer id %s does not embed its public key: %w", id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return fmt.Errorf("fabric: verify join: peer id %s has a %s key, want Ed25519", id, pub.Type())
	}
	ok, err := pub.Verify(JoinSigningBytes(token, id), sig)
	if err != nil {
		return fmt.Errorf("fabric: verify join: %w", err)
	}
	if !ok {
		return ErrJoinSignature
	}
	return nil
}
