package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// sampleSeed seeds every city's synthetic files, so that a testnet's data
// is the same from one run to the next.
const sampleSeed = 20261202

// writeSampleData writes, into a city's data dir, a CSV file of rows
// synthetic rows for every dataset the city holds in the delta demo
// (synth.ForCity: its sample datasets and its elderly population), and
// maps them in the yrdnode.toml that `yrdnode init` wrote, as an operator
// would. Paths are relative to the data dir.
func writeSampleData(city, dir string, rows int) error {
	var files []procnet.DataFile
	for _, d := range synth.ForCity(city) {
		name := filepath.Join("data", d.GetId()+".csv")
		if err := writeCSV(filepath.Join(dir, name), d, rows); err != nil {
			return err
		}
		files = append(files, procnet.DataFile{Dataset: d.GetId(), Paths: []string{name}})
	}
	return procnet.MapDataFiles(dir, files)
}

func writeCSV(path string, d *yrdv1.Dataset, rows int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := synth.WriteCSV(f, d, rows, sampleSeed); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// publishSampleData publishes every city's demo datasets to the catalog,
// each through its own city's node with a publisher key of the owning
// organisation, so that family queries reach every city's data.
func publishSampleData(ctx context.Context, procs *procnet.ProcCluster) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i, city := range procs.Cities {
		conns := map[string]*grpc.ClientConn{}
		for _, d := range synth.ForCity(city) {
			conn, ok := conns[d.GetOwnerOrg()]
			if !ok {
				var err error
				if conn, err = procs.ConnAs(i, d.GetOwnerOrg(), yrdv1.Role_ROLE_PUBLISHER); err != nil {
					return fmt.Errorf("%s: a publisher key for %s: %w", city, d.GetOwnerOrg(), err)
				}
				conns[d.GetOwnerOrg()] = conn
			}
			if err := publishRetrying(ctx, yrdv1grpc.NewCatalogServiceClient(conn), d); err != nil {
				return fmt.Errorf("%s: publish %s: %w", city, d.GetId(), err)
			}
		}
	}
	return nil
}

// publishRetrying publishes d, retrying while the cluster has no leader.
// A retry after an outcome-unknown failure may find d already there,
// which is success.
func publishRetrying(ctx context.Context, cl yrdv1grpc.CatalogServiceClient, d *yrdv1.Dataset) error {
	for {
		_, err := cl.PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d})
		switch status.Code(err) {
		case codes.OK, codes.AlreadyExists:
			return nil
		case codes.Unavailable:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
