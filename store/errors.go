package store

import "errors"

var (
	// ErrNotFound is returned by Tx accessors when the record does not exist.
	ErrNotFound = errors.New("store: not found")

	// ErrInvalidPageToken is wrapped by ListDatasets when PageToken was not
	// produced by a previous ListDatasets call.
	ErrInvalidPageToken = errors.New("store: invalid page token")

	// ErrClosed is returned by operations on a closed Catalog, LogStore,
	// Snapshot or a Tx used after its Update returned. (The raft log has
	// its own, wal.ErrClosed.)
	ErrClosed = errors.New("store: closed")

	// ErrInUse is returned when another process holds the file open: a
	// node still running on the data dir.
	ErrInUse = errors.New("in use by another process (is the node still running? stop it first)")

	// ErrKeyNotFound is returned by LogStore.Get and GetUint64 for a missing
	// key. Its text must stay exactly "not found": raft recognises a missing
	// stable-store key by comparing err.Error() with that string (as
	// raft-boltdb does), not by errors.Is.
	ErrKeyNotFound = errors.New("not found")
)
