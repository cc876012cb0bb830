package wal_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/yrd-exchange/yrdnode/store/wal"
)

// mountTiny mounts a tmpfs of size bytes on a new directory and unmounts it
// when the test ends. It fails the test, loudly, if it cannot: the test
// needs root (or CAP_SYS_ADMIN) to show a real ENOSPC.
func mountTiny(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs on %s (needs root or CAP_SYS_ADMIN; uid %d): %v", size, dir, os.Getuid(), err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// A real full disk (a 1 MiB tmpfs): appends go on until the disk is full;
// the append that hits ENOSPC is not acknowledged, the Log stops, and once
// space is freed a reopen recovers every acknowledged entry and appends again.
func TestRealDiskFullOnTmpfs(t *testing.T) {
	root := mountTiny(t, "1m")
	// A filler the operator deletes later, so there is room to go on.
	filler := filepath.Join(root, "filler")
	if err := os.WriteFile(filler, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "wal")
	w := open(t, dir, wal.Options{SegmentSize: 128 << 10})
	var acked uint64
	var err error
	for acked < 100_000 {
		if err = w.StoreLogs(entries(acked+1, acked+16)); err != nil {
			break
		}
		acked += 16
	}
	if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after %d entries StoreLogs = %v, want ErrFailed wrapping ENOSPC", acked, err)
	}
	if acked == 0 {
		t.Fatal("the disk was full before the first append; the test proves nothing")
	}
	t.Logf("disk full after %d acknowledged entries: %v", acked, err)
	checkRefuses(t, w, syscall.ENOSPC)
	w.Close()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	checkReopen(t, dir, acked, acked+16)
}
