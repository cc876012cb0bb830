// Package yrdv1grpc is the gRPC code generated from proto/yrd/v1/services.proto:
// the clients and servers of every node API service. It is apart from
// package yrdv1 so that what only stores or replicates messages does not
// link gRPC. Run proto/generate.sh to regenerate it; only this file is
// written by hand (generate.sh --check leaves it alone).
package yrdv1grpc
