package cli

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/bench"

	"github.com/spf13/pflag"
)

// runBench drives a running cluster with a bounded load and reports
// throughput and latency, e.g. against `yrdnode dev` or a deployment.
func runBench(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	kind := fs.String("kind", "write", "write (publish datasets), read (linearizable get) or list (filtered list)")
	workers := fs.Int("workers", 16, "concurrent clients")
	count := fs.Int("count", 5000, "operations in all (the load stops at --count or --duration, whichever comes first)")
	duration := fs.Duration("duration", 30*time.Second, "longest the load may run")
	return func(ctx context.Context, _ []string) error {
		if *workers < 1 || *workers > 1024 || *count < 1 || *count > 10_000_000 || *duration <= 0 || *duration > time.Hour {
			return usageError{"bench: --workers 1..1024, --count 1..10000000, --duration up to 1h"}
		}
		// The whole load, setup included, is bounded by --duration.
		cf.timeout = *duration
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			return benchLoad(ctx, env, cf, conn, *kind, *workers, *count)
		})
	}
}

func benchLoad(ctx context.Context, env Env, cf *clientFlags, conn *grpc.ClientConn, kind string, workers, count int) error {
	op, err := benchOp(ctx, conn, kind)
	if err != nil {
		return cf.callErr(err)
	}
	// --duration ends the load and reports what was done by then.
	p, err := bench.Load(ctx, workers, count, func(ctx context.Context, _, i int) error { return op(ctx, i) })
	if err != nil && (ctx.Err() == nil || p.Ops == 0) {
		return cf.callErr(err)
	}
	fmt.Fprintf(env.Stdout, "%s: %d ops by %d workers in %v: %.0f ops/s, p50 %v, p99 %v, max %v\n", kind, p.Ops, workers,
		p.Elapsed.Round(time.Millisecond), p.OpsPerSec(), p.P50.Round(time.Microsecond), p.P99.Round(time.Microsecond),
		p.Max.Round(time.Microsecond))
	return nil
}

func benchOp(ctx context.Context, conn *grpc.ClientConn, kind string) (func(context.Context, int) error, error) {
	catalog := yrdv1grpc.NewCatalogServiceClient(conn)
	run := time.Now().UnixNano()
	template := sample.Datasets()[0]
	switch kind {
	case "write":
		// Publish as the caller's own organisation, which is all a
		// publisher may publish.
		who, err := yrdv1grpc.NewAuthServiceClient(conn).WhoAmI(ctx, &yrdv1.WhoAmIRequest{})
		if err != nil {
			return nil, err
		}
		template.OwnerCity, template.OwnerOrg = who.GetPrincipal().GetCity(), who.GetPrincipal().GetOrg()
		return func(ctx context.Context, i int) error {
			d := proto.Clone(template).(*yrdv1.Dataset)
			d.Id = fmt.Sprintf("%s.bench.r%d-%d", d.GetOwnerCity(), run, i)
			_, err := catalog.PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d})
			return err
		}, nil
	case "read", "list":
		// Read what is there; publish one dataset first if the catalog is empty.
		list, err := catalog.ListDatasets(ctx, &yrdv1.ListDatasetsRequest{PageSize: 1000})
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(list.GetDatasets()))
		for _, d := range list.GetDatasets() {
			ids = append(ids, d.GetId())
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("bench: the catalog is empty; run a write bench first")
		}
		if kind == "read" {
			return func(ctx context.Context, i int) error {
				_, err := catalog.GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: ids[i%len(ids)]})
				return err
			}, nil
		}
		return func(ctx context.Context, i int) error {
			_, err := catalog.ListDatasets(ctx, &yrdv1.ListDatasetsRequest{OwnerCity: "shanghai", Level: yrdv1.ClassificationLevel_LEVEL_GENERAL, PageSize: 100})
			return err
		}, nil
	}
	return nil, usageError{fmt.Sprintf("--kind: %q is not write, read or list", kind)}
}
