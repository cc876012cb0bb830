package cli

import (
	"context"

	"fmt"
	"google.golang.org/grpc"
	"io"
	"os"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"

	"github.com/spf13/pflag"
)

// jsonOut is the JSON the CLI prints: proto field names, so what
// `dataset get -o json` prints, `dataset publish -f` reads back.
var jsonOut = protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}

func printJSON(w io.Writer, m proto.Message) error {
	data, err := jsonOut.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(data))
	return err
}

func readDatasetFile(path string) (*yrdv1.Dataset, error) {
	if path == "" {
		return nil, usageError{"-f FILE is required (YAML or JSON; - for standard input)"}
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	d, err := catalogspec.DecodeDataset(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return d, nil
}

// withCatalog runs f with a catalog client and the call's deadline.
func withCatalog(ctx context.Context, cf *clientFlags, f func(context.Context, yrdv1grpc.CatalogServiceClient) error) error {
	return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		return f(ctx, yrdv1grpc.NewCatalogServiceClient(conn))
	})
}

func runDatasetPublish(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	file := fs.StringP("file", "f", "", "dataset file, YAML or JSON (- for stdin)")
	return func(ctx context.Context, _ []string) error {
		d, err := readDatasetFile(*file)
		if err != nil {
			return err
		}
		return withCatalog(ctx, cf, func(ctx context.Context, c yrdv1grpc.CatalogServiceClient) error {
			resp, err := c.PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d})
			if err != nil {
				return cf.callErr(err)
			}
			return showDataset(env.Stdout, cf, resp.GetDataset(), "published")
		})
	}
}

func runDatasetUpdate(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	file := fs.StringP("file", "f", "", "dataset file, YAML or JSON (- for stdin); as printed by 'dataset get -o json'")
	expected := fs.Uint64("expected-version", 0, "version the change is based on (default: the file's version)")
	return func(ctx context.Context, _ []string) error {
		d, err := readDatasetFile(*file)
		if err != nil {
			return err
		}
		if *expected == 0 {
			*expected = d.GetVersion()
		}
		if *expected == 0 {
			return usageError{"the file has no version; pass --expected-version N (the version your change is based on)"}
		}
		return withCatalog(ctx, cf, func(ctx context.Context, c yrdv1grpc.CatalogServiceClient) error {
			resp, err := c.UpdateDataset(ctx, &yrdv1.UpdateDatasetRequest{Dataset: d, ExpectedVersion: *expected})
			if err != nil {
				return cf.callErr(err)
			}
			return showDataset(env.Stdout, cf, resp.GetDataset(), "updated")
		})
	}
}

func runDatasetRetire(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	expected := fs.Uint64("expected-version", 0, "refuse if the catalog holds another version (0: any)")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode dataset retire ID [--expected-version N]"}
		}
		return withCatalog(ctx, cf, func(ctx context.Context, c yrdv1grpc.CatalogServiceClient) error {
			resp, err := c.RetireDataset(ctx, &yrdv1.RetireDatasetRequest{Id: pos[0], ExpectedVersion: *expected})
			if err != nil {
				return cf.callErr(err)
			}
			return showDataset(env.Stdout, cf, resp.GetDataset(), "retired")
		})
	}
}

func consistency(stale bool) yrdv1.ReadConsistency {
	if stale {
		return yrdv1.ReadConsistency_READ_CONSISTENCY_STALE
	}
	return yrdv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
}

func runDatasetGet(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	stale := fs.Bool("stale", false, "read this node's replica without a leader round trip")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode dataset get ID [-o json]"}
		}
		return withCatalog(ctx, cf, func(ctx context.Context, c yrdv1grpc.CatalogServiceClient) error {
			resp, err := c.GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: pos[0], Consistency: consistency(*stale)})
			if err != nil {
				return cf.callErr(err)
			}
			return showDataset(env.Stdout, cf, resp.GetDataset(), "")
		})
	}
}

