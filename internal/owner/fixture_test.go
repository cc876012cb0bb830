package owner

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/connector"
	"github.com/yrd-exchange/yrdnode/internal/diffcheck"
	"github.com/yrd-exchange/yrdnode/internal/errkind"
	"github.com/yrd-exchange/yrdnode/internal/ledger"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/resultcodec"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// The fixture is one Shanghai node without a cluster: its catalog,
// policy, audit log and budget are fakes in memory; the engine is a real
// DuckDB over synthetic CSV files of Shanghai's datasets; the export
// ledger and the difference check are the real stores in a temp dir.

const (
	city           = "shanghai"
	elderly        = "shanghai.civil-affairs.elderly-population"
	trips          = "shanghai.connected-vehicles.lingang-trips"
	elderlyPurpose = "elderly-care-planning"
	tripsPurpose   = "autonomous-driving-research"
	dataRows       = 500
)

// csvs writes the synthetic data once for every test: dataset id → file.
var csvs = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "owner-test-data-")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range synth.ForCity(city) {
		if d.GetId() != elderly && d.GetId() != trips {
			continue
		}
		p := filepath.Join(dir, d.GetId()+".csv")
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		if err := synth.WriteCSV(f, d, dataRows, 7); err != nil {
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		out[d.GetId()] = p
	}
	return out, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if files, err := csvs(); err == nil {
		for _, p := range files {
			_ = os.RemoveAll(filepath.Dir(p))
			break
		}
	}
	os.Exit(code)
}

type fixture struct {
	e       *Executor
	catalog *fakeCatalog
	policy  *fakePolicy
	audit   *fakeAudit
	budget  *fakeBudget
	exports *ledger.Ledger
	eng     connector.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	files, err := csvs()
	if err != nil {
		t.Fatal(err)
	}
	cat := &fakeCatalog{datasets: map[string]*yrdv1.Dataset{}, spent: map[string]float64{}}
	var sources []connector.Source
	for _, d := range synth.ForCity(city) {
		cat.datasets[d.GetId()] = d
		if p, ok := files[d.GetId()]; ok {
			sources = append(sources, connector.Source{DatasetID: d.GetId(), Format: "csv", Paths: []string{p}})
		}
	}
	eng, err := connector.OpenDuckDB(context.Background(), sources, func(id string) (*yrdv1.Dataset, bool) { return cat.Dataset(id) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	exports, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), []byte("the export ledger key of the test node"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exports.Close() })
	differ, err := diffcheck.Open(filepath.Join(t.TempDir(), "diffcheck.db"), diffcheck.Options{Window: 24 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = differ.Close() })
	f := &fixture{catalog: cat, policy: &fakePolicy{params: policy.DefaultParams()}, audit: &fakeAudit{},
		budget: &fakeBudget{left: policy.DefaultParams().GetPrivacyBudget()}, exports: exports, eng: eng}
	f.e = New(Config{City: city, Node: nodeID(t), MaxResultBytes: 16 << 20}, Ports{Catalog: cat, Policy: f.policy, Audit: f.audit,
		Budget: f.budget, Engines: fakeEngines{eng}, Exports: exports, Difference: differ, Secrets: fakeSecrets{}})
	return f
}

// analyst is a requester of another city, or (outside) of a node
// outside the mainland.
func analyst(city, org string) *yrdv1.Principal {
	return &yrdv1.Principal{City: city, Org: org, Name: "analyst", Role: yrdv1.Role_ROLE_ANALYST}
}

// response is what Execute sent.
type response struct {
	header  *yrdv1.ResultHeader
	rows    []*yrdv1.Row
	batches int
	columns int // ColumnBatch messages
	trailer *yrdv1.ResultTrailer
}

func (r *response) send(msg *yrdv1.QueryResponse) error {
	switch x := msg.GetPart().(type) {
	case *yrdv1.QueryResponse_Header:
		r.header = x.Header
	case *yrdv1.QueryResponse_Batch:
		r.batches++
		r.rows = append(r.rows, x.Batch.GetRows()...)
	case *yrdv1.QueryResponse_Columns:
		r.columns++
		rows, err := resultcodec.ColumnsToRows(x.Columns)
		if err != nil {
			return err
		}
		r.rows = append(r.rows, rows...)
	case *yrdv1.QueryResponse_Trailer:
		r.trailer = x.Trailer
	}
	return nil
}

