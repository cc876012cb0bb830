// Package store is yrdnode's durable storage: raft's stable store (LogStore,
// bbolt) and the replicated catalog state (Catalog, bbolt). The raft log
// itself is the write-ahead log in the subpackage wal; MigrateLogs moves the
// entries that versions before it kept in the stable store's file there.
//
// The catalog keeps every dataset in bbolt and mirrors it in an immutable,
// copy-on-write in-memory index, so reads (GetDataset, ListDatasets, Members)
// never open a bbolt transaction and never wait for the raft FSM, while the
// FSM applies whole batches of commands in one bbolt transaction through
// Catalog.Update.
//
// The package deliberately depends only on bbolt, raft, btree, protobuf and
// the generated yrd/v1 messages: it must not know about gRPC, libp2p or the
// node wiring so that it can be tested and reused on its own.
package store
