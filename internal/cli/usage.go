package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

func runPolicyUsage(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	year := fs.Int("year", 0, "calendar year (China time, as budgets count); 0: this year")
	org := fs.String("org", "", "only this organisation (a CDO or analyst sees only its own)")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 0 {
			return usageError{"usage: yrdnode policy usage [--year N] [--org ORG]"}
		}
		if *year < 0 || *year > math.MaxInt32 {
			return usageError{fmt.Sprintf("--year: %d is not a calendar year", *year)}
		}
		return cf.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := yrdv1grpc.NewPolicyServiceClient(conn).GetUsage(ctx, &yrdv1.GetUsageRequest{Year: int32(*year), Org: *org})
			if err != nil {
				return cf.callErr(err)
			}
			if cf.output == "json" {
				return printJSON(env.Stdout, resp)
			}
			printUsage(env.Stdout, resp)
			return nil
		})
	}
}

// printUsage prints the budgets and the exports as two tables, each under
// a line that says whose view it is: budgets are the catalog's, exports the
// answering node's ledger only.
func printUsage(w io.Writer, resp *yrdv1.GetUsageResponse) {
	fmt.Fprintf(w, "privacy budget spent in %d (policy v%d):\n", resp.GetYear(), resp.GetPolicyVersion())
	var rows [][]string
	for _, b := range resp.GetBudgets() {
		family := b.GetFamily()
		if family == "" {
			family = "-" // spends recorded before families, per organisation
		}
		rows = append(rows, []string{b.GetCity() + "/" + b.GetOrg(), family, epsilon(b.GetSpent()), epsilon(b.GetBudget()), epsilon(b.GetRemaining())})
	}
	usageTable(w, []string{"ORG", "FAMILY", "SPENT", "BUDGET", "REMAINING"}, rows)
	fmt.Fprintf(w, "\ncross-border exports in %d, as %s's node counts them:\n", resp.GetYear(), resp.GetCity())
	rows = nil
	for _, e := range resp.GetExports() {
		kind := strings.ToLower(trimEnum(e.GetKind().String(), "EXPORT_KIND_"))
		rows = append(rows, []string{e.GetOrg(), kind, strconv.FormatUint(e.GetCount(), 10), strconv.FormatUint(e.GetThreshold(), 10)})
	}
	usageTable(w, []string{"ORG", "KIND", "COUNT", "THRESHOLD"}, rows)
}

// usageTable prints rows under header, or "none" when there are none.
func usageTable(w io.Writer, header []string, rows [][]string) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "none")
		return
	}
	table(w, header, rows)
}

// epsilon prints a privacy loss to six significant digits, so that sums
// like 0.1+0.2 do not show their float error.
func epsilon(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