// receipt is the one city's receipt in the trailer.
func (r *response) receipt() *yrdv1.ResultReceipt {
	if r.trailer == nil || len(r.trailer.GetCities()) != 1 {
		return nil
	}
	return r.trailer.GetCities()[0].GetReceipt()
}

// request is sql asked by p for purpose.
func request(t *testing.T, p *yrdv1.Principal, purpose, sql string) Request {
	t.Helper()
	q, err := sqlq.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	return Request{Query: q, Purpose: purpose, Principal: p}
}

// run executes req and returns what it sent.
func (f *fixture) run(t *testing.T, req Request) (*response, error) {
	t.Helper()
	r := &response{}
	err := f.e.Execute(waitFor(t), req, r.send)
	return r, err
}

type fakeCatalog struct {
	mu       sync.Mutex
	datasets map[string]*yrdv1.Dataset
	grants   []*yrdv1.Grant
	spent    map[string]float64 // by family
}

func (c *fakeCatalog) Dataset(id string) (*yrdv1.Dataset, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.datasets[id]
	return d, ok
}

func (c *fakeCatalog) Grants(datasetID, org string) ([]*yrdv1.Grant, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*yrdv1.Grant
	for _, g := range c.grants {
		if g.GetDatasetId() == datasetID && g.GetRequesterOrg() == org {
			out = append(out, g)
		}
	}
	return out, nil
}

func (c *fakeCatalog) PrivacySpent(_, _ string, _ int, family string) (float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spent[family], nil
}

type fakePolicy struct{ params *yrdv1.PolicyParams }

func (p *fakePolicy) Params() (*yrdv1.PolicyParams, error) {
	return proto.Clone(p.params).(*yrdv1.PolicyParams), nil
}

// fakeAudit keeps records in memory; fail makes Append fail as a full
// disk would.
type fakeAudit struct {
	mu      sync.Mutex
	fail    bool
	records []*yrdv1.AuditRecord // appended, then enqueued, in order
}

func (a *fakeAudit) Append(_ context.Context, rec *yrdv1.AuditRecord) (*yrdv1.AuditRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return nil, errkind.Errorf(errkind.Unavailable, "the audit record could not be written, so the request is refused: disk full")
	}
	out := proto.Clone(rec).(*yrdv1.AuditRecord)
	out.Seq = uint64(len(a.records) + 1)
	a.records = append(a.records, out)
	return out, nil
}

func (a *fakeAudit) Enqueue(ctx context.Context, rec *yrdv1.AuditRecord) error {
	_, err := a.Append(ctx, rec)
	return err
}

func (a *fakeAudit) all() []*yrdv1.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*yrdv1.AuditRecord(nil), a.records...)
}

// fakeBudget is one balance for every organisation and family.
type fakeBudget struct {
	mu     sync.Mutex
	left   float64
	spends []Spend
}

func (b *fakeBudget) Spend(_ context.Context, s Spend) (float64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.Epsilon > b.left {
		return 0, errkind.Errorf(errkind.Exhausted, "privacy budget exhausted: %s/%s has %v left of family %s", s.RequesterCity, s.RequesterOrg, b.left, s.Family)
	}
	b.left -= s.Epsilon
	b.spends = append(b.spends, s)
	return b.left, nil
}

type fakeEngines struct{ eng connector.Engine }

func (e fakeEngines) Engine(id string) connector.Engine {
	if e.eng.Configured(id) {
		return e.eng
	}
	return nil
}

// fakeSecrets derives keys from a fixed secret and signs with a fixed key.
type fakeSecrets struct{}

var signingKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

func (fakeSecrets) Derive(purpose string, parts ...string) ([]byte, error) {
	m := hmac.New(sha256.New, []byte("node secret"))
	m.Write([]byte(purpose))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil), nil
}

// nodeID is the peer id of signingKey, as a node's peer id is its key's.
func nodeID(t *testing.T) string {
	pub, err := crypto.UnmarshalEd25519PublicKey(signingKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func (fakeSecrets) SigningKey() (ed25519.PrivateKey, error) { return signingKey, nil }

// waitFor is a deadline for tests that must not hang.
func waitFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
