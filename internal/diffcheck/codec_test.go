package diffcheck

import (
	"bytes"
	"strings"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, s := range []*Sketch{newSketch(16), group(10, 0, 1), group(10, 0, 3000), group(2000, 0, 50)} {
		b := appendEntry(nil, t0.UnixNano(), testScheme, s)
		e, err := decodeEntry(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.time != t0.UnixNano() || string(e.scheme) != testScheme {
			t.Fatalf("time %d scheme %q", e.time, e.scheme)
		}
		if v, _ := Compare(e.sk, s, "s", "s", 1); v != Identical || e.sk.M() != s.M() {
			t.Fatalf("decoded sketch differs: %v", v)
		}
	}
}

func TestDecodeEntryRefusesMalformed(t *testing.T) {
	good := appendEntry(nil, t0.UnixNano(), "s", group(10, 0, 3))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// good: version | time(8) | 1 | 's' | 6 | N=3 | cells | ...
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":    {nil, "header"},
		"version":  {mut(func(b []byte) []byte { b[0] = 2; return b }), "version 2"},
		"scheme":   {mut(func(b []byte) []byte { b[9] = 0; return b }), "empty scheme"},
		"log2 m":   {mut(func(b []byte) []byte { b[11] = 13; return b }), "log2 m = 13"},
		"N":        {mut(func(b []byte) []byte { b[12] = 4; return b }), "N says 4"},
		"trailing": {append(bytes.Clone(good), 0), "1 bytes after"},
		"short":    {good[:len(good)-1], "cell #2 xor"},
		"count 0":  {mut(func(b []byte) []byte { b[15] = 0; return b }), "cell #0 count"},
		"parity":   {mut(func(b []byte) []byte { b[16] ^= 1; return b }), "cell #0 xor"},
	} {
		_, err := decodeEntry(tc.b, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// FuzzDecodeEntry: decoding arbitrary bytes never panics, and what it
// accepts is canonical: it encodes back to the same bytes. Decoding into a
// reused, dirty buffer gives the same sketch.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, t0.UnixNano(), testScheme, group(10, 0, 3)))
	f.Add(appendEntry(nil, 0, "x", group(10, 0, 500)))
	f.Add(appendEntry(nil, 1, "pg-hashtextextended", newSketch(4096)))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 's', 4, 0x80, 0x00, 0})
	dirty := group(10, 1000, 1100)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b, nil)
		if err != nil {
			return
		}
		if again := appendEntry(nil, e.time, string(e.scheme), e.sk); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which encodes back as %x", b, again)
		}
		reused, err := decodeEntry(b, func(m int) *Sketch {
			if m == dirty.M() {
				return dirty
			}
			return group(uint32(m/4), 0, 7)
		})
		if err != nil {
			t.Fatalf("decodes fresh but not into a buffer: %v", err)
		}
		if v, _ := Compare(reused.sk, e.sk, "s", "s", 1); v != Identical {
			t.Fatal("decoding into a used buffer gives another sketch")
		}
	})
}
