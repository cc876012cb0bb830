// Package catalogspec defines what valid dataset metadata is and how
// publishers write it down. Every node runs the same rules before a dataset
// enters the replicated catalog, so a record that one node accepted is never
// rejected by another; the CLI runs them too, so publishers learn about all
// their mistakes before a round trip to the cluster.
package catalogspec

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	"github.com/yrd-exchange/yrdnode/internal/fielderr"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// MaxDatasetBytes bounds the wire size of one Dataset. Every node keeps the
// whole catalog in its replicated log, so one huge record costs every node.
const MaxDatasetBytes = 64 << 10

// Limits on individual fields. Lengths of free text are counted in runes so
// that Chinese and English titles get the same room.
const (
	maxIDLen             = 128
	minIDLen             = 3
	maxSlugLen           = 64
	maxTitleRunes        = 200
	maxDescriptionRunes  = 4000
	maxColumnDescRunes   = 1000
	maxTags              = 32
	maxTagRunes          = 64
	maxColumns           = 512
	maxColumnNameLen     = 63 // PostgreSQL's identifier limit; longer names get truncated by engines.
	maxStandardSchemaLen = 128
	maxHolderRunes       = 200
	maxRegistrationRef   = 128
	maxPurposes          = 32
)

const (
	// MaxMinGroupSize bounds a dataset's own k (min_group_size): a larger
	// floor would suppress practically every group.
	MaxMinGroupSize = 1000
	// MaxNoiseEpsilon bounds a dataset's noise_epsilon: above it the noise
	// protects next to nothing.
	MaxNoiseEpsilon = 10.0
)

// Sectors are the sectors a dataset may belong to. Do not modify.
var Sectors = []string{
	"civil-affairs",
	"health",
	"transport",
	"connected-vehicles",
	"fintech",
	"industrial-internet",
	"environment",
	"economy",
	"education",
	"public-security",
	"agriculture",
	"culture-tourism",
	"urban-management",
	"energy",
	"market-regulation",
}

// TrialSectors are the sectors of Lingang's low-risk cross-border data
// trial; only GENERAL datasets in them may be marked cross-border eligible.
// Do not modify.
var TrialSectors = []string{"connected-vehicles", "fintech", "industrial-internet"}

