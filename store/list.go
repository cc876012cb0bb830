package store

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// ListFilter selects datasets for ListDatasets. Zero values mean "any".
type ListFilter struct {
	// Exact matches, compared case-insensitively.
	OwnerCity, OwnerOrg, Sector string
	// Level 0 (unspecified) means any level.
	Level yrdv1.ClassificationLevel
	// Tag must be one of the dataset's tags (case-insensitive).
	Tag string
	// Text is split on whitespace; every word must occur, case-insensitively,
	// in the title, description or tags.
	Text             string
	StandardSchemaID string
	IncludeRetired   bool
	// PageSize 0 means 100; more than 1000 is an error.
	PageSize int
	// PageToken is the nextPageToken of the previous page, or empty.
	PageToken string
}

// query is a ListFilter normalized for matching.
type query struct {
	city, org, sector, schemaID, tag string
	level                            yrdv1.ClassificationLevel
	words                            []string
	sig                              textSig // of all words
	includeRetired                   bool
	keys                             []string // posting lists the result must be in
}

func newQuery(f ListFilter) *query {
	q := &query{
		city:           strings.ToLower(f.OwnerCity),
		org:            strings.ToLower(f.OwnerOrg),
		sector:         strings.ToLower(f.Sector),
		schemaID:       strings.ToLower(f.StandardSchemaID),
		tag:            strings.ToLower(f.Tag),
		level:          f.Level,
		words:          strings.Fields(strings.ToLower(f.Text)),
		includeRetired: f.IncludeRetired,
	}
	for _, w := range q.words {
		q.sig.add(w)
	}
	for _, kv := range [][2]string{{fieldCity, q.city}, {fieldOrg, q.org}, {fieldSector, q.sector}, {fieldSchema, q.schemaID}, {fieldTag, q.tag}} {
		if kv[1] != "" {
			q.keys = append(q.keys, kv[0]+kv[1])
		}
	}
	if q.level != yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED {
		q.keys = append(q.keys, levelKey(q.level))
	}
	return q
}

// prefilter rejects most non-matches from data that is at hand without
// reading the dataset's text.
func (q *query) prefilter(retired bool, sig *textSig) bool {
	return (q.includeRetired || !retired) && sig.contains(&q.sig)
}

func (q *query) match(e *entry) bool {
	if !q.prefilter(e.retired, &e.sig) {
		return false
	}
	if (q.city != "" && e.city != q.city) ||
		(q.org != "" && e.org != q.org) ||
		(q.sector != "" && e.sector != q.sector) ||
		(q.schemaID != "" && e.schemaID != q.schemaID) ||
		(q.level != 0 && e.ds.GetLevel() != q.level) ||
		(q.tag != "" && !slices.Contains(e.tags, q.tag)) {
		return false
	}
	for _, w := range q.words {
		if !strings.Contains(e.hay, w) {
			return false
		}
	}
	return true
}

// ListDatasets returns one page of the datasets matching f, ordered by id,
// and the token for the next page ("" on the last page). It reads one
// immutable index version, so a page is consistent even while Updates run.
// The returned protos are shared and read-only.
//
// It walks the smallest posting list among the filters in id order from
// the page token, checking the remaining filters, and stops once the page
// is full, so its cost depends on how many datasets it must skip rather
// than on the catalog size.
func (c *Catalog) ListDatasets(f ListFilter) (datasets []*yrdv1.Dataset, nextPageToken string, err error) {
	if c.closed.Load() {
		return nil, "", ErrClosed
	}
	size := f.PageSize
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		return nil, "", fmt.Errorf("store: page size %d out of range 0..%d", size, maxPageSize)
	}
	after, err := decodePageToken(f.PageToken)
	if err != nil {
		return nil, "", err
	}

	q := newQuery(f)
	st := c.state.Load()
	var src *posting // nil: scan all datasets
	for _, k := range q.keys {
		p, ok := st.postings.Get(&posting{key: k})
		if !ok {
			return nil, "", nil // no dataset has this value
		}
		if src == nil || p.ids.Len() < src.ids.Len() {
			src = p
		}
	}

	// Fetch one extra to learn whether another page exists.
	out := make([]*yrdv1.Dataset, 0, min(size+1, 128))
	visit := func(e *entry) bool {
		if e.id != after && q.match(e) {
			out = append(out, e.ds)
		}
		return len(out) <= size
	}
	switch {
	case src != nil && after == "":
		src.ids.Ascend(visit)
	case src != nil:
		src.ids.AscendGreaterOrEqual(&entry{id: after}, visit)
	default:
		visitItem := func(it idItem) bool {
			return !q.prefilter(it.retired, &it.sig) || visit(it.e)
		}
		if after == "" {
			st.byID.Ascend(visitItem)
		} else {
			st.byID.AscendGreaterOrEqual(idItem{id: after}, visitItem)
		}
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = encodePageToken(out[size-1].GetId())
	}
	return out, next, nil
}

// Page tokens are the last returned id, base64url-encoded so callers treat
// them as opaque and they survive being passed around in URLs.
func encodePageToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) == 0 {
		return "", fmt.Errorf("%w: %q", ErrInvalidPageToken, tok)
	}
	return string(raw), nil
}
