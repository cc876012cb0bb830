// Package wal is yrdnode's raft log: an append-only write-ahead log of raft
// entries in segment files, a raft.LogStore (Log, opened with Open).
//
// Each StoreLogs batch is one write and one fdatasync; an entry is durable,
// and acknowledged, only when the StoreLogs that wrote it returned nil. A
// failed write or sync makes the Log refuse every later write (ErrFailed)
// until it is reopened, and Open recovers from the files as after a crash,
// cutting a torn tail of the last segment. File access goes through the FS
// seam (Options.FS), so tests can inject disk faults. DESIGN.md says why.
//
// The package depends on raft and the standard library only; the stable
// store and the catalog are package store's.
package wal
