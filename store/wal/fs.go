package wal

import (
	"io"
	"io/fs"
	"os"

	"github.com/yrd-exchange/yrdnode/internal/fsutil"
)

// File is what the Log does with one segment file. *os.File provides it
// (through osFS) with Sync as fdatasync on Linux.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Truncate cuts or extends the file to size.
	Truncate(size int64) error
	// Sync makes the file's data and its size durable: fdatasync on
	// Linux, one device flush. After it fails the Log never calls it on
	// the same file again.
	Sync() error
	// Size is the file's current size.
	Size() (int64, error)
	Close() error
}

// FS is the Log's access to its directory: segment files, the small file
// holding the first index, and directory syncs. OS is the default; tests
// set Options.FS to inject disk faults. Paths are full paths. (Open
// creates a missing directory with the os package directly.)
type FS interface {
	// OpenFile opens path for reading and writing; with create it creates
	// the file, failing if it exists.
	OpenFile(path string, create bool) (File, error)
	ReadDir(dir string) ([]fs.DirEntry, error)
	ReadFile(path string) ([]byte, error)
	// WriteFileAtomic replaces path with data durably: a synced temporary
	// file path+".tmp" renamed over it, then the directory synced.
	WriteFileAtomic(path string, data []byte) error
	Remove(path string) error
	// SyncDir makes the directory's entries (files created, removed,
	// renamed) durable.
	SyncDir(dir string) error
}

// OS is the FS of the operating system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(path string, create bool) (File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
func (osFS) ReadFile(path string) ([]byte, error)      { return os.ReadFile(path) }
func (osFS) Remove(path string) error                  { return os.Remove(path) }
func (osFS) SyncDir(dir string) error                  { return fsutil.SyncDir(dir) }
func (osFS) WriteFileAtomic(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return fdatasync(f.File) }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
