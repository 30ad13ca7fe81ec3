package addressing

import "strings"

// hexDigits renders escape sequences; XEP-0106 writes them in lower case.
const hexDigits = "0123456789abcdef"

// needsEscape reports whether c is one of the nine characters that XEP-0106
// always escapes (the backslash is handled separately).
func needsEscape(c byte) bool {
	switch c {
	case ' ', '"', '&', '\'', '/', ':', '<', '>', '@':
		return true
	}
	return false
}

// unhex returns the value of the hexadecimal digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// escapeSeqAt reports whether s[i:] starts with one of the ten XEP-0106
// escape sequences (\20 \22 \26 \27 \2f \3a \3c \3e \40 \5c, hex digits in
// either case) and returns the character it stands for.
func escapeSeqAt(s string, i int) (byte, bool) {
	if i+2 >= len(s) || s[i] != '\\' {
		return 0, false
	}
	h, l := unhex(s[i+1]), unhex(s[i+2])
	if h < 0 || l < 0 {
		return 0, false
	}
	c := byte(h<<4 | l)
	if needsEscape(c) || c == '\\' {
		return c, true
	}
	return 0, false
}

// Escape applies XEP-0106 escaping to an unescaped localpart: each of
// space " & ' / : < > @ becomes \20 \22 \26 \27 \2f \3a \3c \3e \40, and a
// backslash becomes \5c only when it begins one of those ten sequences (so
// `c:\net` becomes `c\3a\net` but `c:\5commas` becomes `c\3a\5c5commas`).
// Nothing else is touched; in particular Escape does not apply PRECIS, and it
// does not enforce the rule that an escaped localpart must not begin or end
// with \20 (Parse and New do). Unescape(Escape(s)) == s for every s.
func Escape(local string) string {
	n := 0
	for i := 0; i < len(local); i++ {
		if needsEscape(local[i]) {
			n++
		} else if _, ok := escapeSeqAt(local, i); ok {
			n++
		}
	}
	if n == 0 {
		return local
	}
	var b strings.Builder
	b.Grow(len(local) + 2*n)
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !needsEscape(c) {
			if _, ok := escapeSeqAt(local, i); !ok {
				b.WriteByte(c)
				continue
			}
		}
		b.WriteByte('\\')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// escapeForbidden escapes only the nine characters a localpart can never
// hold, leaving backslashes alone. It is used for xmpp: URIs, whose node is
// the (already escaped) JID localpart, so a percent-encoded backslash there is
// part of an escape sequence and must survive.
func escapeForbidden(local string) string {
	n := 0
	for i := 0; i < len(local); i++ {
		if needsEscape(local[i]) {
			n++
		}
	}
	if n == 0 {
		return local
	}
	var b strings.Builder
	b.Grow(len(local) + 2*n)
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !needsEscape(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('\\')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// Unescape reverses XEP-0106 escaping: each of the ten escape sequences
// (hex digits in either case) becomes its character; a backslash that does
// not start one of them is kept as it is, as XEP-0106 requires.
func Unescape(local string) string {
	i := strings.IndexByte(local, '\\')
	if i < 0 {
		return local
	}
	var b strings.Builder
	b.Grow(len(local))
	b.WriteString(local[:i])
	for i < len(local) {
		if c, ok := escapeSeqAt(local, i); ok {
			b.WriteByte(c)
			i += 3
			continue
		}
		b.WriteByte(local[i])
		i++
	}
	return b.String()
}

// countEscapes returns how many XEP-0106 escape sequences Unescape would
// replace in s.
func countEscapes(s string) int {
	n := 0
	for i := strings.IndexByte(s, '\\'); i >= 0 && i < len(s); {
		if _, ok := escapeSeqAt(s, i); ok {
			n++
			i += 3
			continue
		}
		i++
	}
	return n
}

// canonicalEscaping reports whether local is the escaped form XEP-0106 would
// produce for its own unescaped form (no superfluous \5c), and does not begin
// or end with \20 (XEP-0106 §4.2, rule 2).
func canonicalEscaping(local string) bool {
	if strings.HasPrefix(local, `\20`) || strings.HasSuffix(local, `\20`) {
		return false
	}
	if strings.IndexByte(local, '\\') < 0 {
		return true
	}
	return Escape(Unescape(local)) == local
}