func showDataset(w io.Writer, cf *clientFlags, d *yrdv1.Dataset, verb string) error {
	if cf.output == "json" {
		return printJSON(w, d)
	}
	if verb != "" {
		fmt.Fprintf(w, "%s %s (version %d)\n\n", verb, d.GetId(), d.GetVersion())
	}
	kv := [][]string{
		{"id", d.GetId()}, {"title", d.GetTitle()}, {"owner", d.GetOwnerCity() + " / " + d.GetOwnerOrg()},
		{"level", levelName(d.GetLevel())}, {"sector", d.GetSector()}, {"tags", strings.Join(d.GetTags(), ", ")},
		{"standard schema", d.GetStandardSchemaId()}, {"update frequency", d.GetUpdateFrequency()},
		{"rights holder", d.GetDataRights().GetHolder()}, {"purposes", strings.Join(d.GetPermittedPurposes(), ", ")},
		{"cross-border", strconv.FormatBool(d.GetCrossBorderEligible())}, {"version", strconv.FormatUint(d.GetVersion(), 10)},
		{"updated", d.GetUpdatedAt().AsTime().Format("2006-01-02 15:04:05Z07:00")}, {"retired", strconv.FormatBool(d.GetRetired())},
	}
	for _, row := range kv {
		fmt.Fprintf(w, "%-17s %s\n", row[0]+":", row[1])
	}
	if d.GetDescription() != "" {
		fmt.Fprintf(w, "\n%s\n", d.GetDescription())
	}
	var rows [][]string
	for _, c := range d.GetSchema().GetColumns() {
		rows = append(rows, []string{c.GetName(), c.GetType(), trimEnum(c.GetPersonalInfo().String(), "PERSONAL_INFO_"), trimEnum(c.GetIdentifierRole().String(), "IDENTIFIER_")})
	}
	fmt.Fprintln(w)
	table(w, []string{"COLUMN", "TYPE", "PERSONAL INFO", "IDENTIFIER"}, rows)
	return nil
}

func trimEnum(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

func levelName(l yrdv1.ClassificationLevel) string { return trimEnum(l.String(), "LEVEL_") }

func parseLevel(s string) (yrdv1.ClassificationLevel, error) {
	if s == "" {
		return 0, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "LEVEL_") {
		name = "LEVEL_" + name
	}
	v, ok := yrdv1.ClassificationLevel_value[name]
	if !ok || v == 0 {
		return 0, usageError{fmt.Sprintf("--level: %q is not GENERAL, IMPORTANT or CORE", s)}
	}
	return yrdv1.ClassificationLevel(v), nil
}

func runDatasetList(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	req := &yrdv1.ListDatasetsRequest{}
	fs.StringVar(&req.OwnerCity, "city", "", "owner city id")
	fs.StringVar(&req.OwnerOrg, "org", "", "owner organisation")
	fs.StringVar(&req.Sector, "sector", "", "sector")
	level := fs.String("level", "", "GENERAL, IMPORTANT or CORE")
	fs.StringVar(&req.Tag, "tag", "", "tag")
	fs.StringVar(&req.Text, "text", "", "words that must all appear in title, description or tags")
	fs.StringVar(&req.StandardSchemaId, "family", "", "standard schema id, e.g. yrd.elderly-population.v1")
	fs.BoolVar(&req.IncludeRetired, "retired", false, "include retired datasets")
	pageSize := fs.Int("page-size", 100, "datasets per page (1..1000)")
	fs.StringVar(&req.PageToken, "page-token", "", "continue from a previous page")
	all := fs.Bool("all", false, "follow every page")
	stale := fs.Bool("stale", false, "read this node's replica without a leader round trip")
	return func(ctx context.Context, _ []string) error {
		var err error
		if req.Level, err = parseLevel(*level); err != nil {
			return err
		}
		req.PageSize, req.Consistency = int32(*pageSize), consistency(*stale)
		return withCatalog(ctx, cf, func(ctx context.Context, c yrdv1grpc.CatalogServiceClient) error {
			out := &yrdv1.ListDatasetsResponse{}
			for {
				resp, err := c.ListDatasets(ctx, req)
				if err != nil {
					return cf.callErr(err)
				}
				out.Datasets = append(out.Datasets, resp.GetDatasets()...)
				out.NextPageToken = resp.GetNextPageToken()
				if !*all || out.NextPageToken == "" {
					break
				}
				req.PageToken = out.NextPageToken
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, out)
			}
			var rows [][]string
			for _, d := range out.GetDatasets() {
				rows = append(rows, []string{d.GetId(), d.GetOwnerCity(), levelName(d.GetLevel()), d.GetSector(), strconv.FormatUint(d.GetVersion(), 10), d.GetTitle()})
			}
			table(env.Stdout, []string{"ID", "CITY", "LEVEL", "SECTOR", "VERSION", "TITLE"}, rows)
			if out.NextPageToken != "" {
				fmt.Fprintf(env.Stdout, "\nmore: --page-token %s (or --all)\n", out.NextPageToken)
			}
			return nil
		})
	}
}
