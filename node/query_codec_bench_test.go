package node_test

// Benchmarks of the fixed and per-row work of the owner's pipeline in
// isolation: policy, audit and receipt per query, and the row codec per
// row (see query_bench_test.go for how to run them).

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/policy"
	"github.com/yrd-exchange/yrdnode/internal/receipt"
	"github.com/yrd-exchange/yrdnode/internal/sqlq"
	"github.com/yrd-exchange/yrdnode/internal/synth"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// BenchmarkPolicyAuditReceipt isolates the fixed work execute does for
// every query besides the engine and the stream: the policy decision, the
// audit record appended with fsync before any data is read (bbolt, on the
// same file system as the nodes' data), and the signed receipt. all is
// the sequence execute runs for a one-row aggregate, including the second
// (queued, not waited for) audit record.
// (Long because its structure is the measurement: the sub-benchmarks
// share one setup and are checked against each other, side by side.)
func BenchmarkPolicyAuditReceipt(b *testing.B) {
	d := elderlyDatasetOf(b, "nanjing")
	d.Version = 1
	params := policy.DefaultParams()
	p := &yrdv1.Principal{City: "shanghai", Org: "shanghai-analytics", Name: "bench", Role: yrdv1.Role_ROLE_ANALYST}
	q, err := sqlq.Parse("SELECT count(*) FROM " + d.GetId())
	if err != nil {
		b.Fatal(err)
	}
	access := &yrdv1.AccessRequest{DatasetId: d.GetId(), Purpose: elderlyPurpose, ResultForm: yrdv1.ResultForm_RESULT_FORM_AGGREGATES,
		Aggregates: []*yrdv1.Aggregate{{Function: "count"}}}
	decide := func() *yrdv1.Decision {
		return policy.Decide(&policy.Request{Requester: p, Dataset: d, Access: access, Now: time.Now(), Params: params})
	}
	if dec := decide(); dec.GetEffect() != yrdv1.Effect_EFFECT_ALLOW_AGGREGATES {
		b.Fatalf("decision %v: %s", dec.GetEffect(), dec.GetReason())
	}

	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	lpub, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(lpub)
	if err != nil {
		b.Fatal(err)
	}
	log, err := audit.Open(filepath.Join(b.TempDir(), "audit.db"), key, id.String(), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	ctx := context.Background()
	record := func(dec *yrdv1.Decision, fp string) *yrdv1.AuditRecord {
		return &yrdv1.AuditRecord{Requester: p, Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY, DatasetId: d.GetId(),
			Decision: dec.GetEffect(), RuleIds: dec.GetRuleIds(), PolicyVersion: dec.GetPolicyVersion(), QueryFingerprint: fp,
			Detail: dec.GetReason()}
	}
	sign := func(dec *yrdv1.Decision, fp string, seq uint64) error {
		rc := &yrdv1.ResultReceipt{Node: id.String(), City: "nanjing", DatasetId: d.GetId(), DatasetVersion: d.GetVersion(),
			Requester: p, Purpose: elderlyPurpose, QueryFingerprint: fp, Effect: dec.GetEffect(), PolicyVersion: dec.GetPolicyVersion(),
			RuleIds: dec.GetRuleIds(), MinGroupSize: dec.GetMinGroupSize(), DerivedLevel: dec.GetDerivedLevel(), AuditSeq: seq}
		digest := receipt.NewDigest()
		digest.Add(&yrdv1.Row{Values: []*yrdv1.Value{{Kind: &yrdv1.Value_IntValue{IntValue: 100}}}})
		rc.Rows, rc.Individuals, rc.ResultDigest = 1, 100, digest.Sum()
		return receipt.Sign(key, rc)
	}
	dec := decide()
	fp := receipt.Fingerprint(q)

	b.Run("decide", func(b *testing.B) {
		runConcurrent(b, 1, "ops/s", func(_, _ int) error {
			decide()
			return nil
		})
	})
	b.Run("audit-append-fsync", func(b *testing.B) {
		runConcurrent(b, 1, "ops/s", func(_, _ int) error {
			_, err := log.Append(ctx, record(dec, fp))
			return err
		})
	})
	b.Run("receipt-sign", func(b *testing.B) {
		runConcurrent(b, 1, "ops/s", func(_, _ int) error { return sign(dec, fp, 1) })
	})
	b.Run("all", func(b *testing.B) {
		runConcurrent(b, 1, "ops/s", func(_, _ int) error {
			fp := receipt.Fingerprint(q)
			dec := decide()
			rec, err := log.Append(ctx, record(dec, fp))
			if err != nil {
				return err
			}
			if err := sign(dec, fp, rec.GetSeq()); err != nil {
				return err
			}
			return log.Enqueue(ctx, record(dec, fp))
		})
	})
}

// BenchmarkRowBatchCodec breaks down the per-row CPU cost of a streamed
// result, on one batch (owner.DefaultBatchRows, 4096) of traffic rows as
// BenchmarkRowStream sends them: building the wire rows from engine
// values (per-cell, as resultcodec.EngineValue does: a Value and a oneof wrapper per
// cell; slab, the same rows with the Values, wrappers and Rows of a batch
// allocated in a few slices), the receipt digest, proto.Size (which
// execute's flush calls before gRPC's codec sizes the message again;
// size-protowire computes the same number without reflection),
// marshalling, and unmarshalling (what every receiver, the relay of a
// forwarded query included, pays). Every sub-benchmark reports ns/row.
// (Long because its structure is the measurement: the sub-benchmarks
// share one setup and are checked against each other, side by side.)
func BenchmarkRowBatchCodec(b *testing.B) {
	const n = 4096
	d := datasetOf(b, "nanjing", trafficID)
	gen, err := synth.Generate(d, n, benchSeed)
	if err != nil {
		b.Fatal(err)
	}
	var engine [][]any // what the connector yields: string, time.Time, int64, float64
	for gen.Next() {
		row := make([]any, len(gen.Values()))
		for i, v := range gen.Values() {
			row[i] = v.Any()
		}
		engine = append(engine, row)
	}
	perCell := func() []*yrdv1.Row {
		out := make([]*yrdv1.Row, 0, len(engine))
		for _, vals := range engine {
			row := &yrdv1.Row{Values: make([]*yrdv1.Value, len(vals))}
			for i, v := range vals {
				row.Values[i] = wireValue(v)
			}
			out = append(out, row)
		}
		return out
	}
	rows := perCell()
	msg := &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: rows}}}
	enc, err := proto.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	if got := slabRows(engine); !proto.Equal(msg, &yrdv1.QueryResponse{Part: &yrdv1.QueryResponse_Batch{Batch: &yrdv1.RowBatch{Rows: got}}}) {
		b.Fatal("slab rows differ from per-cell rows")
	}
	perRow := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
		b.ReportMetric(float64(len(enc))/n, "B/row")
	}
	b.Run("convert-per-cell", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			perCell()
		}
		perRow(b)
	})
	b.Run("convert-slab", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			slabRows(engine)
		}
		perRow(b)
	})
	b.Run("digest", func(b *testing.B) {
		for b.Loop() {
			dg := receipt.NewDigest()
			for _, r := range rows {
				dg.Add(r)
			}
			dg.Sum()
		}
		perRow(b)
	})
	b.Run("size", func(b *testing.B) {
		for b.Loop() {
			proto.Size(msg)
		}
		perRow(b)
	})
	if got, want := batchWireSize(rows), proto.Size(msg); got != want {
		b.Fatalf("batchWireSize %d, proto.Size %d", got, want)
	}
	b.Run("size-protowire", func(b *testing.B) {
		for b.Loop() {
			batchWireSize(rows)
		}
		perRow(b)
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(msg); err != nil {
				b.Fatal(err)
			}
		}
		perRow(b)
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m yrdv1.QueryResponse
			if err := proto.Unmarshal(enc, &m); err != nil {
				b.Fatal(err)
			}
		}
		perRow(b)
	})
}

