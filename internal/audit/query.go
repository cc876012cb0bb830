package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	// DefaultLimit is List's page size when Filter.Limit is 0.
	DefaultLimit = 100
	// MaxLimit caps List's page size.
	MaxLimit = 10000
)

// Filter selects records for List and Export. Zero fields match anything;
// set fields must all match.
type Filter struct {
	// Requester matches the requester's principal name, org or city.
	Requester string
	DatasetID string
	Decision  yrdv1.Effect
	Action    yrdv1.AuditAction
	// RuleID matches a record that has it among its rule ids, exactly.
	RuleID string
	// Since and Until bound the record time: Since <= time < Until.
	Since, Until time.Time
	// AfterSeq starts the scan after this seq (List's next for paging).
	AfterSeq uint64
	// Limit is List's page size: 0 means DefaultLimit, more than MaxLimit
	// means MaxLimit. For Export, 0 means no limit.
	Limit int
}

// Match reports whether rec passes every set field of f (AfterSeq and
// Limit are positions, not conditions, and are ignored).
func (f Filter) Match(rec *yrdv1.AuditRecord) bool {
	if f.Requester != "" {
		p := rec.GetRequester()
		if p.GetName() != f.Requester && p.GetOrg() != f.Requester && p.GetCity() != f.Requester {
			return false
		}
	}
	if f.DatasetID != "" && rec.GetDatasetId() != f.DatasetID {
		return false
	}
	if f.Decision != yrdv1.Effect_EFFECT_UNSPECIFIED && rec.GetDecision() != f.Decision {
		return false
	}
	if f.Action != yrdv1.AuditAction_AUDIT_ACTION_UNSPECIFIED && rec.GetAction() != f.Action {
		return false
	}
	if f.RuleID != "" && !slices.Contains(rec.GetRuleIds(), f.RuleID) {
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		if rec.GetTime() == nil {
			return false
		}
		t := rec.GetTime().AsTime()
		if !f.Since.IsZero() && t.Before(f.Since) {
			return false
		}
		if !f.Until.IsZero() && !t.Before(f.Until) {
			return false
		}
	}
	return true
}

func (f Filter) pageLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// list scans from f.AfterSeq. It looks one match past the page so that a
// non-zero next always leads to at least one more record. A record that
// cannot be read is an error, not a gap in the answer: a regulator must
// never be shown a silently shortened trail.
func (r reader) list(f Filter) ([]*yrdv1.AuditRecord, uint64, error) {
	limit := f.pageLimit()
	var out []*yrdv1.AuditRecord
	for rec, err := range r.records(f.AfterSeq) {
		if err != nil {
			return nil, 0, err
		}
		if !f.Match(rec) {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].Seq, nil
		}
		out = append(out, rec)
	}
	return out, 0, nil
}

// jsonl is the export encoding: proto field names, as in audit.proto, so a
// regulator's tools read the schema they were given.
var jsonl = protojson.MarshalOptions{UseProtoNames: true}

func (r reader) export(w io.Writer, f Filter) (int, error) {
	bw := bufio.NewWriter(w)
	var line bytes.Buffer
	n := 0
	for rec, err := range r.records(f.AfterSeq) {
		if err != nil {
			_ = bw.Flush()
			return n, err
		}
		if !f.Match(rec) {
			continue
		}
		if f.Limit > 0 && n == f.Limit {
			break
		}
		b, err := jsonl.Marshal(rec)
		if err != nil {
			return n, err
		}
		// protojson's output is single-line but not byte-stable; Compact
		// pins it to one line without optional spaces.
		line.Reset()
		if err := json.Compact(&line, b); err != nil {
			return n, err
		}
		line.WriteByte('\n')
		if _, err := bw.Write(line.Bytes()); err != nil {
			return n, err
		}
		n++
	}
	return n, bw.Flush()
}
