package testnet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/testnet/procnet"
)

const (
	creditRows   = 90000 // under the policy's row cap of 100,000
	creditSQL    = "SELECT * FROM hangzhou.fintech.enterprise-credit"
	drainTimeout = 5 * time.Second
)

// creditDataset is Hangzhou's GENERAL dataset without personal data, which
// an analyst may read row by row.
func creditDataset() *yrdv1.Dataset {
	for _, d := range sample.Datasets() {
		if d.GetId() == "hangzhou.fintech.enterprise-credit" {
			return d
		}
	}
	panic("no enterprise-credit sample")
}

// serveCSV writes rows of d to dir/credit.csv and maps it in yrdnode.toml.
func serveCSV(dir string, d *yrdv1.Dataset, rows int) error {
	f, err := os.Create(filepath.Join(dir, "credit.csv"))
	if err != nil {
		return err
	}
	if err := synth.WriteCSV(f, d, rows, 7); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return procnet.MapDataFiles(dir, []procnet.DataFile{{Dataset: d.GetId(), Paths: []string{"credit.csv"}}})
}

// startCreditDelta runs three processes with a short drain deadline;
// Hangzhou serves creditRows rows of enterprise credit, published.
func startCreditDelta(t *testing.T, notifySocket string) *procnet.ProcCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d := creditDataset()
	c, err := procnet.StartProcsOpts(ctx, binary(t), t.TempDir(), procnet.ProcOptions{
		Cities: []string{"shanghai", "hangzhou", "nanjing"},
		Env:    []string{"NOTIFY_SOCKET=" + notifySocket},
		Wrap: func(_ int, argv []string) []string {
			return append(argv, "--drain-timeout", drainTimeout.String())
		},
		Prepare: func(i int, dir string) error {
			if i != 1 {
				return nil
			}
			return serveCSV(dir, d, creditRows)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	key := strings.TrimSpace(cli(t, c, 1, "", "key", "create", "--org", d.GetOwnerOrg(), "--role", "publisher", "--name", "etl"))
	f := filepath.Join(t.TempDir(), "credit.json")
	data, _ := protojson.Marshal(d)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cli(t, c, 1, key, "dataset", "publish", "-f", f)
	return c
}

// openQuery starts the credit query and returns the stream once its
// header has arrived: the query is running at the owner.
func openQuery(t *testing.T, ctx context.Context, conn *grpc.ClientConn, batchRows uint32) yrdv1grpc.QueryService_QueryClient {
	t.Helper()
	qc := yrdv1grpc.NewQueryServiceClient(conn)
	for {
		st, err := qc.Query(ctx, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: creditSQL},
			Purpose: "credit-assessment", BatchRows: batchRows})
		if err == nil {
			var msg *yrdv1.QueryResponse
			if msg, err = st.Recv(); err == nil && msg.GetHeader() != nil {
				return st
			}
		}
		// The owner checks its file once the dataset is published.
		if status.Code(err) != codes.FailedPrecondition || ctx.Err() != nil {
			t.Fatalf("credit query: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readAll reads a query's rows until it ends, taking at least every
// per message (a slow client), and returns them with how it ended.
func readAll(st yrdv1grpc.QueryService_QueryClient, every time.Duration) (int, error) {
	rows := 0
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows += len(msg.GetBatch().GetRows())
		if every > 0 {
			time.Sleep(every) // pacing a slow reader, not ordering events
		}
	}
}

// TestSIGTERMDrainsQueriesOnRealProcess sends SIGTERM to a node while two
// queries stream from it: health turns NOT_SERVING, a new query is
// refused as draining, the query whose client keeps reading finishes whole,
// the one whose client reads too slowly is cancelled at the drain deadline
// with a status that says so. A write acknowledged before the signal is
// there after the restart, which is clean, and no log has an ERROR.
func TestSIGTERMDrainsQueriesOnRealProcess(t *testing.T) {
	notes := listenNotify(t)
	c := startCreditDelta(t, notes.path)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	notes.await(t, ctx, "READY=1\nSTATUS=serving hangzhou")
	conns := make([]*grpc.ClientConn, 3)
	for i := range conns {
		var err error
		if conns[i], err = c.ConnAs(1, "hangzhou-analytics", yrdv1.Role_ROLE_ANALYST); err != nil {
			t.Fatal(err)
		}
	}
	whole := openQuery(t, ctx, conns[0], 0)
	slow := openQuery(t, ctx, conns[1], 100)
	acked := publishCredit(t, c, "hangzhou.fintech.before-sigterm")

	if err := syscall.Kill(c.Pid(1), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	waitHealth(t, ctx, c, 1, healthpb.HealthCheckResponse_NOT_SERVING)
	notes.await(t, ctx, "STOPPING=1")
	if err := queryErr(ctx, conns[2]); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("a query sent while draining: %v, want UNAVAILABLE saying the node is draining", err)
	}
	slowDone := make(chan error, 1)
	go func() { // ends when the slow query does
		_, err := readAll(slow, 50*time.Millisecond)
		slowDone <- err
	}()
	if n, err := readAll(whole, 0); err != nil || n != creditRows {
		t.Fatalf("the query read on after SIGTERM: %d rows, %v; want all %d", n, err, creditRows)
	}
	// 900 batches at 50 ms each would take 45 s: cancelled at the 5 s
	// deadline instead.
	err := <-slowDone
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "drain deadline") {
		t.Fatalf("the slow query: %v, want UNAVAILABLE naming the drain deadline", err)
	}
	if took := time.Since(signalled); took > 3*drainTimeout {
		t.Fatalf("the slow query ended %v after SIGTERM, with a %v drain deadline", took, drainTimeout)
	}
	waitExit(t, ctx, c, 1)
	restartClean(t, ctx, c, 1, acked)
}

// queryErr runs the credit query and returns how it failed, nil if not.
func queryErr(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := yrdv1grpc.NewQueryServiceClient(conn).Query(ctx, &yrdv1.QueryRequest{Question: &yrdv1.QueryRequest_Sql{Sql: creditSQL},
		Purpose: "credit-assessment"})
	if err != nil {
		return err
	}
	_, err = readAll(st, 0)
	return err
}

// publishCredit publishes a copy of the credit dataset under id at
// Hangzhou and returns once the write is acknowledged.
func publishCredit(t *testing.T, c *procnet.ProcCluster, id string) string {
	t.Helper()
	d := creditDataset()
	d.Id = id
	f := filepath.Join(t.TempDir(), "d.json")
	data, _ := protojson.Marshal(d)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(cli(t, c, 1, "", "key", "create", "--org", d.GetOwnerOrg(), "--role", "publisher", "--name", "etl-2"))
	cli(t, c, 1, key, "dataset", "publish", "-f", f)
	return id
}

// waitHealth waits until city i's health check answers want.
func waitHealth(t *testing.T, ctx context.Context, c *procnet.ProcCluster, i int, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	conn, err := c.Conn(i)
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s health: %v %v, want %v", c.Cities[i], resp.GetStatus(), err, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitExit waits until city i's process has exited by itself.
func waitExit(t *testing.T, ctx context.Context, c *procnet.ProcCluster, i int) {
	t.Helper()
	for c.Pid(i) != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not exit after SIGTERM; log:\n%s", c.Cities[i], c.LogTail(i))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := c.Stop(i); err != nil { // forgets the exited process
		t.Fatal(err)
	}
}

// restartClean starts city i again and checks the stop was clean: the
// acknowledged write is there, the catalog was closed cleanly (no
// rebuild), the drain said what it did, and no log has an ERROR.
func restartClean(t *testing.T, ctx context.Context, c *procnet.ProcCluster, i int, acked string) {
	t.Helper()
	if err := c.Start(i); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(ctx, i); err != nil {
		t.Fatal(err)
	}
	if out := cli(t, c, i, "", "dataset", "get", acked); !strings.Contains(out, acked) {
		t.Fatalf("the write acknowledged before SIGTERM is gone after the restart:\n%s", out)
	}
	log, _ := os.ReadFile(c.LogPath(i))
	if strings.Contains(string(log), "rebuilding") {
		t.Fatalf("the restart rebuilt the catalog: the stop was not clean; log:\n%s", log)
	}
	if !strings.Contains(string(log), "drain deadline passed") {
		t.Fatalf("the log does not say the drain deadline cancelled a query:\n%s", log)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for j := range c.Cities {
		data, _ := os.ReadFile(c.LogPath(j))
		lines := strings.Split(string(data), "\n")
		if k := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "level=ERROR") }); k >= 0 {
			t.Fatalf("%s logged an ERROR: %s\nlog:\n%s", c.Cities[j], lines[k], data)
		}
	}
}

// notifySocket is where the processes' sd_notify datagrams arrive, as
// systemd's socket would receive them.
type notifySocket struct {
	path  string
	notes chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifySocket{path: path, notes: make(chan string, 64)}
	done := make(chan struct{})
	go func() { // ends when the cleanup closes the socket
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case s.notes <- string(buf[:n]):
			default: // keep-alives nobody waits for
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// await waits for a datagram that begins with prefix.
func (s *notifySocket) await(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	for {
		select {
		case note := <-s.notes:
			if strings.HasPrefix(note, prefix) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no sd_notify datagram %q", prefix)
		}
	}
}
