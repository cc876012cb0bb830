package sqlq

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // unquoted identifier or keyword; val is lower-cased
	tQIdent         // double-quoted identifier; val is unescaped, case kept
	tString         // single-quoted string; val is unescaped
	tNumber         // unsigned number; val is the text
	tSource         // what follows FROM, unquoted: a dataset id or family:<id>
	tPunct          // an operator or punctuation; val is its text
)

// token is one lexical token. line and col are 1-based and count runes, so
// that an error points where an editor's cursor would be.
type token struct {
	kind tokKind
	val  string
	raw  string // the text as written, for error messages
	line int
	col  int
}

// lexer produces tokens on demand rather than all at once: what follows FROM
// is lexed differently (dataset ids contain hyphens), and an error is then
// reported at the first offending character, not at a later one a full
// pre-scan would trip over first.
type lexer struct {
	src  string
	off  int
	line int
	col  int
}

func newLexer(src string) lexer {
	return lexer{src: src, line: 1, col: 1}
}

func (l *lexer) peek() (rune, int) {
	if l.off >= len(l.src) {
		return -1, 0
	}
	return utf8.DecodeRuneInString(l.src[l.off:])
}

func (l *lexer) peekAt(n int) byte {
	if l.off+n >= len(l.src) {
		return 0
	}
	return l.src[l.off+n]
}

func (l *lexer) step(r rune, size int) {
	l.off += size
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
}