// wireValue is resultcodec.EngineValue for the Go types the traffic rows have.
func wireValue(v any) *yrdv1.Value {
	switch x := v.(type) {
	case string:
		return &yrdv1.Value{Kind: &yrdv1.Value_StringValue{StringValue: x}}
	case int64:
		return &yrdv1.Value{Kind: &yrdv1.Value_IntValue{IntValue: x}}
	case float64:
		return &yrdv1.Value{Kind: &yrdv1.Value_DoubleValue{DoubleValue: x}}
	case time.Time:
		return &yrdv1.Value{Kind: &yrdv1.Value_TimestampValue{TimestampValue: x.UTC().Format(time.RFC3339Nano)}}
	}
	return &yrdv1.Value{}
}

// slabRows builds the same rows as wireValue, allocating the batch's
// Rows, Values, value pointers and oneof wrappers in one slice each (the
// wrappers' slices sized by how many cells of each kind the batch has).
func slabRows(engine [][]any) []*yrdv1.Row {
	cells := 0
	var nStr, nInt, nDbl int
	for _, vals := range engine {
		cells += len(vals)
		for _, v := range vals {
			switch v.(type) {
			case string, time.Time:
				nStr++
			case int64:
				nInt++
			case float64:
				nDbl++
			}
		}
	}
	rowSlab := make([]yrdv1.Row, len(engine))
	out := make([]*yrdv1.Row, len(engine))
	vals := make([]yrdv1.Value, cells)
	ptrs := make([]*yrdv1.Value, cells)
	strs := make([]yrdv1.Value_StringValue, 0, nStr)
	ints := make([]yrdv1.Value_IntValue, 0, nInt)
	dbls := make([]yrdv1.Value_DoubleValue, 0, nDbl)
	tss := make([]yrdv1.Value_TimestampValue, 0, nStr)
	k := 0
	for r, row := range engine {
		for _, v := range row {
			val := &vals[k]
			switch x := v.(type) {
			case string:
				strs = append(strs, yrdv1.Value_StringValue{StringValue: x})
				val.Kind = &strs[len(strs)-1]
			case int64:
				ints = append(ints, yrdv1.Value_IntValue{IntValue: x})
				val.Kind = &ints[len(ints)-1]
			case float64:
				dbls = append(dbls, yrdv1.Value_DoubleValue{DoubleValue: x})
				val.Kind = &dbls[len(dbls)-1]
			case time.Time:
				tss = append(tss, yrdv1.Value_TimestampValue{TimestampValue: x.UTC().Format(time.RFC3339Nano)})
				val.Kind = &tss[len(tss)-1]
			}
			ptrs[k] = val
			k++
		}
		rowSlab[r].Values = ptrs[k-len(row) : k : k]
		out[r] = &rowSlab[r]
	}
	return out
}

