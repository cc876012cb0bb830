package testnet_test

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

// TestProcessClusterAnswersFamilyQueries runs real yrdnode binaries whose
// yrdnode.toml points at local CSV files, publishes each city's elderly
// dataset with the CLI, and queries the family with `yrdnode query`:
// every city answers, receipts verify offline, and with one city's process
// killed the result is marked partial, naming it.
// (One scenario whose steps share their data and state, so it is one
// function beyond the usual length.)
func TestProcessClusterAnswersFamilyQueries(t *testing.T) {
	cities := []string{"shanghai", "hangzhou", "nanjing"}
	elderly := map[string]*yrdv1.Dataset{}
	for _, city := range cities {
		for _, d := range synth.ForCity(city) {
			if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
				elderly[city] = d
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := procnet.StartProcsWith(ctx, binary(t), t.TempDir(), cities, func(i int, dir string) error {
		d := elderly[cities[i]]
		f, err := os.Create(filepath.Join(dir, "elderly.csv"))
		if err != nil {
			return err
		}
		if err := synth.WriteCSV(f, d, 2000, 11); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		// The operator's yrdnode.toml gains a data mapping; the path is
		// relative to the data dir.
		return procnet.MapDataFiles(dir, []procnet.DataFile{{Dataset: d.GetId(), Paths: []string{"elderly.csv"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	for i, city := range cities {
		d := elderly[city]
		key := strings.TrimSpace(cli(t, c, i, "", "key", "create", "--org", d.GetOwnerOrg(), "--role", "publisher", "--name", "etl"))
		f := filepath.Join(t.TempDir(), city+".json")
		data, _ := protojson.Marshal(d)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cli(t, c, i, key, "dataset", "publish", "-f", f)
	}
	analyst := strings.TrimSpace(cli(t, c, 1, "", "key", "create", "--org", "hangzhou-analytics", "--role", "analyst", "--name", "ana"))
	receipts := filepath.Join(t.TempDir(), "receipts.json")
	query := func() (stdout, stderr string, err error) {
		cmd := exec.Command(c.Binary, "query", "--purpose", "elderly-care-planning", "-o", "csv", "--receipts", receipts,
			"SELECT district, count(*) AS n FROM family:yrd.elderly-population.v1 GROUP BY district ORDER BY district")
		cmd.Env = append(os.Environ(), "YRDNODE_NODE="+c.API[1], "YRDNODE_CA="+c.CA(1), "YRDNODE_KEY="+analyst)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		return o.String(), e.String(), err
	}
	// Each owner checks its file once its dataset is published: wait until
	// every city answers.
	var out, errOut string
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, errOut, err = query()
		if err == nil && !strings.Contains(errOut, "PARTIAL") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("family query never complete: %v\n%s%s", err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 2 || rows[0][0] != "district" || rows[0][1] != "n" {
		t.Fatalf("csv output: %v\n%s", err, out)
	}
	if v := cli(t, c, 1, analyst, "receipt", "verify", receipts); strings.Count(v, "OK") < 3 {
		t.Fatalf("receipt verify:\n%s", v)
	}

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = query()
	if err != nil {
		t.Fatalf("partial query failed: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "PARTIAL RESULT: nanjing") {
		t.Fatalf("with nanjing killed the result is not marked partial naming it:\n%s", errOut)
	}
}
