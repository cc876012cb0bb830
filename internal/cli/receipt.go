package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/receipt"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func runReceiptVerify(_ *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
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
		checks := checkReceipts(&t)
		if err := printReceiptChecks(env, cf, checks); err != nil {
			return err
		}
		checked, failed := 0, 0
		for _, c := range checks {
			if c.Receipt {
				checked++
			}
			if c.Receipt && !c.OK {
				failed++
			}
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

// receiptCheck is what receipt verify found for one city's part.
type receiptCheck struct {
	City      string `json:"city"`
	DatasetID string `json:"dataset_id"`
	Receipt   bool   `json:"receipt"` // the part came with a receipt
	OK        bool   `json:"ok"`
	Verdict   string `json:"verdict"`
}

func checkReceipts(t *yrdv1.ResultTrailer) []receiptCheck {
	var out []receiptCheck
	for _, c := range t.GetCities() {
		r := c.GetReceipt()
		if r == nil {
			out = append(out, receiptCheck{City: c.GetCity(), DatasetID: c.GetDatasetId(), Verdict: "no receipt (" + oneLineText(cityReason(c)) + ")"})
			continue
		}
		err := receipt.VerifyPart(r, c.GetCity(), c.GetDatasetId())
		check := receiptCheck{City: c.GetCity(), DatasetID: c.GetDatasetId(), Receipt: true, OK: err == nil,
			Verdict: fmt.Sprintf("OK: signed by %s; %d rows, %s, policy v%d, audit #%d", r.GetNode(), r.GetRows(), effectName(r.GetEffect()), r.GetPolicyVersion(), r.GetAuditSeq())}
		if err != nil {
			check.Verdict = "FAILED: " + err.Error()
		}
		out = append(out, check)
	}
	return out
}

func printReceiptChecks(env Env, cf *clientFlags, checks []receiptCheck) error {
	if cf.output == "json" {
		if checks == nil {
			checks = []receiptCheck{}
		}
		return printValue(env.Stdout, checks)
	}
	var cells [][]string
	for _, c := range checks {
		cells = append(cells, []string{c.City, c.DatasetID, c.Verdict})
	}
	if len(cells) > 0 {
		table(env.Stdout, []string{"CITY", "DATASET", "RECEIPT"}, cells)
	}
	return nil
}
