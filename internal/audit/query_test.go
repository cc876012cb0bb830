package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func seqsOf(recs []*yrdv1.AuditRecord) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// want lists, independently of Filter.Match, the seqs of the fixture's
// records that satisfy pred.
func want(f fixture, pred func(r *yrdv1.AuditRecord) bool) []uint64 {
	var out []uint64
	for _, r := range f.records {
		if pred(r) {
			out = append(out, r.Seq)
		}
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestListFilters(t *testing.T) {
	f := newFixture(t, 60)
	l := openLog(t, f.path, f.key, Options{NoSync: true})
	defer l.Close()
	at := func(i int) time.Time { return baseTime.Add(time.Duration(i) * time.Second) }

	cases := []struct {
		name string
		f    Filter
		pred func(r *yrdv1.AuditRecord) bool
	}{
		{"all", Filter{}, func(*yrdv1.AuditRecord) bool { return true }},
		{"requester name", Filter{Requester: "carol"}, func(r *yrdv1.AuditRecord) bool { return r.Requester.Name == "carol" }},
		{"requester org", Filter{Requester: "nj-energy"}, func(r *yrdv1.AuditRecord) bool { return r.Requester.Org == "nj-energy" }},
		{"requester city", Filter{Requester: "Hefei"}, func(r *yrdv1.AuditRecord) bool { return r.Requester.City == "Hefei" }},
		{"requester unknown", Filter{Requester: "mallory"}, func(*yrdv1.AuditRecord) bool { return false }},
		{"dataset", Filter{DatasetID: "ds-3"}, func(r *yrdv1.AuditRecord) bool { return r.DatasetId == "ds-3" }},
		{"decision", Filter{Decision: yrdv1.Effect_EFFECT_DENY}, func(r *yrdv1.AuditRecord) bool { return r.Decision == yrdv1.Effect_EFFECT_DENY }},
		{"action", Filter{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY}, func(r *yrdv1.AuditRecord) bool { return r.Action == yrdv1.AuditAction_AUDIT_ACTION_QUERY }},
		{"rule id, second of two", Filter{RuleID: "R-012"}, func(r *yrdv1.AuditRecord) bool { return r.RuleIds[1] == "R-012" }},
		{"rule id, first of two", Filter{RuleID: "R-001"}, func(*yrdv1.AuditRecord) bool { return true }},
		{"rule id is exact", Filter{RuleID: "R-01"}, func(*yrdv1.AuditRecord) bool { return false }},
		{"rule id and decision", Filter{RuleID: "R-011", Decision: yrdv1.Effect_EFFECT_DENY},
			func(r *yrdv1.AuditRecord) bool {
				return r.RuleIds[1] == "R-011" && r.Decision == yrdv1.Effect_EFFECT_DENY
			}},
		{"since until", Filter{Since: at(10), Until: at(20)}, func(r *yrdv1.AuditRecord) bool { return r.Seq >= 10 && r.Seq < 20 }},
		{"after seq", Filter{AfterSeq: 55}, func(r *yrdv1.AuditRecord) bool { return r.Seq > 55 }},
		{"combined", Filter{Requester: "Shanghai", Decision: yrdv1.Effect_EFFECT_ALLOW_ROWS, Since: at(5)},
			func(r *yrdv1.AuditRecord) bool {
				return r.Requester.City == "Shanghai" && r.Decision == yrdv1.Effect_EFFECT_ALLOW_ROWS && r.Seq >= 5
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next, err := l.List(c.f)
			if err != nil {
				t.Fatal(err)
			}
			exp := want(f, c.pred)
			if !equalSeqs(seqsOf(got), exp) || next != 0 {
				t.Errorf("got %v next %d, want %v next 0", seqsOf(got), next, exp)
			}
			for _, r := range got {
				if !proto.Equal(r, f.records[r.Seq-1]) {
					t.Errorf("record %d differs from what was appended", r.Seq)
				}
			}
		})
	}
	if len(want(f, func(r *yrdv1.AuditRecord) bool {
		return r.Requester.City == "Shanghai" && r.Decision == yrdv1.Effect_EFFECT_ALLOW_ROWS
	})) == 0 {
		t.Fatal("fixture has no record for the combined filter; the case proves nothing")
	}
}

func TestListPagesWithNext(t *testing.T) {
	f := newFixture(t, 21)
	l := openLog(t, f.path, f.key, Options{NoSync: true})
	defer l.Close()
	var all []uint64
	filter := Filter{Limit: 7}
	for pages := 0; ; pages++ {
		got, next, err := l.List(filter)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, seqsOf(got)...)
		if next == 0 {
			// 21 = 3 full pages; the look-ahead must not send a caller to an
			// empty fourth one.
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		if next != got[len(got)-1].Seq {
			t.Errorf("next = %d, want the last seq of the page %d", next, got[len(got)-1].Seq)
		}
		filter.AfterSeq = next
	}
	if !equalSeqs(all, want(f, func(*yrdv1.AuditRecord) bool { return true })) {
		t.Errorf("pages gave %v", all)
	}
}

func TestListLimitDefaultsTo100AndCapsAt10000(t *testing.T) {
	const n = MaxLimit + 50
	l := openLog(t, filepath.Join(t.TempDir(), "audit.db"), testKey(1), Options{NoSync: true})
	defer l.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				if _, err := l.Append(context.Background(), sampleRecord(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, c := range []struct{ limit, want int }{{0, DefaultLimit}, {-1, DefaultLimit}, {250, 250}, {MaxLimit, MaxLimit}, {5 * MaxLimit, MaxLimit}} {
		got, next, err := l.List(Filter{Limit: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want || next != uint64(c.want) {
			t.Errorf("Limit %d: %d records, next %d; want %d, next %d", c.limit, len(got), next, c.want, c.want)
		}
	}
}

func TestExportJSONLinesParseBackToEqualRecords(t *testing.T) {
	f := newFixture(t, 40)
	l := openLog(t, f.path, f.key, Options{NoSync: true})
	defer l.Close()

	var buf bytes.Buffer
	filter := Filter{Action: yrdv1.AuditAction_AUDIT_ACTION_QUERY}
	n, err := l.Export(&buf, filter)
	if err != nil {
		t.Fatal(err)
	}
	exp := want(f, filter.Match)
	if n != len(exp) || n == 0 {
		t.Fatalf("exported %d, want %d", n, len(exp))
	}
	sc := bufio.NewScanner(&buf)
	var got []uint64
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"dataset_id":`) || !strings.Contains(line, `"prev_hash":`) {
			t.Errorf("line lacks proto field names: %s", line)
		}
		rec := new(yrdv1.AuditRecord)
		if err := protojson.Unmarshal([]byte(line), rec); err != nil {
			t.Fatalf("line does not parse: %v\n%s", err, line)
		}
		if !proto.Equal(rec, f.records[rec.Seq-1]) {
			t.Errorf("record %d changed in export", rec.Seq)
		}
		got = append(got, rec.Seq)
	}
	if !equalSeqs(got, exp) {
		t.Errorf("exported %v, want %v", got, exp)
	}

	// Export has no page limit unless asked; a limit is honoured.
	buf.Reset()
	if n, err := l.Export(&buf, Filter{}); err != nil || n != 40 {
		t.Errorf("export all = %d, %v", n, err)
	}
	buf.Reset()
	if n, err := l.Export(&buf, Filter{Limit: 3}); err != nil || n != 3 || strings.Count(buf.String(), "\n") != 3 {
		t.Errorf("export limit 3 = %d, %v", n, err)
	}
}

func TestReadOnlyReaderReadsClosedLog(t *testing.T) {
	f := newFixture(t, 12)
	r, err := ReadOnly(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seq, head, err := r.Head()
	if err != nil || seq != 12 || !bytes.Equal(head, f.records[11].Hash) {
		t.Errorf("head = %d %x %v", seq, head, err)
	}
	if rec, err := r.Get(4); err != nil || !proto.Equal(rec, f.records[3]) {
		t.Errorf("Get(4) = %v, %v", rec, err)
	}
	if _, err := r.Get(13); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(13) = %v", err)
	}
	got, _, err := r.List(Filter{DatasetID: "ds-1"})
	if err != nil || len(got) == 0 {
		t.Errorf("List = %d records, %v", len(got), err)
	}
	wantOK(t, r.Verify(f.pub(), f.anchors), 12)
	if _, err := ReadOnly(filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Error("ReadOnly created a missing file")
	}
}
