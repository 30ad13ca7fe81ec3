package addressing

import (
	"testing"
	"unicode/utf8"
)

// The examples table of XEP-0106 §5 (localparts only), plus cases for the
// backslash rules.
var escapeTests = []struct {
	unescaped, escaped string
}{
	{"space cadet", `space\20cadet`},
	{`call me "ishmael"`, `call\20me\20\22ishmael\22`},
	{"at&t guy", `at\26t\20guy`},
	{"d'artagnan", `d\27artagnan`},
	{"/.fanboy", `\2f.fanboy`},
	{"::foo::", `\3a\3afoo\3a\3a`},
	{"<foo>", `\3cfoo\3e`},
	{"user@host", `user\40host`},
	{`c:\net`, `c\3a\net`},
	{`c:\\net`, `c\3a\\net`},
	{`c:\cool stuff`, `c\3a\cool\20stuff`},
	{`c:\5commas`, `c\3a\5c5commas`},
	// RFC 7247 §6.
	{"o'malley", `o\27malley`},
	// Nothing to escape: returned as is.
	{"juliet", "juliet"},
	{"élise", "élise"},
	{"", ""},
	// A backslash followed by something that is not one of the ten
	// sequences stays; one followed by a sequence (either case) is escaped.
	{`\`, `\`},
	{`a\`, `a\`},
	{`a\2`, `a\2`},
	{`\41`, `\41`},
	{`\2g`, `\2g`},
	{`\20`, `\5c20`},
	{`\2F`, `\5c2F`},
	{`\5c`, `\5c5c`},
	{`\\20`, `\\5c20`},
}

func TestEscape(t *testing.T) {
	for _, tt := range escapeTests {
		if got := Escape(tt.unescaped); got != tt.escaped {
			t.Errorf("Escape(%q) = %q, want %q", tt.unescaped, got, tt.escaped)
		}
	}
}

func TestUnescape(t *testing.T) {
	for _, tt := range escapeTests {
		if got := Unescape(tt.escaped); got != tt.unescaped {
			t.Errorf("Unescape(%q) = %q, want %q", tt.escaped, got, tt.unescaped)
		}
	}
	// Input that Escape never produces.
	for _, tt := range []struct{ in, want string }{
		{`o\27Malley`, "o'Malley"},
		{`\2F\3A\3C\3E\5C`, `/:<>\`},
		{`\5c`, `\`},
		{`\21`, `\21`}, // '!' is not one of the ten
		{`\`, `\`},
		{`x\4`, `x\4`},
		{`\\\`, `\\\`},
	} {
		if got := Unescape(tt.in); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalEscaping(t *testing.T) {
	for _, tt := range []struct {
		local string
		want  bool
	}{
		{"romeo", true},
		{`o\27malley`, true},
		{`c\3a\net`, true},
		{`c\3a\5c5commas`, true},
		{`a\5cb`, false},        // \5c where a plain backslash would do
		{`\20space`, false},     // XEP-0106: no \20 at the start
		{`space\20`, false},     // nor at the end
		{`in\20side`, true},     // but inside is fine
		{`a\2fb`, true},         // lower-case hex as Escape writes it
		{`a\2Fb`, false},        // upper case is not what Escape writes
		{`\5c20`, true},         // a literal backslash before "20"
		{`trailing\`, true},     // lone backslash
		{`x\5c`, false},         // escaped backslash at the end: needless
		{`\5c5c`, true},         // a literal `\5c`
		{`\27\27\27`, true},     // only escapes
		{"\\20\\20", false},     // begins (and ends) with \20
		{`\2`, true},            // truncated, not a sequence
		{`a\40b\40c`, true},     // several
		{`a\40b\5cc`, false},    // one needless among several
		{`\3c\3e\22\26`, true},  // more of the table
		{`a\3Cb`, false},        // upper-case hex again
		{`\5C20`, false},        // upper-case escaped backslash
		{`ends\20\20`, false},   // trailing space, doubled
		{`\5c\20x`, false},      // escaped backslash followed by a space
		{`\5c5cx`, true},        // literal `\5c` then x
		{`\5cx`, false},         // needless
		{`\\\20x`, true},        // two plain backslashes then escaped space
		{`\5c\5cx\5c5c`, false}, // needless then fine
	} {
		if got := canonicalEscaping(tt.local); got != tt.want {
			t.Errorf("canonicalEscaping(%q) = %v, want %v", tt.local, got, tt.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, tt := range escapeTests {
		f.Add(tt.unescaped)
		f.Add(tt.escaped)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		e := Escape(s)
		if got := Unescape(e); got != s {
			t.Fatalf("Unescape(Escape(%q)) = %q (escaped %q)", s, got, e)
		}
		// The escaped form holds none of the nine characters a localpart
		// cannot hold, and escaping it again changes only backslashes that
		// start sequences, so Escape is canonical on its own output.
		for i := 0; i < len(e); i++ {
			if needsEscape(e[i]) {
				t.Fatalf("Escape(%q) = %q still holds %q", s, e, e[i])
			}
		}
		if got := Escape(Unescape(e)); got != e {
			t.Fatalf("Escape(Unescape(%q)) = %q", e, got)
		}
		if n := countEscapes(e); n < countEscapes(s) {
			t.Fatalf("Escape(%q) = %q has %d sequences, fewer than the input's %d", s, e, n, countEscapes(s))
		}
	})
}