// batchWireSize is proto.Size of a QueryResponse carrying rows as one
// RowBatch, computed from the values with protowire: what execute could
// add up per row for its result-size cap instead of sizing every batch
// with proto.Size before gRPC sizes it again.
func batchWireSize(rows []*yrdv1.Row) int {
	batch := 0
	for _, r := range rows {
		row := 0
		for _, v := range r.GetValues() {
			n := 0
			switch k := v.GetKind().(type) {
			case *yrdv1.Value_StringValue:
				n = 1 + protowire.SizeBytes(len(k.StringValue))
			case *yrdv1.Value_IntValue:
				n = 1 + protowire.SizeVarint(uint64(k.IntValue))
			case *yrdv1.Value_DoubleValue:
				n = 1 + protowire.SizeFixed64()
			case *yrdv1.Value_BoolValue:
				n = 1 + protowire.SizeVarint(protowire.EncodeBool(k.BoolValue))
			case *yrdv1.Value_DateValue:
				n = 1 + protowire.SizeBytes(len(k.DateValue))
			case *yrdv1.Value_TimestampValue:
				n = 1 + protowire.SizeBytes(len(k.TimestampValue))
			}
			row += 1 + protowire.SizeBytes(n) // Row.values = 1
		}
		batch += 1 + protowire.SizeBytes(row) // RowBatch.rows = 1
	}
	return 1 + protowire.SizeBytes(batch) // QueryResponse.batch = 2
}
