package addressing

import (
	"strings"
	"testing"
)

// parseTests are inputs that must parse, with what they must give.
var parseTests = []struct {
	in     string
	want   Address
	scheme Scheme
}{
	// The draft's own addresses.
	{"im:juliet@thecappulets.example.com", Address{"juliet", "thecappulets.example.com", ""}, SchemeIM},
	{"im:romeo@montague.example.net", Address{"romeo", "montague.example.net", ""}, SchemeIM},
	{"pres:romeo@montague.example.net", Address{"romeo", "montague.example.net", ""}, SchemePres},
	{"pres:juliet@thecapulets.example.com", Address{"juliet", "thecapulets.example.com", ""}, SchemePres},
	{"romeo@montague.example.net/orchard", Address{"romeo", "montague.example.net", "orchard"}, SchemeJID},
	{"sip:romeo@orchard.montague.example.net", Address{"romeo", "orchard.montague.example.net", ""}, SchemeSIP},
	// RFC 7247 §6 examples.
	{"sip:o'malley@sip.example", Address{`o\27malley`, "sip.example", ""}, SchemeSIP},
	{`o\27malley@sip.example`, Address{`o\27malley`, "sip.example", ""}, SchemeJID},
	{"sip:foo@sip.example;gr=bar", Address{"foo", "sip.example", "bar"}, SchemeSIP},
	{"foo@sip.example/bar", Address{"foo", "sip.example", "bar"}, SchemeJID},
	// The other characters RFC 7247 escapes, raw and percent-encoded.
	{"sip:at&t@sip.example", Address{`at\26t`, "sip.example", ""}, SchemeSIP},
	{"sip:a/b@sip.example", Address{`a\2fb`, "sip.example", ""}, SchemeSIP},
	{"sip:a%2Fb@sip.example", Address{`a\2fb`, "sip.example", ""}, SchemeSIP},
	{"sip:o%27malley@sip.example", Address{`o\27malley`, "sip.example", ""}, SchemeSIP},
	{"sip:space%20cadet@sip.example", Address{`space\20cadet`, "sip.example", ""}, SchemeSIP},
	{"sip:a%40b@sip.example", Address{`a\40b`, "sip.example", ""}, SchemeSIP},
	{"sip:%22q%22@sip.example", Address{`\22q\22`, "sip.example", ""}, SchemeSIP},
	{"sip:c%3A%5Cnet@sip.example", Address{`c\3a\net`, "sip.example", ""}, SchemeSIP},
	{"sip:c%3A%5C5commas@sip.example", Address{`c\3a\5c5commas`, "sip.example", ""}, SchemeSIP},
	{"sip:%3Cfoo%3E@sip.example", Address{`\3cfoo\3e`, "sip.example", ""}, SchemeSIP},
	// Other RFC 3261 user characters pass through.
	{"sip:a.b-c_d!e~f*g(h)@sip.example", Address{"a.b-c_d!e~f*g(h)", "sip.example", ""}, SchemeSIP},
	{"sip:a=b+c$d,e@sip.example", Address{"a=b+c$d,e", "sip.example", ""}, SchemeSIP},
	{"sip:a;b?c@sip.example", Address{"a;b?c", "sip.example", ""}, SchemeSIP},
	{"sip:%61lice@sip.example", Address{"alice", "sip.example", ""}, SchemeSIP},
	// Case: scheme, user, host.
	{"SIP:Alice@Atlanta.Example.COM", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"Sips:alice@atlanta.example.com", Address{"alice", "atlanta.example.com", ""}, SchemeSIPS},
	{"IM:ROMEO@Montague.Example.NET", Address{"romeo", "montague.example.net", ""}, SchemeIM},
	{"PRES:romeo@montague.example.net", Address{"romeo", "montague.example.net", ""}, SchemePres},
	{"XMPP:romeo@montague.example.net", Address{"romeo", "montague.example.net", ""}, SchemeXMPP},
	{"ROMEO@Montague.Example.NET", Address{"romeo", "montague.example.net", ""}, SchemeJID},
	// Percent-encoded UTF-8 and raw UTF-8 (IRI style).
	{"sip:%C3%A9lise@example.com", Address{"élise", "example.com", ""}, SchemeSIP},
	{"sip:%c3%a9lise@example.com", Address{"élise", "example.com", ""}, SchemeSIP},
	{"sip:%C3%89LISE@example.com", Address{"élise", "example.com", ""}, SchemeSIP},
	{"sip:élise@example.com", Address{"élise", "example.com", ""}, SchemeSIP},
	{"im:%C3%A9lise@example.com", Address{"élise", "example.com", ""}, SchemeIM},
	{"xmpp:%C3%A9lise@example.com", Address{"élise", "example.com", ""}, SchemeXMPP},
	{"sip:%E5%8F%B2%E5%88%9A@example.com", Address{"史刚", "example.com", ""}, SchemeSIP},
	// Internationalized domains, either form.
	{"sip:a@xn--bcher-kva.example", Address{"a", "bücher.example", ""}, SchemeSIP},
	{"sip:a@bücher.example", Address{"a", "bücher.example", ""}, SchemeSIP},
	{"xmpp:a@b%C3%BCcher.example", Address{"a", "bücher.example", ""}, SchemeXMPP},
	// SIP parameters and headers.
	{"sip:alice@atlanta.example.com;transport=tcp", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"sip:alice@atlanta.example.com;transport=tcp;gr=res;lr", Address{"alice", "atlanta.example.com", "res"}, SchemeSIP},
	{"sip:alice@atlanta.example.com;GR=Res", Address{"alice", "atlanta.example.com", "Res"}, SchemeSIP},
	{"sip:alice@atlanta.example.com;gr", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"sip:alice@atlanta.example.com;gr=", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"sip:alice@atlanta.example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", Address{"alice", "atlanta.example.com", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}, SchemeSIP},
	{"sip:alice@atlanta.example.com;gr=my%20phone", Address{"alice", "atlanta.example.com", "my phone"}, SchemeSIP},
	{"sip:alice@atlanta.example.com?subject=x", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"sip:alice@atlanta.example.com;gr=a?subject=x&priority=urgent", Address{"alice", "atlanta.example.com", "a"}, SchemeSIP},
	{"sip:alice@atlanta.example.com?x=;gr=notaparam", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"sip:alice@atlanta.example.com;user=phone", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	{"sips:alice@atlanta.example.com;gr=dev1", Address{"alice", "atlanta.example.com", "dev1"}, SchemeSIPS},
	{"sip:alice@192.0.2.4", Address{"alice", "192.0.2.4", ""}, SchemeSIP},
	{"sip:alice@[2001:db8::10]", Address{"alice", "[2001:db8::10]", ""}, SchemeSIP},
	{"sip:alice@atlanta.example.com.", Address{"alice", "atlanta.example.com", ""}, SchemeSIP},
	// im: and pres: headers.
	{"im:fred@example.com?subject=hi", Address{"fred", "example.com", ""}, SchemeIM},
	{"pres:fred@example.com?x=y&z=w", Address{"fred", "example.com", ""}, SchemePres},
	{"im:o'malley@sip.example", Address{`o\27malley`, "sip.example", ""}, SchemeIM},
	// xmpp: URIs: the node is the escaped JID localpart.
	{"xmpp:romeo@montague.example.net/orchard", Address{"romeo", "montague.example.net", "orchard"}, SchemeXMPP},
	{"xmpp:o%5C27malley@sip.example", Address{`o\27malley`, "sip.example", ""}, SchemeXMPP},
	{"xmpp:o%27malley@sip.example", Address{`o\27malley`, "sip.example", ""}, SchemeXMPP},
	{"xmpp:c%5C3a%5C5c5commas@sip.example", Address{`c\3a\5c5commas`, "sip.example", ""}, SchemeXMPP},
	{"xmpp:romeo@montague.example.net/my%20phone", Address{"romeo", "montague.example.net", "my phone"}, SchemeXMPP},
	{"xmpp:romeo@montague.example.net/a/b@c:d", Address{"romeo", "montague.example.net", "a/b@c:d"}, SchemeXMPP},
	{"xmpp:romeo@montague.example.net?message;subject=hi", Address{"romeo", "montague.example.net", ""}, SchemeXMPP},
	{"xmpp:romeo@montague.example.net/orchard?message#frag", Address{"romeo", "montague.example.net", "orchard"}, SchemeXMPP},
	{"xmpp://guest@example.com/support@example.com?message", Address{"support", "example.com", ""}, SchemeXMPP},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		got, sch, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want || sch != tt.scheme {
			t.Errorf("Parse(%q) = %#v, %q; want %#v, %q", tt.in, got, sch, tt.want, tt.scheme)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 1024)
	for _, tt := range []struct {
		in        string
		want      error
		fragments []string
	}{
		{"", ErrMalformed, []string{"empty"}},
		// Unsupported schemes (SIP answers 416).
		{"soap.beep:foo@example.com", ErrUnsupportedScheme, []string{`"soap.beep"`}},
		{"tel:+1-201-555-0123", ErrUnsupportedScheme, []string{`"tel"`}},
		{"mailto:juliet@example.com", ErrUnsupportedScheme, []string{`"mailto"`}},
		{"http://example.com/", ErrUnsupportedScheme, []string{`"http"`}},
		{"sipx:alice@example.com", ErrUnsupportedScheme, []string{`"sipx"`}},
		// Missing or empty user part.
		{"sip:atlanta.example.com", ErrEmptyLocal, []string{"no user part"}},
		{"sip:@atlanta.example.com", ErrEmptyLocal, []string{"empty user part"}},
		{"im:example.com", ErrEmptyLocal, nil},
		{"im:@example.com", ErrEmptyLocal, nil},
		{"pres:", ErrEmptyLocal, nil},
		{"xmpp:example.com", ErrEmptyLocal, []string{"no node"}},
		{"xmpp:@example.com", ErrEmptyLocal, nil},
		{"xmpp://guest@example.com", ErrEmptyLocal, []string{"authority"}},
		{"sip:", ErrEmptyLocal, nil},
		// Two '@'.
		{"sip:a@b@example.com", ErrMalformed, []string{"more than one '@'"}},
		{"im:a@b@example.com", ErrMalformed, []string{"more than one '@'"}},
		{"xmpp:a@b@example.com", ErrMalformed, []string{"more than one '@'"}},
		{"sip:a@example.com?to=b@c", ErrMalformed, []string{"more than one '@'"}},
		// Empty or bad domain.
		{"sip:alice@", ErrDomain, []string{"empty host"}},
		{"sip:alice@;gr=x", ErrDomain, []string{"empty host"}},
		{"im:alice@", ErrDomain, nil},
		{"sip:alice@exa_mple.com", ErrDomain, []string{`"exa_mple.com"`}},
		{"sip:alice@example.com:5060", ErrDomain, []string{"port", `"example.com:5060"`}},
		{"sip:alice@[2001:db8::1]:5061", ErrDomain, []string{"port"}},
		{"xmpp:alice@example.com:5222", ErrDomain, []string{"port"}},
		{"sip:alice@%zz.example", ErrDomain, []string{"percent"}},
		{"im:alice@example.com/res", ErrDomain, nil},
		// Passwords.
		{"sip:alice:secret@example.com", ErrMalformed, []string{"password"}},
		// Bad percent escapes and invalid UTF-8.
		{"sip:a%2@example.com", ErrMalformed, []string{"bad percent escape", `"a%2"`}},
		{"sip:a%@example.com", ErrMalformed, []string{"bad percent escape"}},
		{"sip:a%zzb@example.com", ErrMalformed, []string{"bad percent escape"}},
		{"sip:%C3@example.com", ErrMalformed, []string{"UTF-8", `"%C3"`}},
		{"sip:%FF%FE@example.com", ErrMalformed, []string{"UTF-8"}},
		{"sip:\xff@example.com", ErrMalformed, []string{"UTF-8"}},
		{"sip:a@example.com;gr=%C3", ErrMalformed, []string{"gr parameter", "UTF-8"}},
		{"xmpp:a@example.com/%C3", ErrMalformed, []string{"resource", "UTF-8"}},
		// Characters that must be percent-encoded.
		{"sip:a\\b@example.com", ErrMalformed, []string{"user part", `'\\'`}},
		{"sip:a\"b@example.com", ErrMalformed, []string{"user part"}},
		{"sip:a<b@example.com", ErrMalformed, []string{"user part"}},
		{"im:a?b@example.com", ErrEmptyLocal, nil}, // '?' starts the headers
		{"im:a#b@example.com", ErrMalformed, []string{"'#'"}},
		{"sip:a@example.com;gr=a\"b", ErrMalformed, []string{"gr parameter"}},
		{"sip:a@example.com;=x", ErrMalformed, []string{"parameter name"}},
		{"sip:a@example.com;", ErrMalformed, []string{"parameter name"}},
		{"sip:a@example.com;lr;;gr=x", ErrMalformed, []string{"parameter name"}},
		{"sip:a@example.com;gr=1;gr=2", ErrMalformed, []string{"more than one gr"}},
		// Whitespace and control characters.
		{"sip:alice @example.com", ErrMalformed, []string{"whitespace", "byte 9"}},
		{" sip:alice@example.com", ErrMalformed, nil},
		{"sip:alice@example.com ", ErrMalformed, []string{"whitespace"}},
		{"sip:ali\tce@example.com", ErrMalformed, []string{"control"}},
		{"sip:alice@example.com\r\n", ErrMalformed, []string{"control"}},
		{"sip:ali\x00ce@example.com", ErrMalformed, []string{"control"}},
		{"sip:ali\x7fce@example.com", ErrMalformed, []string{"control"}},
		{"sip:%00@example.com", ErrMalformed, []string{"localpart"}},
		{"sip:a%09b@example.com", ErrMalformed, []string{"localpart"}},
		{"sip:a@example.com;gr=%07", ErrMalformed, []string{"resourcepart"}},
		// Leading or trailing space: XEP-0106 cannot escape it.
		{"sip:%20alice@example.com", ErrMalformed, []string{"XEP-0106"}},
		{"sip:alice%20@example.com", ErrMalformed, []string{"XEP-0106"}},
		// PRECIS would change the escaping.
		{"sip:a%3A%CC%81@example.com", ErrMalformed, []string{"XEP-0106", "\"a:\u0301\""}},
		{"sip:a%2F%CC%87@example.com", ErrMalformed, []string{"XEP-0106"}},
		{"sip:%3A%CC%81@example.com", ErrMalformed, []string{"PRECIS"}},
		{"sip:a%EF%BC%BC%EF%BC%92%EF%BC%90b@example.com", ErrMalformed, []string{"XEP-0106"}},
		// PRECIS refuses.
		{"sip:%E2%89%AE@example.com", ErrMalformed, []string{"PRECIS"}}, // U+226E, a symbol
		{"xmpp:a%5C5cb@example.com", ErrMalformed, []string{"XEP-0106"}},
		// Overlong parts (RFC 7622: 1023 bytes).
		{"sip:" + long + "@example.com", ErrTooLong, []string{"localpart", "1023"}},
		{"sip:" + strings.Repeat("%C3%A9", 512) + "@example.com", ErrTooLong, []string{"1023"}},
		{"sip:a@example.com;gr=" + long, ErrTooLong, []string{"resourcepart", "1023"}},
		{"xmpp:a@example.com/" + long, ErrTooLong, []string{"resourcepart"}},
		{"sip:a@" + strings.Repeat("a", 64) + ".example", ErrDomain, []string{"63"}},
		{"sip:a@example.com?" + strings.Repeat("x", 9000), ErrTooLong, []string{"8192"}},
	} {
		a, sch, err := Parse(tt.in)
		checkErr(t, "Parse("+quote(tt.in)+")", err, tt.want, tt.fragments...)
		if a != (Address{}) || sch != "" {
			t.Errorf("Parse(%s) failed but returned %#v, %q", quote(tt.in), a, sch)
		}
	}
}

// renderTests pin the URI forms written for an Address.
var renderTests = []struct {
	a                                 Address
	im, pres, sip, sips, xmpp, jidStr string
}{
	{
		Address{"juliet", "thecappulets.example.com", ""},
		"im:juliet@thecappulets.example.com", "pres:juliet@thecappulets.example.com",
		"sip:juliet@thecappulets.example.com", "sips:juliet@thecappulets.example.com",
		"xmpp:juliet@thecappulets.example.com", "juliet@thecappulets.example.com",
	},
	{
		Address{"foo", "sip.example", "bar"},
		"im:foo@sip.example", "pres:foo@sip.example",
		"sip:foo@sip.example;gr=bar", "sips:foo@sip.example;gr=bar",
		"xmpp:foo@sip.example/bar", "foo@sip.example/bar",
	},
	{
		Address{`o\27malley`, "sip.example", ""},
		"im:o'malley@sip.example", "pres:o'malley@sip.example",
		"sip:o'malley@sip.example", "sips:o'malley@sip.example",
		"xmpp:o%5C27malley@sip.example", `o\27malley@sip.example`,
	},
	{
		Address{`at\26t\2fx`, "sip.example", ""},
		"im:at&t/x@sip.example", "pres:at&t/x@sip.example",
		"sip:at&t/x@sip.example", "sips:at&t/x@sip.example",
		"xmpp:at%5C26t%5C2fx@sip.example", `at\26t\2fx@sip.example`,
	},
	{
		Address{`space\20cadet\40home`, "example.com", ""},
		"im:space%20cadet%40home@example.com", "pres:space%20cadet%40home@example.com",
		"sip:space%20cadet%40home@example.com", "sips:space%20cadet%40home@example.com",
		"xmpp:space%5C20cadet%5C40home@example.com", `space\20cadet\40home@example.com`,
	},
	{
		Address{`c\3a\5c5commas`, "example.com", ""},
		"im:c%3A%5C5commas@example.com", "pres:c%3A%5C5commas@example.com",
		"sip:c%3A%5C5commas@example.com", "sips:c%3A%5C5commas@example.com",
		"xmpp:c%5C3a%5C5c5commas@example.com", `c\3a\5c5commas@example.com`,
	},
	{
		Address{"a;b?c(d)", "example.com", "x;y"},
		"im:a%3Bb%3Fc%28d%29@example.com", "pres:a%3Bb%3Fc%28d%29@example.com",
		"sip:a%3Bb%3Fc(d)@example.com;gr=x%3By", "sips:a%3Bb%3Fc(d)@example.com;gr=x%3By",
		"xmpp:a;b%3Fc(d)@example.com/x;y", "a;b?c(d)@example.com/x;y",
	},
	{
		Address{"élise", "bücher.example", "Téléphone"},
		"im:%C3%A9lise@xn--bcher-kva.example", "pres:%C3%A9lise@xn--bcher-kva.example",
		"sip:%C3%A9lise@xn--bcher-kva.example;gr=T%C3%A9l%C3%A9phone", "sips:%C3%A9lise@xn--bcher-kva.example;gr=T%C3%A9l%C3%A9phone",
		"xmpp:%C3%A9lise@xn--bcher-kva.example/T%C3%A9l%C3%A9phone", "élise@bücher.example/Téléphone",
	},
	{
		Address{"alice", "example.com", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"},
		"im:alice@example.com", "pres:alice@example.com",
		"sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "sips:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
		"xmpp:alice@example.com/urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "alice@example.com/urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
	},
	{
		Address{"alice", "example.com", "my phone/2 #1 100%"},
		"im:alice@example.com", "pres:alice@example.com",
		"sip:alice@example.com;gr=my%20phone/2%20%231%20100%25", "sips:alice@example.com;gr=my%20phone/2%20%231%20100%25",
		"xmpp:alice@example.com/my%20phone%2F2%20%231%20100%25", "alice@example.com/my phone/2 #1 100%",
	},
	{
		Address{"alice", "[2001:db8::1]", ""},
		"im:alice@[2001:db8::1]", "pres:alice@[2001:db8::1]",
		"sip:alice@[2001:db8::1]", "sips:alice@[2001:db8::1]",
		"xmpp:alice@[2001:db8::1]", "alice@[2001:db8::1]",
	},
}

func TestRender(t *testing.T) {
	for _, tt := range renderTests {
		for _, c := range []struct{ name, got, want string }{
			{"IM", tt.a.IM(), tt.im},
			{"Pres", tt.a.Pres(), tt.pres},
			{"SIP", tt.a.SIP(), tt.sip},
			{"SIPS", tt.a.SIPS(), tt.sips},
			{"XMPPURI", tt.a.XMPPURI(), tt.xmpp},
			{"String", tt.a.String(), tt.jidStr},
		} {
			if c.got != c.want {
				t.Errorf("%#v.%s() = %q, want %q", tt.a, c.name, c.got, c.want)
			}
			// Every rendered form parses back to the same Address.
			back, _, err := Parse(c.want)
			if err != nil {
				t.Errorf("Parse(%s() = %q): %v", c.name, c.want, err)
				continue
			}
			want := tt.a
			if c.name == "IM" || c.name == "Pres" {
				want = want.Bare()
			}
			if back != want {
				t.Errorf("Parse(%q) = %#v, want %#v", c.want, back, want)
			}
		}
	}
}

// TestRoundTrip renders every parsable input in every form and parses it
// back: the Address must survive (im: and pres: drop the resource).
func TestRoundTrip(t *testing.T) {
	for _, tt := range parseTests {
		checkRoundTrip(t, tt.in, tt.want)
	}
	for _, tt := range renderTests {
		checkRoundTrip(t, tt.jidStr, tt.a)
	}
}

func checkRoundTrip(t testing.TB, in string, a Address) {
	t.Helper()
	for _, f := range []struct {
		name string
		s    string
		bare bool
	}{
		{"IM", a.IM(), true},
		{"Pres", a.Pres(), true},
		{"SIP", a.SIP(), false},
		{"SIPS", a.SIPS(), false},
		{"XMPPURI", a.XMPPURI(), false},
		{"String", a.String(), false},
	} {
		back, _, err := Parse(f.s)
		if err != nil {
			t.Fatalf("Parse(%q) of %s() of %q: %v", f.s, f.name, in, err)
		}
		want := a
		if f.bare {
			want = a.Bare()
		}
		if back != want {
			t.Fatalf("%q -> %#v -> %s() %q -> %#v", in, a, f.name, f.s, back)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	for _, tt := range renderTests {
		for _, s := range []string{tt.im, tt.sip, tt.xmpp, tt.jidStr} {
			f.Add(s)
		}
	}
	for _, s := range []string{
		"sip:%3A%CC%81@example.com", "sip:a%5C5cb@example.com", "xmpp:a%5C5cb@example.com",
		"sip:%20a@example.com", "tel:+1", "soap.beep:x", "a@[::1]", "a@1.2.3.4/r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, sch, err := Parse(s)
		if err != nil {
			if a != (Address{}) || sch != "" {
				t.Fatalf("Parse(%q) failed (%v) but returned %#v, %q", s, err, a, sch)
			}
			return
		}
		if a.Local == "" || a.Domain == "" {
			t.Fatalf("Parse(%q) = %#v with an empty part", s, a)
		}
		if len(a.Local) > maxPart || len(a.Resource) > maxPart {
			t.Fatalf("Parse(%q) = %#v with an overlong part", s, a)
		}
		checkRoundTrip(t, s, a)
		// Normalization is idempotent and agrees with mellium.
		if b, err := New(a.Local, a.Domain, a.Resource); err != nil || b != a {
			t.Fatalf("New(parts of %#v) = %#v, %v", a, b, err)
		}
		checkMellium(t, a)
	})
}

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{
		"im:juliet@thecappulets.example.com",
		"sip:romeo@montague.example.net;gr=orchard",
		"sip:%C3%A9lise@example.com",
		"romeo@montague.example.net/orchard",
		"xmpp:o%5C27malley@sip.example",
	} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Parse(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSIP(b *testing.B) {
	a := Address{`o\27malley`, "sip.example", "orchard"}
	b.ReportAllocs()
	for b.Loop() {
		_ = a.SIP()
	}
}
