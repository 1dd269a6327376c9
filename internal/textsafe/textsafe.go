// Package textsafe makes text from outside rdctl (a server's error text, a
// console banner, a status line, a file's contents) safe to print on a
// terminal: whatever could move the cursor, recolour, retitle the window,
// reorder the line or hide text is shown escaped instead of acting.
package textsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every control character escaped: C0 controls
// (tab and newline included: one value, one line), DEL, C1 controls, the
// Unicode bidirectional and line/paragraph separators (which reorder or
// break what follows), and bytes that are not UTF-8. Common controls get
// their Go escapes (\n, \t, \r), the rest \xNN or \uNNNN; a backslash is
// left alone. Text with nothing to escape is returned as is, unallocated.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafe(r, n) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r, n):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafe says whether rune r (n bytes in the input) must be escaped.
func unsafe(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true // bidirectional marks, embeddings, overrides and isolates
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
