package store

import (
	"slices"
	"strconv"
	"strings"

	"github.com/google/btree"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const btreeDegree = 32

// entry is one indexed dataset with the lowercased fields the filters
// compare against, computed once on write instead of on every query.
type entry struct {
	id                          string
	ds                          *yrdv1.Dataset
	city, org, sector, schemaID string
	tags                        []string // lowercased, deduplicated
	hay                         string   // lowercased title, description and tags for Text
	sig                         textSig  // of hay
	retired                     bool
}

func newEntry(d *yrdv1.Dataset) *entry {
	e := &entry{
		id:       d.GetId(),
		ds:       d,
		city:     strings.ToLower(d.GetOwnerCity()),
		org:      strings.ToLower(d.GetOwnerOrg()),
		sector:   strings.ToLower(d.GetSector()),
		schemaID: strings.ToLower(d.GetStandardSchemaId()),
		retired:  d.GetRetired(),
	}
	for _, t := range d.GetTags() {
		if t = strings.ToLower(t); t != "" && !slices.Contains(e.tags, t) {
			e.tags = append(e.tags, t)
		}
	}
	// Newline separators: query words never contain whitespace, so a word
	// cannot match across two fields.
	e.hay = strings.ToLower(d.GetTitle() + "\n" + d.GetDescription() + "\n" + strings.Join(d.GetTags(), "\n"))
	e.sig.add(e.hay)
	return e
}

// Posting keys are a one-byte field tag followed by the lowercased value.
const (
	fieldCity   = "c"
	fieldOrg    = "o"
	fieldSector = "s"
	fieldLevel  = "l"
	fieldTag    = "t"
	fieldSchema = "x"
)

func levelKey(l yrdv1.ClassificationLevel) string { return fieldLevel + strconv.Itoa(int(l)) }

// keys are the posting lists e belongs to. Empty values and the unspecified
// level are not indexed: an empty filter means "any".
func (e *entry) keys() []string {
	ks := make([]string, 0, 5+len(e.tags))
	add := func(field, v string) {
		if v != "" {
			ks = append(ks, field+v)
		}
	}
	add(fieldCity, e.city)
	add(fieldOrg, e.org)
	add(fieldSector, e.sector)
	add(fieldSchema, e.schemaID)
	if l := e.ds.GetLevel(); l != yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED {
		ks = append(ks, levelKey(l))
	}
	for _, t := range e.tags {
		ks = append(ks, fieldTag+t)
	}
	return ks
}

func entryLess(a, b *entry) bool { return a.id < b.id }

// idItem is an entry in the all-datasets tree. It carries what a query
// without equality filters tests first, inline in the b-tree node, so a
// scan of the whole catalog reads mostly contiguous memory and follows the
// entry pointer only for likely matches.
type idItem struct {
	id      string
	sig     textSig
	retired bool
	e       *entry
}

func itemOf(e *entry) idItem { return idItem{id: e.id, sig: e.sig, retired: e.retired, e: e} }

func idItemLess(a, b idItem) bool { return a.id < b.id }

// posting is the set of entries sharing one field value, in id order.
type posting struct {
	key string
	ids *btree.BTreeG[*entry]
}

func postingLess(a, b *posting) bool { return a.key < b.key }

// memberView is the immutable in-memory member registry.
type memberView struct {
	byID   map[string]*yrdv1.Member
	sorted []*yrdv1.Member
}

func newMemberView(byID map[string]*yrdv1.Member) *memberView {
	v := &memberView{byID: byID, sorted: make([]*yrdv1.Member, 0, len(byID))}
	for _, m := range byID {
		v.sorted = append(v.sorted, m)
	}
	slices.SortFunc(v.sorted, func(a, b *yrdv1.Member) int { return strings.Compare(a.GetPeerId(), b.GetPeerId()) })
	return v
}

// state is an immutable version of the in-memory index. Readers load the
// current one atomically; writers derive a new one with copy-on-write
// b-tree clones (O(1), then O(log n) node copies per change) and publish it.
// Published trees are never modified, so readers need no lock.
type state struct {
	applied  uint64
	byID     *btree.BTreeG[idItem]
	postings *btree.BTreeG[*posting]
	members  *memberView
}

// builder derives a new state from an old one. Not safe for concurrent use.
type builder struct {
	byID     *btree.BTreeG[idItem]
	postings *btree.BTreeG[*posting]
	// owned holds the posting lists already cloned for this builder, which
	// may therefore be modified in place.
	owned map[string]*posting
}

func newBuilder(from *state) *builder {
	b := &builder{owned: make(map[string]*posting)}
	if from == nil {
		b.byID = btree.NewG(btreeDegree, idItemLess)
		b.postings = btree.NewG(btreeDegree, postingLess)
	} else {
		b.byID = from.byID.Clone()
		b.postings = from.postings.Clone()
	}
	return b
}

// put inserts or replaces e, moving it between posting lists as needed.
func (b *builder) put(e *entry) {
	newKeys := e.keys()
	if old, ok := b.byID.ReplaceOrInsert(itemOf(e)); ok {
		for _, k := range old.e.keys() {
			if !slices.Contains(newKeys, k) {
				b.posting(k).ids.Delete(old.e)
				b.dropIfEmpty(k)
			}
		}
	}
	// ReplaceOrInsert also for unchanged keys: the entry pointer changed.
	for _, k := range newKeys {
		b.posting(k).ids.ReplaceOrInsert(e)
	}
}

// posting returns a mutable posting list for key, creating it if missing.
func (b *builder) posting(key string) *posting {
	if p, ok := b.owned[key]; ok {
		return p
	}
	var p *posting
	if shared, ok := b.postings.Get(&posting{key: key}); ok {
		p = &posting{key: key, ids: shared.ids.Clone()}
	} else {
		p = &posting{key: key, ids: btree.NewG(btreeDegree, entryLess)}
	}
	b.postings.ReplaceOrInsert(p)
	b.owned[key] = p
	return p
}

func (b *builder) dropIfEmpty(key string) {
	if p := b.owned[key]; p.ids.Len() == 0 {
		b.postings.Delete(p)
		delete(b.owned, key)
	}
}

func (b *builder) finish(applied uint64, members *memberView) *state {
	return &state{applied: applied, byID: b.byID, postings: b.postings, members: members}
}

// apply returns a new state at index with the committed changes of one
// Update.
func (s *state) apply(index uint64, datasets map[string]*yrdv1.Dataset, members map[string]*yrdv1.Member) *state {
	next := *s
	next.applied = index
	if len(datasets) > 0 {
		b := newBuilder(s)
		for _, d := range datasets {
			b.put(newEntry(d))
		}
		next.byID, next.postings = b.byID, b.postings
	}
	if len(members) > 0 {
		byID := make(map[string]*yrdv1.Member, len(s.members.byID)+len(members))
		for id, m := range s.members.byID {
			byID[id] = m
		}
		for id, m := range members {
			if m == nil {
				delete(byID, id)
			} else {
				byID[id] = m
			}
		}
		next.members = newMemberView(byID)
	}
	return &next
}
