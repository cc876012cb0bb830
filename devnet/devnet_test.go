package devnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/devnet"
)

// TestStartResumesFromDataDirs is what `yrdnode dev --data-dir` relies on:
// a second Start over the same dirs and addresses resumes the cluster
// without new tokens.
func TestStartResumesFromDataDirs(t *testing.T) {
	// The first start binds port 0; the second comes back on the ports
	// the nodes got (their addresses are in every member's registry).
	opts := devnet.Options{DataDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := devnet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Len() {
		opts.APIAddrs = append(opts.APIAddrs, c.Config(i).APIAddr)
		opts.FabricAddrs = append(opts.FabricAddrs, c.Config(i).FabricAddrs[0])
	}
	first := c.Node(0).PeerID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = devnet.Start(ctx, opts)
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