// ColumnTypes are the column types, in upper case. They are the portable
// subset that every member city's query engine maps the same way.
// Do not modify.
var ColumnTypes = []string{"BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "DATE", "TIMESTAMP"}

// UpdateFrequencies are the allowed values of update_frequency. Do not modify.
var UpdateFrequencies = []string{"realtime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular"}

var (
	idRE             = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	slugRE           = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
	standardSchemaRE = regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9-]+)*\.v[0-9]+$`)
)

// FieldError and Errors name problems by proto field path (see fielderr).
type (
	FieldError = fielderr.FieldError
	Errors     = fielderr.Errors
)

type checker struct{ errs Errors }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the publisher-supplied fields of d and returns nil or an
// Errors listing every problem. It does no I/O.
//
// Validate normalises d in place, and only in these two ways, so that the
// catalog stores one spelling: known column types are upper-cased
// ("varchar" → "VARCHAR") and an unspecified identifier_role becomes
// IDENTIFIER_NONE. The server-set fields (version, created_at, updated_at,
// retired, retired_at) are not checked because the catalog overwrites them,
// though they count towards MaxDatasetBytes.
func Validate(d *yrdv1.Dataset) error {
	if d == nil {
		return Errors{{Msg: "dataset is required"}}
	}
	c := &checker{}
	if msg := checkID(d.GetId()); msg != "" {
		c.add("id", "%s", msg)
	}
	c.ownerCity(d.GetOwnerCity())
	c.slug("owner_org", d.GetOwnerOrg(), true, `"sh-civil-affairs"`)
	c.text("title", d.GetTitle(), true, maxTitleRunes, false)
	c.text("description", d.GetDescription(), false, maxDescriptionRunes, true)
	c.tags(d.GetTags())
	c.sector(d.GetSector())
	c.level(d.GetLevel())
	c.schema(d.GetSchema())
	c.standardSchemaID(d.GetStandardSchemaId())
	if f := d.GetUpdateFrequency(); f != "" && !slices.Contains(UpdateFrequencies, f) {
		c.add("update_frequency", "unknown frequency %s, want one of %s", show(f), strings.Join(UpdateFrequencies, ", "))
	}
	c.dataRights(d.GetDataRights())
	c.purposes(d.GetPermittedPurposes())
	c.privacy(d)
	if d.GetCrossBorderEligible() && (d.GetLevel() != yrdv1.ClassificationLevel_LEVEL_GENERAL || !slices.Contains(TrialSectors, d.GetSector())) {
		c.add("cross_border_eligible", "allowed only for GENERAL datasets in a Lingang cross-border trial sector (%s), but this dataset is %s in sector %s",
			strings.Join(TrialSectors, ", "), levelName(d.GetLevel()), show(d.GetSector()))
	}
	if n := proto.Size(d); n > MaxDatasetBytes {
		c.add("", "dataset is %d bytes encoded, at most %d (MaxDatasetBytes)", n, MaxDatasetBytes)
	}
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

// ValidateID checks a dataset id, as named in get and retire requests. It
// returns nil or a *FieldError for field "id".
func ValidateID(id string) error {
	if msg := checkID(id); msg != "" {
		return &FieldError{Field: "id", Msg: msg}
	}
	return nil
}

func checkID(id string) string {
	const form = `want lowercase dot-separated segments of a-z, 0-9 and inner '-', e.g. "shanghai.civil-affairs.elderly-population"`
	switch {
	case id == "":
		return "required, " + form
	case len(id) < minIDLen || len(id) > maxIDLen:
		return fmt.Sprintf("%s is %d characters, want %d to %d", show(id), len(id), minIDLen, maxIDLen)
	case !idRE.MatchString(id):
		return fmt.Sprintf("invalid id %s, %s", show(id), form)
	}
	return ""
}

func (c *checker) ownerCity(id string) {
	const form = `must be a delta city id such as "shanghai", "hangzhou" or "suzhou-js"`
	if id == "" {
		c.add("owner_city", "required, %s", form)
		return
	}
	if _, ok := cities.Lookup(id); ok {
		return
	}
	// A name shared by two cities ("Suzhou", "Taizhou") is the likely mistake,
	// so name the candidates.
	var cands []string
	for _, city := range cities.All() {
		if strings.EqualFold(city.Name, id) || city.NameZh == id {
			cands = append(cands, fmt.Sprintf("%q (%s, %s)", city.ID, city.NameZh, city.Province))
		}
	}
	if len(cands) > 0 {
		c.add("owner_city", "unknown city %s (did you mean %s?), %s", show(id), strings.Join(cands, " or "), form)
		return
	}
	c.add("owner_city", "unknown city %s, %s", show(id), form)
}

func (c *checker) slug(field, s string, required bool, example string) {
	switch {
	case s == "":
		if required {
			c.add(field, "required, want a slug of lowercase letters, digits and inner '-', e.g. %s", example)
		}
	case len(s) > maxSlugLen:
		c.add(field, "%s is %d characters, at most %d", show(s), len(s), maxSlugLen)
	case !slugRE.MatchString(s):
		c.add(field, "invalid slug %s, want at least 2 lowercase letters, digits and inner '-', e.g. %s", show(s), example)
	}
}

// text checks free text. multiline allows \n and \t, which a description
// needs and a title does not.
func (c *checker) text(field, s string, required bool, maxRunes int, multiline bool) {
	if !utf8.ValidString(s) {
		c.add(field, "is not valid UTF-8")
		return
	}
	if required && strings.TrimSpace(s) == "" {
		c.add(field, "required")
		return
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		c.add(field, "is %d characters, at most %d", n, maxRunes)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			if multiline {
				c.add(field, "contains control character %U, only newline and tab are allowed", r)
			} else {
				c.add(field, "contains control character %U", r)
			}
			return
		}
	}
}

func (c *checker) tags(tags []string) {
	if len(tags) > maxTags {
		c.add("tags", "has %d tags, at most %d", len(tags), maxTags)
	}
	seen := make(map[string]int, len(tags))
	for i, t := range tags {
		field := indexedPath(tagPaths(), "tags", i)
		if msg := checkTag(t); msg != "" {
			c.add(field, "%s", msg)
			continue
		}
		if j, dup := seen[t]; dup {
			c.add(field, "duplicate of tags[%d] %s", j, show(t))
			continue
		}
		seen[t] = i
	}
}

func checkTag(t string) string {
	const form = `want lowercase letters, digits, '-' or '_', e.g. "elderly-care" or "养老"`
	if !utf8.ValidString(t) {
		return "is not valid UTF-8"
	}
	n := utf8.RuneCountInString(t)
	if n == 0 {
		return "empty tag"
	}
	if n > maxTagRunes {
		return fmt.Sprintf("%s is %d characters, at most %d", show(t), n, maxTagRunes)
	}
	for _, r := range t {
		// Letters without case (Chinese) pass the lowercase test.
		ok := r == '-' || r == '_' || unicode.IsDigit(r) || unicode.IsMark(r) ||
			(unicode.IsLetter(r) && unicode.ToLower(r) == r)
		if !ok {
			return fmt.Sprintf("invalid tag %s, %s", show(t), form)
		}
	}
	return ""
}

func (c *checker) sector(s string) {
	if s == "" {
		c.add("sector", "required, want one of %s", strings.Join(Sectors, ", "))
		return
	}
	if !slices.Contains(Sectors, s) {
		c.add("sector", "unknown sector %s, want one of %s", show(s), strings.Join(Sectors, ", "))
	}
}

const levelChoices = "GENERAL, IMPORTANT or CORE"

func (c *checker) level(l yrdv1.ClassificationLevel) {
	switch l {
	case yrdv1.ClassificationLevel_LEVEL_GENERAL, yrdv1.ClassificationLevel_LEVEL_IMPORTANT, yrdv1.ClassificationLevel_LEVEL_CORE:
	case yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED:
		c.add("level", "required, want %s", levelChoices)
	default:
		c.add("level", "unknown level %d, want %s", int32(l), levelChoices)
	}
}

// levelName is the short name publishers write, or the number if unknown.
func levelName(l yrdv1.ClassificationLevel) string {
	switch l {
	case yrdv1.ClassificationLevel_LEVEL_GENERAL:
		return "GENERAL"
	case yrdv1.ClassificationLevel_LEVEL_IMPORTANT:
		return "IMPORTANT"
	case yrdv1.ClassificationLevel_LEVEL_CORE:
		return "CORE"
	case yrdv1.ClassificationLevel_CLASSIFICATION_LEVEL_UNSPECIFIED:
		return "unspecified"
	}
	return fmt.Sprintf("level %d", int32(l))
}

func (c *checker) schema(s *yrdv1.Schema) {
	if s == nil {
		c.add("schema", "required, want at least one column")
		return
	}
	cols := s.GetColumns()
	switch {
	case len(cols) == 0:
		c.add("schema.columns", "required, want at least one column")
	case len(cols) > maxColumns:
		c.add("schema.columns", "has %d columns, at most %d", len(cols), maxColumns)
	}
	seen := make(map[string]int, len(cols))
	for i, col := range cols {
		p := columnPathsFor(i)
		if col == nil {
			c.add(p.column, "missing column")
			continue
		}
		c.columnName(p.name, col.GetName(), i, seen)
		c.columnType(p.typ, col)
		c.personalInfo(p.column, col)
		c.generalisation(p.column, col)
		c.sumBound(p.column, col)
		c.text(p.description, col.GetDescription(), false, maxColumnDescRunes, true)
	}
}

// generalisation checks that a column's generalisation fits it: only a
// QUASI identifier is generalised, a band needs a numeric column, a prefix
// a string and a truncation a date or timestamp.
func (c *checker) generalisation(p string, col *yrdv1.Column) {
	g := col.GetGeneralise()
	if g == nil {
		return
	}
	field := p + ".generalise"
	if col.GetIdentifierRole() != yrdv1.IdentifierRole_IDENTIFIER_QUASI {
		c.add(field, "only a QUASI identifier is generalised, and %s is %s", show(col.GetName()),
			strings.TrimPrefix(col.GetIdentifierRole().String(), "IDENTIFIER_"))
		return
	}
	typ := strings.ToUpper(col.GetType())
	switch r := g.GetRule().(type) {
	case *yrdv1.Generalisation_BandWidth:
		if !(r.BandWidth > 0 && !math.IsInf(r.BandWidth, 1)) {
			c.add(field+".band_width", "%v is out of range: want a finite width above 0", r.BandWidth)
		} else if !numericType(typ) {
			c.add(field+".band_width", "bands need a numeric column, and %s is %s", show(col.GetName()), typ)
		} else if (typ == "INTEGER" || typ == "BIGINT") && r.BandWidth != math.Trunc(r.BandWidth) {
			c.add(field+".band_width", "%v: bands of an integer column have a whole width", r.BandWidth)
		}
	case *yrdv1.Generalisation_PrefixLength:
		if r.PrefixLength == 0 || r.PrefixLength > 64 {
			c.add(field+".prefix_length", "%d is out of range: want 1 to 64 characters", r.PrefixLength)
		} else if typ != "VARCHAR" {
			c.add(field+".prefix_length", "a prefix needs a VARCHAR column, and %s is %s", show(col.GetName()), typ)
		}
	case *yrdv1.Generalisation_Truncate:
		switch {
		case r.Truncate != yrdv1.DateTruncation_DATE_TRUNCATION_MONTH && r.Truncate != yrdv1.DateTruncation_DATE_TRUNCATION_YEAR:
			c.add(field+".truncate", "unknown value %d, want MONTH or YEAR", int32(r.Truncate))
		case typ != "DATE" && typ != "TIMESTAMP":
			c.add(field+".truncate", "truncation needs a DATE or TIMESTAMP column, and %s is %s", show(col.GetName()), typ)
		}
	default:
		c.add(field, "empty: want band_width, prefix_length or truncate")
	}
}

// sumBound checks a column's clamp bound for noisy sums.
func (c *checker) sumBound(p string, col *yrdv1.Column) {
	b := col.GetSumBound()
	if b == 0 {
		return
	}
	switch {
	case !(b > 0 && !math.IsInf(b, 1)):
		c.add(p+".sum_bound", "%v is out of range: want 0 (the dataset's noise_sum_bound) or a finite number above 0", b)
	case !numericType(strings.ToUpper(col.GetType())):
		c.add(p+".sum_bound", "only numeric columns are summed, and %s is %s", show(col.GetName()), col.GetType())
	}
}

func numericType(upper string) bool {
	switch upper {
	case "INTEGER", "BIGINT", "DOUBLE", "DECIMAL":
		return true
	}
	return false
}

func (c *checker) columnName(field, name string, i int, seen map[string]int) {
	switch {
	case name == "":
		c.add(field, "required")
		return
	case len(name) > maxColumnNameLen:
		c.add(field, "%s is %d characters, at most %d", show(name), len(name), maxColumnNameLen)
	case !isColumnName(name):
		c.add(field, "invalid column name %s, want lowercase letters, digits and '_', not starting with a digit, e.g. \"person_id\"", show(name))
	}
	if j, dup := seen[name]; dup {
		c.add(field, "duplicate of schema.columns[%d].name %s", j, show(name))
		return
	}
	seen[name] = i
}

func (c *checker) columnType(field string, col *yrdv1.Column) {
	t := col.GetType()
	if t == "" {
		c.add(field, "required, want one of %s", strings.Join(ColumnTypes, ", "))
		return
	}
	up := strings.ToUpper(t)
	if !slices.Contains(ColumnTypes, up) {
		c.add(field, "unknown type %s, want one of %s", show(t), strings.Join(ColumnTypes, ", "))
		return
	}
	col.Type = up
}

func (c *checker) personalInfo(p string, col *yrdv1.Column) {
	pi, role := col.GetPersonalInfo(), col.GetIdentifierRole()
	switch pi {
	case yrdv1.PersonalInfo_PERSONAL_INFO_NONE, yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL, yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE:
	case yrdv1.PersonalInfo_PERSONAL_INFO_UNSPECIFIED:
		// No default: under PIPL the publisher must decide, and a silent NONE
		// would be a claim nobody made.
		c.add(p+".personal_info", "required: publishers must state whether the column holds personal information (NONE, PERSONAL or SENSITIVE)")
	default:
		c.add(p+".personal_info", "unknown value %d, want NONE, PERSONAL or SENSITIVE", int32(pi))
	}
	switch role {
	case yrdv1.IdentifierRole_IDENTIFIER_ROLE_UNSPECIFIED:
		col.IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_NONE
	case yrdv1.IdentifierRole_IDENTIFIER_NONE:
	case yrdv1.IdentifierRole_IDENTIFIER_DIRECT, yrdv1.IdentifierRole_IDENTIFIER_QUASI:
		if pi == yrdv1.PersonalInfo_PERSONAL_INFO_NONE {
			c.add(p+".personal_info", "is NONE but identifier_role is %s: an identifier of a person is personal information, so want PERSONAL or SENSITIVE",
				strings.TrimPrefix(role.String(), "IDENTIFIER_"))
		}
	default:
		c.add(p+".identifier_role", "unknown value %d, want NONE, DIRECT or QUASI", int32(role))
	}
}

func (c *checker) standardSchemaID(s string) {
	switch {
	case s == "":
	case len(s) > maxStandardSchemaLen:
		c.add("standard_schema_id", "%s is %d characters, at most %d", show(s), len(s), maxStandardSchemaLen)
	case !standardSchemaRE.MatchString(s):
		c.add("standard_schema_id", "invalid standard schema id %s, want dot-separated lowercase segments ending in a version, e.g. \"yrd.elderly-population.v1\"", show(s))
	}
}

func (c *checker) dataRights(r *yrdv1.DataRights) {
	if r == nil {
		c.add("data_rights", "required, state at least the holder of the data rights")
		return
	}
	c.text("data_rights.holder", r.GetHolder(), true, maxHolderRunes, false)
	c.text("data_rights.registration_ref", r.GetRegistrationRef(), false, maxRegistrationRef, false)
}

func (c *checker) purposes(ps []string) {
	if len(ps) > maxPurposes {
		c.add("permitted_purposes", "has %d purposes, at most %d", len(ps), maxPurposes)
	}
	seen := make(map[string]int, len(ps))
	for i, p := range ps {
		field := fmt.Sprintf("permitted_purposes[%d]", i)
		if p == "" {
			c.add(field, "empty purpose, want a slug such as \"elderly-care-planning\"")
			continue
		}
		n := len(c.errs)
		c.slug(field, p, true, `"elderly-care-planning"`)
		if len(c.errs) > n {
			continue
		}
		if j, dup := seen[p]; dup {
			c.add(field, "duplicate of permitted_purposes[%d] %s", j, show(p))
			continue
		}
		seen[p] = i
	}
}

// privacy checks the dataset's own disclosure controls: its k, which may
// only raise the policy's (the policy engine takes the larger), and the
// parameters of the noise added to its aggregates.
func (c *checker) privacy(d *yrdv1.Dataset) {
	if k := d.GetMinGroupSize(); k > MaxMinGroupSize {
		c.add("min_group_size", "%d is above %d; 0 means the policy's default, and a dataset may only raise it", k, MaxMinGroupSize)
	}
	// NaN fails every comparison, so each range test is written to pass
	// only numbers inside it.
	if e := d.GetNoiseEpsilon(); !(e >= 0 && e <= MaxNoiseEpsilon) {
		c.add("noise_epsilon", "%v is out of range: want 0 (no noise) or a finite number above 0 and at most %v", e, MaxNoiseEpsilon)
	}
	if b := d.GetNoiseSumBound(); !(b >= 0 && !math.IsInf(b, 1)) {
		c.add("noise_sum_bound", "%v is out of range: want a finite number ≥ 0 (0 refuses sums while noise is on)", b)
	}
}

// show quotes a value for an error message, shortened so that a huge bad
// value does not drown the other errors.
func show(s string) string {
	const max = 48
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	rs := []rune(s)
	return fmt.Sprintf("%q…", string(rs[:max]))
}

// isColumnName reports whether name matches ^[a-z_][a-z0-9_]*$. It runs for
// every column of every write, where the regexp cost more than the rest of
// the column's checks together.
func isColumnName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(b >= 'a' && b <= 'z' || b == '_' || i > 0 && b >= '0' && b <= '9') {
			return false
		}
	}
	return true
}

// Field paths of list elements are built once rather than on every write:
// they are needed only to name a problem, but are passed to every check.

type columnPaths struct{ column, name, typ, description string }

var columnPathTable = sync.OnceValue(func() []columnPaths {
	t := make([]columnPaths, maxColumns)
	for i := range t {
		t[i] = newColumnPaths(i)
	}
	return t
})

func newColumnPaths(i int) columnPaths {
	p := fmt.Sprintf("schema.columns[%d]", i)
	return columnPaths{column: p, name: p + ".name", typ: p + ".type", description: p + ".description"}
}

func columnPathsFor(i int) columnPaths {
	if t := columnPathTable(); i < len(t) {
		return t[i]
	}
	return newColumnPaths(i)
}

var tagPaths = sync.OnceValue(func() []string {
	t := make([]string, maxTags)
	for i := range t {
		t[i] = fmt.Sprintf("tags[%d]", i)
	}
	return t
})

// indexedPath is table[i], or name[i] built now for an index beyond it.
func indexedPath(table []string, name string, i int) string {
	if i < len(table) {
		return table[i]
	}
	return fmt.Sprintf("%s[%d]", name, i)
}
