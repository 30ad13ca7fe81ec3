package addressing

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestParseJID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Address
	}{
		{"romeo@montague.example.net", Address{"romeo", "montague.example.net", ""}},
		{"romeo@montague.example.net/orchard", Address{"romeo", "montague.example.net", "orchard"}},
		{"juliet@thecappulets.example.com/balcony", Address{"juliet", "thecappulets.example.com", "balcony"}},
		{"ROMEO@Montague.Example.NET", Address{"romeo", "montague.example.net", ""}},
		{"Romeo@montague.example.net./Orchard", Address{"romeo", "montague.example.net", "Orchard"}},
		{`o\27malley@sip.example`, Address{`o\27malley`, "sip.example", ""}},
		{`O\27Malley@sip.example`, Address{`o\27malley`, "sip.example", ""}},
		{`o\27MALLEY@sip.example`, Address{`o\27malley`, "sip.example", ""}},
		{`c\3a\5c5commas@example.com`, Address{`c\3a\5c5commas`, "example.com", ""}},
		{`space\20cadet@example.com`, Address{`space\20cadet`, "example.com", ""}},
		{"élise@example.com", Address{"élise", "example.com", ""}},
		{"ÉLISE@example.com", Address{"élise", "example.com", ""}},
		{"ｒｏｍｅｏ@example.com", Address{"romeo", "example.com", ""}}, // fullwidth folded
		{"a@bücher.example", Address{"a", "bücher.example", ""}},
		{"a@xn--bcher-kva.example", Address{"a", "bücher.example", ""}},
		{"a@BÜCHER.example", Address{"a", "bücher.example", ""}},
		{"a@localhost", Address{"a", "localhost", ""}},
		{"a@192.0.2.1", Address{"a", "192.0.2.1", ""}},
		{"a@[2001:DB8::0:1]", Address{"a", "[2001:db8::1]", ""}},
		{"a@example.com/with space and / slash", Address{"a", "example.com", "with space and / slash"}},
		{"a@example.com/res@x", Address{"a", "example.com", "res@x"}},
		{"a@example.com/ｆｕｌｌ", Address{"a", "example.com", "ｆｕｌｌ"}}, // OpaqueString keeps width
		{"a@example.com/urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", Address{"a", "example.com", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}},
		{"a@example.com/\u00a0nbsp", Address{"a", "example.com", " nbsp"}}, // OpaqueString maps NBSP to space
	} {
		got, err := ParseJID(tt.in)
		if err != nil {
			t.Errorf("ParseJID(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseJID(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		a, sch, err := Parse(tt.in)
		if err != nil || a != got || sch != SchemeJID {
			t.Errorf("Parse(%q) = %#v, %q, %v; want %#v, jid", tt.in, a, sch, err, got)
		}
	}
}

func TestParseJIDErrors(t *testing.T) {
	long := strings.Repeat("a", 1024)
	for _, tt := range []struct {
		in        string
		want      error
		fragments []string
	}{
		{"", ErrMalformed, []string{"empty"}},
		{"example.com", ErrEmptyLocal, []string{`"example.com"`}},
		{"@example.com", ErrEmptyLocal, nil},
		{"example.com/res", ErrEmptyLocal, nil},
		{"romeo@", ErrDomain, []string{"empty domain"}},
		{"romeo@/res", ErrDomain, nil},
		{"romeo@example.com/", ErrMalformed, []string{"empty resourcepart"}},
		{"a@b@example.com", ErrDomain, []string{`"b@example.com"`}},
		{"ro meo@example.com", ErrMalformed, []string{"localpart", `"ro meo"`}},
		{"o'malley@example.com", ErrMalformed, []string{"localpart", `'\''`}},
		{"a&b@example.com", ErrMalformed, []string{"localpart"}},
		{"a\x00b@example.com", ErrMalformed, []string{"localpart"}},
		{"a\tb@example.com", ErrMalformed, []string{"localpart"}},
		{"a@example.com/a\x07b", ErrMalformed, []string{"resourcepart"}},
		{"a\xffb@example.com", ErrMalformed, []string{"invalid UTF-8"}},
		{`a\5cb@example.com`, ErrMalformed, []string{"canonical XEP-0106"}},
		{`\20a@example.com`, ErrMalformed, []string{"canonical XEP-0106"}},
		{"a@exa mple.com", ErrDomain, []string{`"exa mple.com"`}},
		{"a@exa_mple.com", ErrDomain, []string{`'_'`}},
		{"a@-example.com", ErrDomain, []string{"hyphen"}},
		{"a@example-.com", ErrDomain, []string{"hyphen"}},
		{"a@example..com", ErrDomain, []string{"empty label"}},
		{"a@1.2.3.999", ErrDomain, []string{"all digits"}},
		{"a@[::1", ErrDomain, []string{"IPv6"}},
		{"a@[192.0.2.1]", ErrDomain, []string{"IPv6"}},
		{"a@[fe80::1%eth0]", ErrDomain, []string{"IPv6"}},
		{"a@[::ffff:192.0.2.1]", ErrDomain, []string{"IPv6"}},
		{long + "@example.com", ErrTooLong, []string{"localpart", "1023"}},
		{"a@example.com/" + long, ErrTooLong, []string{"resourcepart", "1023"}},
		{"a@" + strings.Repeat("a", 64) + ".example", ErrDomain, []string{"63"}},
		{"a@" + strings.Repeat("abcdefgh.", 29) + "com", ErrDomain, []string{"253"}},
		{strings.Repeat("a", 9000) + "@example.com", ErrTooLong, nil},
	} {
		_, err := ParseJID(tt.in)
		checkErr(t, "ParseJID("+quote(tt.in)+")", err, tt.want, tt.fragments...)
		_, _, err = Parse(tt.in)
		checkErr(t, "Parse("+quote(tt.in)+")", err, tt.want, tt.fragments...)
	}
}

func TestErrorKinds(t *testing.T) {
	for _, err := range []error{ErrEmptyLocal, ErrDomain, ErrTooLong} {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%v does not match ErrMalformed", err)
		}
		if errors.Is(err, ErrUnsupportedScheme) {
			t.Errorf("%v matches ErrUnsupportedScheme", err)
		}
	}
	if errors.Is(ErrUnsupportedScheme, ErrMalformed) {
		t.Error("ErrUnsupportedScheme matches ErrMalformed")
	}
}

