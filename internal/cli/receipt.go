package cli

import (
	"context"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"

	"github.com/spf13/pflag"
)

func runReceiptVerify(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	return func(_ context.Context, pos []string) error {
		if len(pos) != 1 {
			return usageError{"usage: yrdnode receipt verify FILE (as written by 'yrdnode query --receipts FILE')"}
		}
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		var t yrdv1.ResultTrailer
		if err := protojson.Unmarshal(data, &t); err != nil {
			return fmt.Errorf("%s: not a receipts file written by 'yrdnode query --receipts': %v", pos[0], err)
		}
		var cells [][]string
		checked, failed := 0, 0
		for _, c := range t.GetCities() {
			r := c.GetReceipt()
			if r == nil {
				cells = append(cells, []string{c.GetCity(), c.GetDatasetId(), "no receipt (" + oneLineText(cityReason(c)) + ")"})
				continue
			}
			checked++
			err := receipt.Verify(r)
			if err == nil && (r.GetCity() != c.GetCity() || r.GetDatasetId() != c.GetDatasetId()) {
				err = fmt.Errorf("the receipt is for %s / %s, not %s / %s", r.GetCity(), r.GetDatasetId(), c.GetCity(), c.GetDatasetId())
			}
			verdict := fmt.Sprintf("OK: signed by %s; %d rows, %s, policy v%d, audit #%d", r.GetNode(), r.GetRows(), effectName(r.GetEffect()), r.GetPolicyVersion(), r.GetAuditSeq())
			if err != nil {
				failed++
				verdict = "FAILED: " + err.Error()
			}
			cells = append(cells, []string{c.GetCity(), c.GetDatasetId(), verdict})
		}
		if len(cells) > 0 {
			table(env.Stdout, []string{"CITY", "DATASET", "RECEIPT"}, cells)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d receipts in %s fail verification", failed, checked, pos[0])
		}
		if checked == 0 {
			return fmt.Errorf("%s holds no receipt to verify", pos[0])
		}
		return nil
	}
}
