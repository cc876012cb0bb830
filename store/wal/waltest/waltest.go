// Package waltest provides a wal.FS that injects disk faults into a real
// Log on real files, for tests of what the Log, and the node above it, do
// when the disk fails: writes that fail or fall short, an fdatasync that
// fails, a full disk. It counts syncs, so a test can check that a file
// whose sync failed is never synced again.
package waltest

import (
	"fmt"
	"io/fs"
	"sync"
	"syscall"

	"github.com/yrd-exchange/yrdnode/store/wal"
)

// FaultFS passes everything to wal.OS until a fault is armed. It is safe
// for concurrent use; the zero value is not, use New.
type FaultFS struct {
	mu        sync.Mutex
	writeKeep func(n int) int // bytes a faulty write really writes
	writeErr  error           // what a faulty write returns
	writeArm  bool
	syncErr   error
	createErr error

	syncs       map[string]int  // Sync calls per file
	failedSync  map[string]bool // files whose Sync failed
	syncAfter   []string        // Sync calls on a file whose Sync had failed
	injected    chan struct{}   // closed at the first injected fault
	injectOnce  sync.Once
	injectedErr error
}

var _ wal.FS = (*FaultFS)(nil)

// New returns a FaultFS with no fault armed.
func New() *FaultFS {
	return &FaultFS{syncs: map[string]int{}, failedSync: map[string]bool{}, injected: make(chan struct{})}
}

// FailWrites makes every later segment write write only keep(len) bytes
// (clamped to 0..len) and return err; err nil with keep(len) < len is a
// short write without an error. Truncating a file fails with err (or
// EIO) too while armed: the disk takes no changes.
func (f *FaultFS) FailWrites(keep func(n int) int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeKeep, f.writeErr, f.writeArm = keep, err, true
}

// FailSyncs makes every later segment Sync (fdatasync) fail with err
// without syncing.
func (f *FaultFS) FailSyncs(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncErr = err
}

// FailCreates makes every later segment creation fail with err (ENOSPC
// for a directory or inode table that is full).
func (f *FaultFS) FailCreates(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createErr = err
}

// Heal disarms every fault; the counters stay.
func (f *FaultFS) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeKeep, f.writeErr, f.writeArm, f.syncErr, f.createErr = nil, nil, false, nil, nil
}

// Injected is closed when the first fault has been injected.
func (f *FaultFS) Injected() <-chan struct{} { return f.injected }

// InjectedErr is the first fault injected, nil before.
func (f *FaultFS) InjectedErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injectedErr
}

// Syncs is how many times Sync was called on path.
func (f *FaultFS) Syncs(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs[path]
}

// SyncsAfterFailure lists the Sync calls (by file) made on a file whose
// Sync had already failed once: there must be none.
func (f *FaultFS) SyncsAfterFailure() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.syncAfter...)
}

// inject records err as injected; call with mu held.
func (f *FaultFS) inject(err error) error {
	f.injectOnce.Do(func() {
		f.injectedErr = err
		close(f.injected)
	})
	return err
}

// OpenFile opens or creates a segment through wal.OS.
func (f *FaultFS) OpenFile(path string, create bool) (wal.File, error) {
	f.mu.Lock()
	err := f.createErr
	if create && err != nil {
		err = f.inject(&fs.PathError{Op: "open", Path: path, Err: err})
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	file, err := wal.OS.OpenFile(path, create)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: path}, nil
}

func (f *FaultFS) ReadDir(dir string) ([]fs.DirEntry, error) { return wal.OS.ReadDir(dir) }
func (f *FaultFS) ReadFile(path string) ([]byte, error)      { return wal.OS.ReadFile(path) }
func (f *FaultFS) Remove(path string) error                  { return wal.OS.Remove(path) }
func (f *FaultFS) SyncDir(dir string) error                  { return wal.OS.SyncDir(dir) }
func (f *FaultFS) WriteFileAtomic(path string, data []byte) error {
	return wal.OS.WriteFileAtomic(path, data)
}

type faultFile struct {
	wal.File
	fs   *FaultFS
	path string
}

func (w *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f := w.fs
	f.mu.Lock()
	arm, keep, ferr := f.writeArm, f.writeKeep, f.writeErr
	if arm {
		f.inject(fmt.Errorf("write %s at %d: %w", w.path, off, ferr))
	}
	f.mu.Unlock()
	if !arm {
		return w.File.WriteAt(p, off)
	}
	k := min(max(keep(len(p)), 0), len(p))
	n, err := w.File.WriteAt(p[:k], off)
	if err != nil {
		return n, err
	}
	if ferr != nil {
		return n, &fs.PathError{Op: "write", Path: w.path, Err: ferr}
	}
	return n, nil
}

func (w *faultFile) Truncate(size int64) error {
	f := w.fs
	f.mu.Lock()
	arm, ferr := f.writeArm, f.writeErr
	f.mu.Unlock()
	if arm {
		if ferr == nil {
			ferr = syscall.EIO
		}
		return &fs.PathError{Op: "truncate", Path: w.path, Err: ferr}
	}
	return w.File.Truncate(size)
}

func (w *faultFile) Sync() error {
	f := w.fs
	f.mu.Lock()
	f.syncs[w.path]++
	if f.failedSync[w.path] {
		f.syncAfter = append(f.syncAfter, w.path)
	}
	err := f.syncErr
	if err != nil {
		f.failedSync[w.path] = true
		err = f.inject(&fs.PathError{Op: "fdatasync", Path: w.path, Err: err})
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return w.File.Sync()
}