func TestNewAndFromJID(t *testing.T) {
	a, err := New(`O\27Malley`, "SIP.Example.", "Phone")
	if err != nil {
		t.Fatal(err)
	}
	want := Address{`o\27malley`, "sip.example", "Phone"}
	if a != want {
		t.Fatalf("New = %#v, want %#v", a, want)
	}
	j, err := a.JID()
	if err != nil {
		t.Fatal(err)
	}
	if got := j.String(); got != `o\27malley@sip.example/Phone` {
		t.Errorf("JID().String() = %q", got)
	}
	b, err := FromJID(j)
	if err != nil || b != a {
		t.Errorf("FromJID(%v) = %#v, %v; want %#v", j, b, err, a)
	}
	if _, err := FromJID(jid.MustParse("example.com")); !errors.Is(err, ErrEmptyLocal) {
		t.Errorf("FromJID(domain JID) error = %v, want ErrEmptyLocal", err)
	}
	if _, err := FromJID(jid.MustParse(`a\5cb@example.com`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("FromJID(non-canonical) error = %v, want ErrMalformed", err)
	}
	_, err = New("o'malley", "sip.example", "")
	checkErr(t, "New(unescaped)", err, ErrMalformed, "localpart")
	_, err = New("a", "", "")
	checkErr(t, "New(no domain)", err, ErrDomain, "empty domain")
	if _, err := (Address{"a b", "example.com", ""}).JID(); !errors.Is(err, ErrMalformed) {
		t.Errorf("JID() of an invalid Address: error %v, want ErrMalformed", err)
	}
}

func TestAddressMethods(t *testing.T) {
	full := Address{"romeo", "montague.example.net", "orchard"}
	bare := Address{"romeo", "montague.example.net", ""}
	if full.IsBare() || !bare.IsBare() {
		t.Errorf("IsBare: full %v, bare %v", full.IsBare(), bare.IsBare())
	}
	if full.Bare() != bare {
		t.Errorf("Bare() = %#v", full.Bare())
	}
	if got := full.String(); got != "romeo@montague.example.net/orchard" {
		t.Errorf("String() = %q", got)
	}
	if got := bare.String(); got != "romeo@montague.example.net" {
		t.Errorf("String() = %q", got)
	}
	if got := full.BareJID(); got != "romeo@montague.example.net" {
		t.Errorf("BareJID() = %q", got)
	}
	for sch, want := range map[Scheme]string{
		SchemeIM:   "im:romeo@montague.example.net",
		SchemePres: "pres:romeo@montague.example.net",
		SchemeSIP:  "sip:romeo@montague.example.net;gr=orchard",
		SchemeSIPS: "sips:romeo@montague.example.net;gr=orchard",
		SchemeXMPP: "xmpp:romeo@montague.example.net/orchard",
		SchemeJID:  "romeo@montague.example.net/orchard",
		"tel":      "",
	} {
		if got := full.URI(sch); got != want {
			t.Errorf("URI(%q) = %q, want %q", sch, got, want)
		}
	}
}

// TestAgreesWithMellium checks that an Address is exactly what mellium's
// jid package makes of the same JID, so the XMPP side and this package never
// disagree about identity.
func TestAgreesWithMellium(t *testing.T) {
	for _, s := range []string{
		"romeo@montague.example.net/orchard",
		"ROMEO@Montague.Example.NET/Orchard",
		`O\27Malley@sip.example`,
		"ÉLISE@BÜCHER.example/Téléphone",
		"ｒｏｍｅｏ@example.com/ｆｕｌｌ",
		"a@xn--bcher-kva.example",
		"a@[2001:db8::1]",
	} {
		checkMellium(t, mustParse(t, s))
	}
}

func checkMellium(t testing.TB, a Address) {
	t.Helper()
	j, err := jid.Parse(a.String())
	if err != nil {
		t.Fatalf("jid.Parse(%q): %v", a.String(), err)
	}
	if j.Localpart() != a.Local || j.Domainpart() != a.Domain || j.Resourcepart() != a.Resource {
		t.Fatalf("mellium makes %q of %#v", j.String(), a)
	}
}

func TestParseDomain(t *testing.T) {
	for _, tt := range []struct{ in, want, ascii string }{
		{"example.com", "example.com", "example.com"},
		{"Example.COM.", "example.com", "example.com"},
		{"localhost", "localhost", "localhost"},
		{"a-b.c-d.example", "a-b.c-d.example", "a-b.c-d.example"},
		{"3com.example", "3com.example", "3com.example"},
		{"bücher.example", "bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.Example", "bücher.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "bücher.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "bücher.example", "xn--bcher-kva.example"},
		{"faß.de", "faß.de", "xn--fa-hia.de"}, // non-transitional
		{"例え.テスト", "例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
	} {
		got, err := ParseDomain(tt.in)
		if err != nil {
			t.Errorf("ParseDomain(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
		a, err := DomainToASCII(got)
		if err != nil || a != tt.ascii {
			t.Errorf("DomainToASCII(%q) = %q, %v; want %q", got, a, err, tt.ascii)
		}
		// The same domain inside an address normalizes the same way.
		if addr, err := ParseJID("u@" + tt.in); err != nil || addr.Domain != tt.want {
			t.Errorf("ParseJID(u@%s).Domain = %q, %v; want %q", tt.in, addr.Domain, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in       string
		fragment string
	}{
		{"", "empty"},
		{".", "empty"},
		{"example..com", "empty label"},
		{".example.com", "empty label"},
		{"-a.example", "hyphen"},
		{"a-.example", "hyphen"},
		{"a_b.example", `'_'`},
		{"a b.example", `"a b.example"`},
		{"a/b.example", `"a/b.example"`},
		{"192.0.2.1", "IP address"},
		{"[2001:db8::1]", "IP literal"},
		{"1.2.3.999", "all digits"},
		{"example.123", "all digits"},
		{strings.Repeat("a", 64) + ".example", "63"},
		{strings.Repeat("abcdefgh.", 29) + "com", "253"},
		{"xn--zz.example", `"xn--zz.example"`},
		{"ab--cd.example", "third and fourth"},
		{"exa\x00mple.com", "domain"},
		{"\xff.example", "domain"},
	} {
		_, err := ParseDomain(tt.in)
		checkErr(t, "ParseDomain("+quote(tt.in)+")", err, ErrDomain, tt.fragment)
	}
}

func TestQuoteTruncates(t *testing.T) {
	long := strings.Repeat("é", 100)
	q := quote(long)
	if len(q) > 100 || !strings.Contains(q, "(200 bytes)") {
		t.Errorf("quote(200 bytes) = %q", q)
	}
	if q := quote(`a"b`); q != `"a\"b"` {
		t.Errorf("quote = %s", q)
	}
}
