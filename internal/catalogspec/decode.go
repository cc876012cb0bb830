package catalogspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// maxDecodeBytes bounds DecodeDataset's input. YAML with comments can be
// several times larger than the encoded Dataset, but not this much.
const maxDecodeBytes = 16 * MaxDatasetBytes

// DecodeDataset parses a dataset written as YAML or JSON, using the proto
// field names (owner_city) or their JSON names (ownerCity). Enums may be
// written short and in any case (level: general, personal_info: SENSITIVE,
// identifier_role: quasi) or by their full proto names (LEVEL_GENERAL).
// Whatever protojson.Marshal prints for a Dataset decodes to an equal one,
// so `dataset get -o json` output can be edited and published again.
//
// DecodeDataset only decodes; call Validate on the result.
func DecodeDataset(data []byte) (*yrdv1.Dataset, error) {
	if len(data) > maxDecodeBytes {
		return nil, fmt.Errorf("dataset document is %d bytes, at most %d", len(data), maxDecodeBytes)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("dataset document is not valid UTF-8 (at byte %d)", invalidUTF8At(data))
	}
	js := data
	// JSON goes straight to the JSON decoder: going through YAML would apply
	// YAML's rules to it (\u escapes of surrogate pairs, characters YAML
	// deems unprintable) and could change what the catalog printed.
	if !json.Valid(data) {
		var err error
		js, err = yaml.YAMLToJSONStrict(data)
		if err != nil {
			return nil, fmt.Errorf("parsing dataset YAML: %w", err)
		}
		if err := singleDocument(data); err != nil {
			return nil, err
		}
	}
	tree, err := parseJSON(js)
	if err != nil {
		return nil, err
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		if tree == nil {
			return nil, errors.New("dataset document is empty")
		}
		return nil, fmt.Errorf("dataset document is %s, want a mapping of fields", describe(tree))
	}
	md := (&yrdv1.Dataset{}).ProtoReflect().Descriptor()
	if err := rewriteMessage(md, obj, ""); err != nil {
		return nil, err
	}
	js, err = json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("decoding dataset: %w", err)
	}
	d := &yrdv1.Dataset{}
	if err := protojson.Unmarshal(js, d); err != nil {
		// The position refers to our re-encoded JSON, not the user's file,
		// and would mislead; the rest of protojson's message names the field.
		msg := protojsonPosRE.ReplaceAllString(err.Error(), "")
		return nil, fmt.Errorf("decoding dataset: %s", msg)
	}
	return d, nil
}

// DecodeDatasetFile decodes a dataset file by its extension: a .json file
// strictly as JSON, its syntax errors placed by line and column (read as
// YAML, a stray comma would be reported in YAML's terms, or a broken file
// accepted); .yaml and .yml, and any other name, as DecodeDataset does.
func DecodeDatasetFile(name string, data []byte) (*yrdv1.Dataset, error) {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		if err := checkJSON(data); err != nil {
			return nil, err
		}
	}
	return DecodeDataset(data)
}

// checkJSON reports where data stops being JSON.
func checkJSON(data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("parsing dataset JSON: line %d, column %d: %v", line, col, syn)
	}
	return fmt.Errorf("parsing dataset JSON: %w", err)
}

// lineCol turns a byte offset into a 1-based line and column (in runes).
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
	if col == 0 {
		col = 1
	}
	return line, col
}

// protojson separates its prefix with a space or, at random, U+00A0 so
// that nobody relies on its wording; match both.
var protojsonPosRE = regexp.MustCompile(`^proto:[\s\x{a0}]*(\(line \d+:\d+\):[\s\x{a0}]*)?`)

// singleDocument rejects a YAML stream with more than one document.
// YAMLToJSON reads only the first, and publishing the first of several
// datasets without a word would surprise whoever wrote the file.
func singleDocument(data []byte) error {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	for n := 0; ; n++ {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("parsing dataset YAML: %w", err)
		}
		if v != nil && n > 0 {
			return errors.New("dataset YAML has more than one document, publish one dataset per file")
		}
	}
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// parseJSON decodes JSON into maps, slices, strings, bools, json.Number and
// nil. Unlike json.Unmarshal into any, it rejects duplicate keys: with two
// "level" keys, silently keeping the last could publish the wrong level.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, fmt.Errorf("parsing dataset JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parsing dataset JSON: data after the top-level value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // the decoder only yields string keys
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("duplicate key %q at byte %d", k, dec.InputOffset())
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return tok, nil
}

