package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

// checkCatalog fetches the catalog entries of the datasets ids that
// config check compares local data with: from the running node's API when
// --ca is given, else from dataDir's catalog.db. That file is opened
// read-only under bbolt's shared lock, which a running node's exclusive
// lock refuses, so a file being written is never read; and the check
// never changes it. A nil lookup with a nil error means there is no
// catalog to check against (a node that has not started yet); what says
// which catalog was used, or why none.
func checkCatalog(ctx context.Context, cf *clientFlags, dataDir string, ids []string) (lookup connector.Catalog, what string, err error) {
	found := map[string]*yrdv1.Dataset{}
	lookup = func(id string) (*yrdv1.Dataset, bool) { d, ok := found[id]; return d, ok }
	if cf.ca != "" {
		err := cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			c := yrdv1grpc.NewCatalogServiceClient(conn)
			for _, id := range ids {
				resp, err := c.GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: id})
				if status.Code(err) == codes.NotFound {
					continue
				} else if err != nil {
					return cf.callErr(err)
				}
				found[id] = resp.GetDataset()
			}
			return nil
		})
		return lookup, "the running node at " + cf.node, err
	}
	path := filepath.Join(dataDir, "catalog.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Sprintf("none: %s has no catalog.db (the node has not started yet) and no --ca/--key was given for a running node, so schemas were not checked", dataDir), nil
	}
	c, err := store.OpenCatalog(path, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrInUse) {
		return nil, path, fmt.Errorf("%s is locked by a running node: check against that node with --node ADDR --ca CA --key KEY", path)
	} else if err != nil {
		return nil, path, err
	}
	defer c.Close()
	for _, id := range ids {
		if d, ok := c.GetDataset(id); ok {
			found[id] = d
		}
	}
	what = path + " (read-only; the node is stopped)"
	if _, err := os.Stat(filepath.Join(dataDir, "catalog.clean")); err != nil {
		what += "; it was not closed cleanly, so it may lag the cluster's catalog"
	}
	return lookup, what, nil
}
