package node_test

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/consensus"
	"github.com/yrd-exchange/yrdnode/node"
)

func fabricProtocol(s string) protocol.ID { return protocol.ID(s) }

// errorsCause finds the gRPC status inside a wrapped error.
func errorsCause(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := status.FromError(e); ok {
			return e
		}
	}
	return err
}

func defaultRaft() consensus.Config { return node.DefaultConfig().Raft }