func (l *lexer) failAt(line, col int, format string, args ...any) {
	panic(&SyntaxError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// checkText rejects what may not appear even inside strings, quoted names
// and comments. Invalid UTF-8 could not be carried in a proto string field.
// Control characters and bidirectional overrides would let the query that
// reviewers read in the audit trail differ from the one that runs.
func (l *lexer) checkText(r rune, size int) {
	switch {
	case r == utf8.RuneError && size == 1:
		l.failAt(l.line, l.col, "invalid UTF-8 byte 0x%02x", l.src[l.off])
	case (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0):
		l.failAt(l.line, l.col, "control character U+%04X is not allowed", r)
	case (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
		l.failAt(l.line, l.col, "bidirectional control character U+%04X is not allowed", r)
	}
}

// skipSpace skips white space (any Unicode space, so that the ideographic
// space of Chinese input methods is harmless) and -- comments.
func (l *lexer) skipSpace() {
	for {
		r, size := l.peek()
		switch {
		case size == 0:
			return
		case unicode.IsSpace(r) || (r == '\ufeff' && l.off == 0):
			l.step(r, size)
		case r == '-' && l.peekAt(1) == '-':
			for {
				r, size := l.peek()
				if size == 0 || r == '\n' {
					break
				}
				l.checkText(r, size)
				l.step(r, size)
			}
		case r == '/' && l.peekAt(1) == '*':
			l.failAt(l.line, l.col, "block comments are not supported; use -- comments")
		default:
			return
		}
	}
}

func isIdentStart(r rune) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

func isIdentPart(r rune) bool {
	return isIdentStart(r) || (r >= '0' && r <= '9')
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// isSourceChar reports whether r may appear in an unquoted dataset id or
// family reference.
func isSourceChar(r rune) bool {
	return isIdentPart(r) || r == '.' || r == '-' || r == ':'
}

// nextSource lexes the token after FROM. Dataset ids are dotted names with
// hyphens ("shanghai.civil-affairs.elderly-population"), which the ordinary
// rules would split into identifiers and minus signs. A run of id characters
// is taken whole, so "a.b--c" is one id, not an id and a comment.
func (l *lexer) nextSource() token {
	l.skipSpace()
	r, size := l.peek()
	if size == 0 || !isSourceChar(r) {
		return l.next()
	}
	start, line, col := l.off, l.line, l.col
	for size > 0 && isSourceChar(r) {
		l.step(r, size)
		r, size = l.peek()
	}
	text := l.src[start:l.off]
	return token{kind: tSource, val: text, raw: text, line: line, col: col}
}

// next lexes one token in the ordinary way.
func (l *lexer) next() token {
	l.skipSpace()
	start, line, col := l.off, l.line, l.col
	tok := func(kind tokKind, val string) token {
		return token{kind: kind, val: val, raw: l.src[start:l.off], line: line, col: col}
	}
	r, size := l.peek()
	switch {
	case size == 0:
		return token{kind: tEOF, line: line, col: col}
	case isIdentStart(r):
		for size > 0 && isIdentPart(r) {
			l.step(r, size)
			r, size = l.peek()
		}
		return tok(tIdent, strings.ToLower(l.src[start:l.off]))
	case isDigit(r) || (r == '.' && isDigit(rune(l.peekAt(1)))):
		l.number()
		return tok(tNumber, l.src[start:l.off])
	case r == '\'':
		return tok(tString, l.quoted('\'', "string literal"))
	case r == '"':
		s := l.quoted('"', "quoted identifier")
		if s == "" {
			l.failAt(line, col, "empty quoted identifier")
		}
		return tok(tQIdent, s)
	case r < utf8.RuneSelf:
		l.step(r, size)
		two := func(second byte) bool {
			if l.off < len(l.src) && l.src[l.off] == second {
				l.step(rune(second), 1)
				return true
			}
			return false
		}
		switch r {
		case '<':
			if !two('=') {
				two('>')
			}
		case '>':
			two('=')
		case '!':
			two('=')
		case '|':
			two('|')
		case ':':
			two(':')
		}
		if r < 0x20 || r == 0x7f {
			l.failAt(line, col, "control character U+%04X is not allowed", r)
		}
		return tok(tPunct, l.src[start:l.off])
	default:
		l.checkText(r, size)
		l.failAt(line, col, "unexpected character %q%s", r, runeHint(r))
		panic("unreachable")
	}
}

// runeHint explains the non-ASCII characters that Chinese input methods
// produce in place of SQL punctuation, and non-ASCII names.
func runeHint(r rune) string {
	switch {
	case r >= 0xff01 && r <= 0xff5e:
		return fmt.Sprintf(" (a full-width character: write %q)", r-0xfee0)
	case r == '‘' || r == '’':
		return " (a typographic quote: quote strings with ')"
	case r == '“' || r == '”':
		return " (a typographic quote: quote names with \")"
	case r == '。' || r == '、':
		return " (CJK punctuation is not SQL)"
	case unicode.IsLetter(r):
		return ` (write names with non-ASCII letters in double quotes, e.g. "人口")`
	}
	return ""
}

// number lexes digits[.digits][e[+-]digits] or .digits[e[+-]digits].
func (l *lexer) number() {
	line, col, start := l.line, l.col, l.off
	digits := func() int {
		n := 0
		for l.off < len(l.src) && isDigit(rune(l.src[l.off])) {
			l.step(rune(l.src[l.off]), 1)
			n++
		}
		return n
	}
	digits()
	if l.peekAt(0) == '.' && isDigit(rune(l.peekAt(1))) {
		l.step('.', 1)
		digits()
	}
	if c := l.peekAt(0); c == 'e' || c == 'E' {
		l.step(rune(c), 1)
		if c := l.peekAt(0); c == '+' || c == '-' {
			l.step(rune(c), 1)
		}
		if digits() == 0 {
			l.failAt(line, col, "invalid number %s: the exponent has no digits", show(l.src[start:l.off]))
		}
	}
	if r, size := l.peek(); size > 0 && isIdentPart(r) {
		for size > 0 && isIdentPart(r) {
			l.step(r, size)
			r, size = l.peek()
		}
		l.failAt(line, col, "invalid number %s", show(l.src[start:l.off]))
	}
}

// quoted lexes a string or quoted identifier, where a doubled quote stands
// for itself, and returns the unescaped text.
func (l *lexer) quoted(q rune, what string) string {
	line, col := l.line, l.col
	l.step(q, 1)
	var b strings.Builder
	for {
		r, size := l.peek()
		if size == 0 {
			l.failAt(line, col, "unterminated %s", what)
		}
		l.checkText(r, size)
		if q == '"' && (r == '\n' || r == '\r' || r == '\t') {
			// No column can have one (catalogspec), and in a name it would
			// only serve to garble the audit trail.
			l.failAt(l.line, l.col, "line breaks and tabs are not allowed in a quoted identifier")
		}
		l.step(r, size)
		if r == q {
			if r2, _ := l.peek(); r2 != q {
				return b.String()
			}
			l.step(q, 1)
		}
		b.WriteRune(r)
	}
}

// show quotes a piece of query text for a message, shortened if long.
func show(s string) string {
	return "'" + truncate(s) + "'"
}

// truncate shortens s for a message.
func truncate(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

// posAt returns the 1-based line and column of byte offset off of src.
func posAt(src string, off int) (line, col int) {
	line, col = 1, 1
	for i := 0; i < off && i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if i+size > off {
			break
		}
		i += size
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