// enumAliases maps, per enum, every accepted upper-case spelling to the
// proto name. Publishers think "level: CORE", not "LEVEL_CORE".
var enumAliases = map[protoreflect.FullName]struct {
	names   map[string]string
	choices string
}{
	yrdv1.ClassificationLevel(0).Descriptor().FullName(): {
		names: withFullNames(yrdv1.ClassificationLevel(0).Descriptor(), map[string]string{
			"GENERAL":   "LEVEL_GENERAL",
			"IMPORTANT": "LEVEL_IMPORTANT",
			"CORE":      "LEVEL_CORE",
		}),
		choices: levelChoices,
	},
	yrdv1.PersonalInfo(0).Descriptor().FullName(): {
		names: withFullNames(yrdv1.PersonalInfo(0).Descriptor(), map[string]string{
			"NONE":               "PERSONAL_INFO_NONE",
			"PERSONAL":           "PERSONAL_INFO_PERSONAL",
			"SENSITIVE":          "PERSONAL_INFO_SENSITIVE",
			"SENSITIVE_PERSONAL": "PERSONAL_INFO_SENSITIVE",
		}),
		choices: "NONE, PERSONAL or SENSITIVE",
	},
	yrdv1.IdentifierRole(0).Descriptor().FullName(): {
		names: withFullNames(yrdv1.IdentifierRole(0).Descriptor(), map[string]string{
			"NONE":   "IDENTIFIER_NONE",
			"DIRECT": "IDENTIFIER_DIRECT",
			"QUASI":  "IDENTIFIER_QUASI",
		}),
		choices: "NONE, DIRECT or QUASI",
	},
	yrdv1.DateTruncation(0).Descriptor().FullName(): {
		names: withFullNames(yrdv1.DateTruncation(0).Descriptor(), map[string]string{
			"MONTH": "DATE_TRUNCATION_MONTH",
			"YEAR":  "DATE_TRUNCATION_YEAR",
		}),
		choices: "MONTH or YEAR",
	},
}

func withFullNames(ed protoreflect.EnumDescriptor, short map[string]string) map[string]string {
	vals := ed.Values()
	for i := range vals.Len() {
		n := string(vals.Get(i).Name())
		short[n] = n
	}
	return short
}

// rewriteMessage walks obj against md before protojson sees it: it rewrites
// short enum names and reports wrong shapes and unknown fields with the
// field path, where protojson would report a position in JSON the user
// never wrote.
func rewriteMessage(md protoreflect.MessageDescriptor, obj map[string]any, path string) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic: report the same error every time
	fields := md.Fields()
	for _, k := range keys {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k))
		}
		if fd == nil {
			names := make([]string, fields.Len())
			for i := range fields.Len() {
				names[i] = string(fields.Get(i).Name())
			}
			return &FieldError{Field: join(path, k), Msg: "unknown field, want one of " + strings.Join(names, ", ")}
		}
		v := obj[k]
		if v == nil || fd.IsMap() {
			continue // null means unset; maps are left to protojson
		}
		fpath := join(path, string(fd.Name()))
		if fd.IsList() {
			arr, ok := v.([]any)
			if !ok {
				return &FieldError{Field: fpath, Msg: fmt.Sprintf("want a list, got %s", describe(v))}
			}
			for i, e := range arr {
				epath := fmt.Sprintf("%s[%d]", fpath, i)
				if e == nil {
					return &FieldError{Field: epath, Msg: "null is not allowed in a list"}
				}
				ne, err := rewriteValue(fd, e, epath)
				if err != nil {
					return err
				}
				arr[i] = ne
			}
			continue
		}
		nv, err := rewriteValue(fd, v, fpath)
		if err != nil {
			return err
		}
		obj[k] = nv
	}
	return nil
}

func rewriteValue(fd protoreflect.FieldDescriptor, v any, path string) (any, error) {
	bad := func(want string) (any, error) {
		return nil, &FieldError{Field: path, Msg: fmt.Sprintf("want %s, got %s", want, describe(v))}
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			return v, nil // well-known types have their own JSON forms
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("a mapping")
		}
		return obj, rewriteMessage(fd.Message(), obj, path)
	case protoreflect.EnumKind:
		switch v := v.(type) {
		case json.Number:
			// protojson would take level: 3 as CORE. A classification
			// written as a number is too easy to get wrong; only names.
			return nil, &FieldError{Field: path, Msg: fmt.Sprintf("want %s, got the number %s (write the name)", enumChoices(fd.Enum()), v)}
		case string:
			a, ok := enumAliases[fd.Enum().FullName()]
			if !ok {
				return v, nil
			}
			if n, ok := a.names[strings.ToUpper(v)]; ok {
				return n, nil
			}
			return nil, &FieldError{Field: path, Msg: fmt.Sprintf("unknown value %s, want %s", show(v), a.choices)}
		}
		return bad(enumChoices(fd.Enum()))
	case protoreflect.StringKind:
		switch v.(type) {
		case string:
		case json.Number, bool:
			// YAML reads 2024 as a number and yes as a boolean; converting
			// them back would guess at what was written (1.50 → 1.5).
			return nil, &FieldError{Field: path, Msg: fmt.Sprintf("want a string, got %s (in YAML, quote it)", describe(v))}
		default:
			return bad("a string")
		}
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return bad("true or false")
		}
	case protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			return bad("a base64 string")
		}
	default: // numbers: protojson accepts a number or a quoted number
		switch v.(type) {
		case json.Number, string:
		default:
			return bad("a number")
		}
	}
	return v, nil
}

// enumChoices names the values an enum field takes, as publishers write
// them.
func enumChoices(ed protoreflect.EnumDescriptor) string {
	if a, ok := enumAliases[ed.FullName()]; ok {
		return a.choices
	}
	vals := ed.Values()
	names := make([]string, 0, vals.Len())
	for i := range vals.Len() {
		if vals.Get(i).Number() != 0 { // the zero value means unset
			names = append(names, string(vals.Get(i).Name()))
		}
	}
	return "one of " + strings.Join(names, ", ")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "the string " + show(v)
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case json.Number:
		return "the number " + v.String()
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
