// Package yrdv1 is the Go code generated from the yrd.v1 protocol buffers
// in this directory: the catalog, the raft commands, access requests,
// queries, results, receipts and audit records that nodes store, replicate
// and exchange. Edit the .proto files and run proto/generate.sh; only this
// file is written by hand (generate.sh --check leaves it alone).
package yrdv1
