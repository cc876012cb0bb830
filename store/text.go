package store

import (
	"unicode"
	"unicode/utf8"
)

// textSig is a 512-bit Bloom-style signature of a lowercased text: one bit
// per character and per pair of adjacent non-space characters. If a word
// occurs in the text, every bit of the word's signature is set in the
// text's, so a failed subset test proves the word is absent without reading
// the text. It lets a free-text query that matches few datasets skip almost
// all of them, reading only the b-tree items that hold the signatures
// instead of chasing a pointer to every dataset's text.
//
// Bigrams make the test selective for ASCII words, whose letters alone are
// in nearly every text; unigrams cover one-character (e.g. Chinese) words.
// A very long text saturates the signature, which then only costs the
// substring check it would have needed anyway.
type textSig [8]uint64

func (s *textSig) set(h uint64) {
	h = mix64(h) >> (64 - 9) // top 9 bits: 0..511
	s[h/64] |= 1 << (h % 64)
}

// contains reports whether every bit of q is set in s.
func (s *textSig) contains(q *textSig) bool {
	for i := range s {
		if s[i]&q[i] != q[i] {
			return false
		}
	}
	return true
}

// add sets the features of text, which must already be lowercased.
func (s *textSig) add(text string) {
	prev := rune(-1)
	for len(text) > 0 {
		r, n := utf8.DecodeRuneInString(text)
		text = text[n:]
		if unicode.IsSpace(r) {
			prev = -1 // query words never span whitespace
			continue
		}
		s.set(uint64(r))
		if prev >= 0 {
			s.set(uint64(prev)<<32 | uint64(r) | 1<<63)
		}
		prev = r
	}
}

// mix64 is the splitmix64 finalizer: it spreads nearby runes over all bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
