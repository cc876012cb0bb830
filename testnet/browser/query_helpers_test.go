package browser_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	"github.com/yrd-exchange/yrdnode/node"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// The query page's test delta: each city serves its elderly population
// dataset of the shared family from a CSV file synth writes, and a
// Hangzhou analyst holds a grant of Shanghai's civil affairs bureau.

const (
	queryPurpose = "elderly-care-planning"
	analystOrg   = "hz-planning"
	elderlyRows  = 1500
)

var queryCities = []string{"shanghai", "hangzhou", "nanjing"}

type queryDelta struct {
	*consoleCluster
	elderly map[string]*yrdv1.Dataset // by city
	grantID string
}

// startQueryDelta is startDataDelta with the Hangzhou analyst's grant on
// Shanghai's dataset requested and approved through the API.
func startQueryDelta(t *testing.T) *queryDelta {
	t.Helper()
	qd := startDataDelta(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qd.grantID = qd.grant(ctx, t, qd.elderly["shanghai"])
	return qd
}

// startDataDelta starts the delta with the data mapped into each node's
// config (as yrdnode.toml's [[data.files]] would), publishes the datasets
// and waits until every owner says it serves its own.
func startDataDelta(t *testing.T) *queryDelta {
	t.Helper()
	dir := t.TempDir()
	qd := &queryDelta{elderly: map[string]*yrdv1.Dataset{}}
	files := map[string][]connector.Source{}
	for _, city := range queryCities {
		d := elderlyDataset(t, city)
		// Exact counts, so that a run in the console and the same run
		// through the API can be compared value for value.
		d.ExactAggregates = true
		qd.elderly[city] = d
		files[city] = []connector.Source{{DatasetID: d.GetId(), Format: "csv", Paths: []string{writeRows(t, dir, d)}}}
	}
	served := newServedWatch()
	qd.consoleCluster = startConsoleCluster(t, func(i int, cfg *node.Config) {
		cfg.Data.Files = files[cfg.City]
		cfg.Logger = slog.New(served)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, d := range qd.elderly {
		conn, err := qd.PublisherConn(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := yrdv1grpc.NewCatalogServiceClient(conn).PublishDataset(ctx, &yrdv1.PublishDatasetRequest{Dataset: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range qd.elderly {
		served.wait(ctx, t, d.GetId())
	}
	return qd
}

func elderlyDataset(t *testing.T, city string) *yrdv1.Dataset {
	for _, d := range synth.ForCity(city) {
		if d.GetStandardSchemaId() == sample.ElderlyPopulationSchemaID {
			return d
		}
	}
	t.Fatalf("synth has no elderly dataset for %s", city)
	return nil
}

func writeRows(t *testing.T, dir string, d *yrdv1.Dataset) string {
	path := filepath.Join(dir, d.GetId()+".csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := synth.WriteCSV(f, d, elderlyRows, 7); err != nil {
		t.Fatal(err)
	}
	return path
}

// grant has the Hangzhou analyst ask for personal data of d in
// aggregates, and d's owner's CDO approve it, through the API.
func (qd *queryDelta) grant(ctx context.Context, t *testing.T, d *yrdv1.Dataset) string {
	t.Helper()
	analyst, err := qd.ConnAs(1, analystOrg, yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		t.Fatal(err)
	}
	req, err := yrdv1grpc.NewGrantServiceClient(analyst).RequestGrant(ctx, &yrdv1.RequestGrantRequest{DatasetId: d.GetId(),
		Purpose: queryPurpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES, AllowPersonal: true,
		Duration: durationpb.New(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cdo, err := qd.ConnAs(qd.Index(d.GetOwnerCity()), d.GetOwnerOrg(), yrdv1.Role_ROLE_CDO)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := yrdv1grpc.NewGrantServiceClient(cdo).ApproveGrant(ctx, &yrdv1.DecideGrantRequest{Id: req.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	return req.GetGrant().GetId()
}

// servedWatch is a log handler that tells when a node logs that it
// serves a dataset, so the test waits for that event instead of polling.
type servedWatch struct {
	mu     sync.Mutex
	served map[string]chan struct{}
}

func newServedWatch() *servedWatch { return &servedWatch{served: map[string]chan struct{}{}} }

func (w *servedWatch) ch(id string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.served[id] == nil {
		w.served[id] = make(chan struct{})
	}
	return w.served[id]
}

func (w *servedWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *servedWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *servedWatch) WithGroup(string) slog.Handler            { return w }

func (w *servedWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "dataset served" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "dataset" {
			ch := w.ch(a.Value.String())
			w.mu.Lock()
			select {
			case <-ch:
			default:
				close(ch)
			}
			w.mu.Unlock()
		}
		return true
	})
	return nil
}

func (w *servedWatch) wait(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	select {
	case <-w.ch(id):
	case <-ctx.Done():
		t.Fatalf("%s is not served after publishing", id)
	}
}

// fill sets a form field's value.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

// cells are the texts of the table rows sel matches, a NULL cell as "".
func (b *browser) cells(sel string) [][]string {
	b.t.Helper()
	js := `Array.from(document.querySelectorAll(` + jsString(sel) + `)).map(tr => Array.from(tr.cells).map(td => td.classList.contains('null') ? '' : td.textContent))`
	raw := get(b, chromedp.Evaluate[json.RawMessage](js))
	var out [][]string
	if err := json.Unmarshal(raw, &out); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// pageStatus is the HTTP status of the page's own response (a POST's too).
func (b *browser) pageStatus() int {
	b.t.Helper()
	return get(b, chromedp.Evaluate[int](`performance.getEntriesByType('navigation')[0].responseStatus`))
}

// downloaded is the content of the file a click on sel downloads.
func (b *browser) downloaded(sel string) []byte {
	b.t.Helper()
	data, err := os.ReadFile(b.download(sel))
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}
