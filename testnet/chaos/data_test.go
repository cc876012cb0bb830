package chaos_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

// TestUpPublishesSampleDataEveryCityAnswers brings up two cities with
// sample data: every city's demo datasets are in the catalog, and a family
// query over the elderly population is answered by both owners from the
// files up wrote.
func TestUpPublishesSampleDataEveryCityAnswers(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cities := []string{"shanghai", "nanjing"}
	tn, err := chaos.Up(ctx, chaos.Options{Dir: dir, Binary: binary(t), Cities: cities, Mode: chaos.ModeLoopback,
		Log: log, Out: testWriter{t}, SampleRows: 300})
	t.Cleanup(func() {
		if tn != nil {
			tn.Close()
		}
		if err := chaos.Down(context.Background(), dir, log); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	op, err := tn.Procs.Conn(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, city := range cities {
		for _, d := range synth.ForCity(city) {
			if _, err := yrdv1grpc.NewCatalogServiceClient(op).GetDataset(ctx, &yrdv1.GetDatasetRequest{Id: d.GetId()}); err != nil {
				t.Errorf("%s's dataset %s is not in the catalog: %v", city, d.GetId(), err)
			}
		}
	}

	analyst, err := tn.Procs.ConnAs(1, "nanjing-analytics", yrdv1.Role_ROLE_ANALYST)
	if err != nil {
		t.Fatal(err)
	}
	q := &yrdv1.QueryRequest{Purpose: "elderly-care-planning",
		Question: &yrdv1.QueryRequest_Sql{Sql: "SELECT count(*) FROM family:" + sample.ElderlyPopulationSchemaID}}
	// An owner serves its dataset once it has checked its file against
	// the published schema: wait until both answer.
	var parts []*yrdv1.CityResult
	for deadline := time.Now().Add(time.Minute); ; {
		if parts = familyParts(ctx, t, yrdv1grpc.NewQueryServiceClient(analyst), q); allOK(parts, len(cities)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the family query never had an answer from every city: %v", parts)
		}
		time.Sleep(200 * time.Millisecond) // polling for a condition, not ordering
	}
}

// familyParts runs q and returns its trailer's per-city results.
func familyParts(ctx context.Context, t *testing.T, cl yrdv1grpc.QueryServiceClient, q *yrdv1.QueryRequest) []*yrdv1.CityResult {
	t.Helper()
	stream, err := cl.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*yrdv1.CityResult
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Logf("query: %v", err)
			return nil
		}
		if tr := resp.GetTrailer(); tr != nil {
			parts = tr.GetCities()
		}
	}
}

func allOK(parts []*yrdv1.CityResult, want int) bool {
	ok := 0
	for _, p := range parts {
		if p.GetStatus() == yrdv1.CityStatus_CITY_STATUS_OK {
			ok++
		}
	}
	return ok == want
}
