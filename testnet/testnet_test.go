package testnet_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/testnet"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStartResumesFromDataDirs is what `yrdnode dev --data-dir` relies on:
// a second Start over the same dirs and addresses resumes the cluster
// without new tokens.
func TestStartResumesFromDataDirs(t *testing.T) {
	opts := testnet.Options{DataDir: t.TempDir()}
	for range 3 {
		opts.APIAddrs = append(opts.APIAddrs, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		opts.FabricAddrs = append(opts.FabricAddrs, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testnet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	first := c.Node(0).PeerID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = testnet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Node(0).PeerID() != first {
		t.Fatal("the resumed node has a new identity")
	}
	if n := len(c.Node(2).Catalog().Members()); n != 3 {
		t.Fatalf("resumed cluster has %d members, want 3", n)
	}
}
