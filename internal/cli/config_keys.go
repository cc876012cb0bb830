package cli

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/yrd-exchange/yrdnode/node"
)

// setting is one scalar or list setting of fileConfig: a leaf that an
// environment variable can set. Data mappings (data.files,
// data.postgres.tables) are tables, set only in the file.
type setting struct {
	key   string // its key path, e.g. "query.timeout"
	cfg   string // the node.Config field it sets, e.g. "QueryTimeout"; "" if none
	typ   reflect.Type
	index []int // field indexes from fileConfig, through pointers
	// inPointer: the setting is in an optional section (data.postgres),
	// which exists only if something sets it.
	inPointer bool
}

// envName is the environment variable that overrides the setting.
func (s setting) envName() string {
	return "YRDNODE_" + strings.ToUpper(strings.ReplaceAll(s.key, ".", "_"))
}

var durationType = reflect.TypeFor[duration]()

// settings lists every setting of fileConfig, in declaration order.
var settings = sync.OnceValue(func() []setting {
	return collectSettings(reflect.TypeFor[fileConfig](), "", nil, false)
})

func collectSettings(t reflect.Type, prefix string, index []int, inPointer bool) []setting {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		key, idx := prefix+name, append(append([]int(nil), index...), i)
		ft, ptr := f.Type, inPointer
		if ft.Kind() == reflect.Pointer {
			ft, ptr = ft.Elem(), true
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			out = append(out, collectSettings(ft, key+".", idx, ptr)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			// a data mapping: file only
		default:
			out = append(out, setting{key: key, cfg: f.Tag.Get("cfg"), typ: f.Type, index: idx, inPointer: inPointer})
		}
	}
	return out
}

// tomlName is a field's key: its toml tag up to any option.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// settingFor finds the setting with key.
func settingFor(key string) (setting, bool) {
	for _, s := range settings() {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// field is the setting's value in root (a fileConfig). With alloc it
// creates the sections on the way that are nil pointers; without, it
// reports false at one.
func (s setting) field(root reflect.Value, alloc bool) (reflect.Value, bool) {
	v := root
	for n, i := range s.index {
		v = v.Field(i)
		if v.Kind() == reflect.Pointer && n < len(s.index)-1 {
			if v.IsNil() {
				if !alloc {
					return reflect.Value{}, false
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
	}
	return v, true
}

// set parses text as the setting's type and stores it in root: lists are
// comma-separated, booleans true or false.
func (s setting) set(root reflect.Value, text string) error {
	v, _ := s.field(root, true)
	if s.typ == durationType {
		var d duration
		if err := d.UnmarshalText([]byte(text)); err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	bad := fmt.Errorf("%q is not %s", text, describe(s.typ))
	switch s.typ.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return bad
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return bad
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return bad
		}
		v.SetUint(n)
	case reflect.Slice:
		var list []string
		for _, p := range strings.Split(text, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("cannot be set from text (type %s)", s.typ)
	}
	return nil
}

// describe says what a value of type t looks like in the file.
func describe(t reflect.Type) string {
	if t == durationType {
		return durationHelp
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Uint64:
		return "a non-negative integer"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "an array of tables"
		}
		return `an array of strings, e.g. ["a", "b"]`
	case reflect.Pointer, reflect.Struct:
		return "a table"
	}
	return t.String()
}

// expected says what key (any key of the file, indexes left out) takes,
// or "" for a key the file does not have.
func expected(key string) string {
	t := reflect.TypeFor[fileConfig]()
	for part := range strings.SplitSeq(key, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		f, ok := fieldByTOMLName(t, part)
		if !ok {
			return ""
		}
		t = f.Type
	}
	return describe(t)
}

func fieldByTOMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); tomlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// cfgField is the node.Config field at a dotted path such as
// "Raft.HeartbeatTimeout".
func cfgField(cfg reflect.Value, path string) reflect.Value {
	for name := range strings.SplitSeq(path, ".") {
		cfg = cfg.FieldByName(name)
	}
	return cfg
}

// defaultFileConfig is the settings of node.DefaultConfig, as a file.
func defaultFileConfig() fileConfig {
	fc := fileConfig{Log: logSection{Level: "info", Format: "text"}}
	fv, cv := reflect.ValueOf(&fc).Elem(), reflect.ValueOf(node.DefaultConfig())
	for _, s := range settings() {
		if s.cfg == "" {
			continue
		}
		dst, _ := s.field(fv, true)
		dst.Set(cfgField(cv, s.cfg).Convert(dst.Type()))
	}
	return fc
}

// applySettings copies every setting that has a node.Config field into cfg.
func applySettings(fc *fileConfig, cfg *node.Config) {
	fv, cv := reflect.ValueOf(fc).Elem(), reflect.ValueOf(cfg).Elem()
	for _, s := range settings() {
		if s.cfg == "" {
			continue
		}
		if src, ok := s.field(fv, false); ok {
			dst := cfgField(cv, s.cfg)
			if src.Kind() == reflect.Slice {
				src = reflect.ValueOf(append([]string(nil), src.Interface().([]string)...))
			}
			dst.Set(src.Convert(dst.Type()))
		}
	}
}

// keyLines maps each key of a file to its line: "query.timeout",
// "data.files[1]" (an element of an array of tables), "data.files[1].paths".
type keyLines map[string]int

// line finds key's line, or that of the nearest enclosing key the file has.
func (l keyLines) line(key string) (int, bool) {
	for key != "" {
		if n, ok := l[key]; ok {
			return n, true
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0, false
}

// indexKeys finds the line of every key in a TOML document.
func indexKeys(data []byte) (keyLines, error) {
	lines := keyLines{}
	next := map[string]int{} // array of tables → index of its next element
	var p unstable.Parser
	p.Reset(data)
	prefix := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			key, line := keyOf(&p, e)
			prefix = key
			if e.Kind == unstable.ArrayTable {
				prefix = fmt.Sprintf("%s[%d]", key, next[key])
				next[key]++
			}
			lines.add(key, line)
			lines.add(prefix, line)
		case unstable.KeyValue:
			indexKeyValue(&p, e, prefix, lines)
		}
	}
	return lines, p.Error()
}

// indexKeyValue records a key = value line under prefix, and the keys of
// inline tables in its value.
func indexKeyValue(p *unstable.Parser, e *unstable.Node, prefix string, lines keyLines) {
	key, line := keyOf(p, e)
	if prefix != "" {
		key = prefix + "." + key
	}
	lines.add(key, line)
	v := e.Value()
	switch v.Kind {
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			indexKeyValue(p, it.Node(), key, lines)
		}
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			if n := it.Node(); n.Kind == unstable.InlineTable {
				elem := fmt.Sprintf("%s[%d]", key, i)
				lines.add(elem, line)
				for kv := n.Children(); kv.Next(); {
					indexKeyValue(p, kv.Node(), elem, lines)
				}
				i++
			}
		}
	}
}

// keyOf is the dotted key of a table header or key/value and its line.
func keyOf(p *unstable.Parser, e *unstable.Node) (string, int) {
	var parts []string
	line := 0
	for it := e.Key(); it.Next(); {
		n := it.Node()
		if line == 0 {
			line = p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	return strings.Join(parts, "."), line
}

func (l keyLines) add(key string, line int) {
	if _, ok := l[key]; !ok && line > 0 {
		l[key] = line
	}
}
