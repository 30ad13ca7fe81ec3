package xmppside

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// readAll runs a stream reader over input and returns the raw elements
// and the error that ended it.
func readAll(input string, max int) ([]string, error) {
	sr := newStreamReader(strings.NewReader(input), max)
	if _, err := sr.readHeader(); err != nil {
		return nil, err
	}
	var out []string
	for {
		var el element
		if err := sr.next(&el); err != nil {
			return out, err
		}
		out = append(out, string(el.raw))
		sr.release()
	}
}

func TestStreamReader(t *testing.T) {
	const hdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>"
	for _, tc := range []struct {
		name  string
		input string
		want  []string
		cond  string // stream error condition; "" means the stream ended cleanly
	}{
		{"stanzas and keepalives", hdr + " <message><body>a</body></message>\n \n<presence/><iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>",
			[]string{"<message><body>a</body></message>", "<presence/>", "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"}, ""},
		{"raw bytes kept", hdr + "<message><body>&amp;&lt;&#x41;<![CDATA[<x>]]></body><a:b xmlns:a='u'/></message></stream:stream>",
			[]string{"<message><body>&amp;&lt;&#x41;<![CDATA[<x>]]></body><a:b xmlns:a='u'/></message>"}, ""},
		{"mismatched end tag", hdr + "<message><body></message>", nil, "not-well-formed"},
		{"duplicate attribute on a stanza", hdr + "<message to='a' to='b'/>", nil, "not-well-formed"},
		{"duplicate attribute on a child", hdr + "<iq><bind xmlns='x' xmlns='x'/></iq>", nil, "not-well-formed"},
		{"duplicate attribute on the header", "<?xml version='1.0'?><stream:stream xmlns='jabber:client' to='a' to='b' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", nil, "not-well-formed"},
		{"same local name, other prefixes", hdr + "<message a:x='1' b:x='2' xmlns:a='u' xmlns:b='v'/></stream:stream>", []string{"<message a:x='1' b:x='2' xmlns:a='u' xmlns:b='v'/>"}, ""},
		{"doctype", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" + hdr, nil, "restricted-xml"},
		{"second xml declaration", hdr + "<?xml version='1.0'?>", nil, "restricted-xml"},
		{"other encoding", "<?xml version='1.0' encoding='ISO-8859-1'?>" + hdr[len("<?xml version='1.0'?>"):], nil, "unsupported-encoding"},
		{"exactly at the limit", hdr + "<message>" + strings.Repeat("x", 100-len("<message></message>")) + "</message></stream:stream>",
			[]string{"<message>" + strings.Repeat("x", 100-len("<message></message>")) + "</message>"}, ""},
		{"one byte over the limit", hdr + "<message>" + strings.Repeat("x", 101-len("<message></message>")) + "</message>", nil, "policy-violation"},
		{"limit is per stanza", hdr + strings.Repeat("<message>"+strings.Repeat("x", 60)+"</message>", 5) + "</stream:stream>",
			[]string{"<message>" + strings.Repeat("x", 60) + "</message>", "<message>" + strings.Repeat("x", 60) + "</message>", "<message>" + strings.Repeat("x", 60) + "</message>", "<message>" + strings.Repeat("x", 60) + "</message>", "<message>" + strings.Repeat("x", 60) + "</message>"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.input, 100)
			var se *streamError
			switch {
			case tc.cond == "" && !errors.Is(err, errStreamEnd):
				t.Fatalf("ended with %v, want a clean end", err)
			case tc.cond != "" && (!errors.As(err, &se) || se.cond != tc.cond):
				t.Fatalf("ended with %v, want %s", err, tc.cond)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("elements\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestStreamReaderRestart(t *testing.T) {
	const hdr = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>"
	sr := newStreamReader(strings.NewReader(hdr+"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>x</auth>"+hdr+"<iq id='1'/>"), 1000)
	for i, want := range []string{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>x</auth>", "<iq id='1'/>"} {
		if _, err := sr.readHeader(); err != nil {
			t.Fatalf("header %d: %v", i, err)
		}
		var el element
		if err := sr.next(&el); err != nil {
			t.Fatalf("element %d: %v", i, err)
		}
		if string(el.raw) != want {
			t.Fatalf("element %d = %q, want %q", i, el.raw, want)
		}
		sr.restart()
	}
}

func TestAppendStamped(t *testing.T) {
	for _, tc := range []struct {
		in, from, to, lang, want string
	}{
		{"<message from='forged@x' to='b@y' id='1'><body>hi</body></message>", "a@y/r", "", "",
			"<message to='b@y' id='1' from='a@y/r'><body>hi</body></message>"},
		{"<presence/>", "a@y/r", "b@y", "en", "<presence to='b@y' from='a@y/r' xml:lang='en'></presence>"},
		{"<message xml:lang='de' x='&apos;&quot;&lt;&amp;'/>", "a@y/r", "", "en", "<message xml:lang='de' x='&apos;&quot;&lt;&amp;' from='a@y/r'></message>"},
		{"<message\n to=\"b@y\"\n><thread>t</thread><x xmlns='urn:u'><y/></x></message>", "a@y/r", "", "", "<message to=\"b@y\" from='a@y/r'><thread>t</thread><x xmlns='urn:u'><y/></x></message>"},
	} {
		sr := newStreamReader(strings.NewReader(tc.in), 0)
		var el element
		if err := sr.next(&el); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := string(appendStamped(nil, &el, tc.from, tc.to, tc.lang)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestAppendDelay(t *testing.T) {
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	got, err := appendDelay(nil, []byte("<message from='a@x/r'><body>x</body></message>"), "x", stamp)
	want := "<message from='a@x/r'><body>x</body><delay xmlns='urn:xmpp:delay' from='x' stamp='2026-01-02T03:04:05.006Z'>Offline Storage</delay></message>"
	if err != nil || string(got) != want {
		t.Fatalf("got %s, %v\nwant %s", got, err, want)
	}
	if _, err := appendDelay(nil, []byte("<message/>"), "x", stamp); err == nil {
		t.Fatal("no error for a stanza without end tag")
	}
}

func TestParseAddrMatchesPRECIS(t *testing.T) {
	for _, in := range []string{
		"juliet@example.com", "juliet@example.com/balcony", "example.com", "example.com/r",
		"Juliet@Example.COM/Balcony", "j.doe@example.com/a b", "ju_li-et@ex-ample.com/x/y@z",
		"juliet@EXAMPLE.com", "é@example.com/é", "a@b.c/ r",
	} {
		got, err := parseAddr(in)
		if err != nil {
			t.Errorf("parseAddr(%q): %v", in, err)
			continue
		}
		j, err := jid.Parse(in)
		if err != nil {
			t.Fatalf("jid.Parse(%q): %v", in, err)
		}
		if got.full != j.String() || got.bare != j.Bare().String() || got.domain != j.Domainpart() || got.local != j.Localpart() || got.resource != j.Resourcepart() {
			t.Errorf("parseAddr(%q) = %+v, jid says %q", in, got, j)
		}
	}
	for _, in := range []string{"", "@example.com", "a@", "a@b/", "a@@b", "ﬀ@example.com", "a@b/\x00"} {
		if a, err := parseAddr(in); err == nil {
			t.Errorf("parseAddr(%q) = %+v, want an error", in, a)
		}
	}
}

func TestAuthLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newAuthLimiter(2, time.Minute, 4)
	for i, want := range []bool{true, true, false} {
		if got := l.allowed("192.0.2.1", now); got != want {
			t.Fatalf("attempt %d allowed = %v, want %v", i, got, want)
		}
		l.fail("192.0.2.1", now)
	}
	if !l.allowed("192.0.2.2", now) {
		t.Fatal("another address is throttled")
	}
	if !l.allowed("192.0.2.1", now.Add(time.Minute)) {
		t.Fatal("no refill after the interval")
	}
	// Memory stays bounded.
	for i := 0; i < 1000; i++ {
		l.fail(string(rune('a'+i%26))+strings.Repeat("x", i), now.Add(time.Duration(i)*time.Second))
	}
	if n := l.size(); n > 4 {
		t.Fatalf("limiter tracks %d addresses, max 4", n)
	}
}

func FuzzStreamReader(f *testing.F) {
	const hdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>"
	for _, s := range []string{
		hdr + "<message to='a@b' id='1'><body>x</body><thread>t</thread></message>",
		hdr + "<presence/> <iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq></stream:stream>",
		hdr + "<message><a:b xmlns:a='u'>&amp;<![CDATA[x]]></a:b></message>",
		"<!DOCTYPE a [<!ENTITY b 'c'>]>" + hdr,
		hdr + "<message><body>&b;</body></message>",
		hdr + "<message xml:lang='fr' to=\"a&amp;b@c\"><body>Ça va ? 日本語 &#x1F600;</body><ünï xmlns='u'/></message>",
		hdr + "<iq id='1'><q><![CDATA[]]]]><![CDATA[>]]></q></iq><presence\n type = 'x' />",
		"<?xml version='1.0' encoding='UTF-8'?>\n" + hdr[len("<?xml version='1.0'?>"):] + "<message/></stream:stream>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 512
		sr := newStreamReader(bytes.NewReader(data), max)
		if _, err := sr.readHeader(); err != nil {
			return
		}
		for {
			var el element
			if err := sr.next(&el); err != nil {
				return
			}
			if len(el.raw) > max {
				t.Fatalf("element of %d bytes passed a %d limit", len(el.raw), max)
			}
			out := appendStamped(nil, &el, "a@b/c", "", "en")
			for _, b := range [][]byte{el.raw, out} {
				d := xml.NewDecoder(bytes.NewReader(b))
				depth := 0
				for {
					tok, err := d.Token()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("re-reading %q: %v", b, err)
					}
					switch tok.(type) {
					case xml.StartElement:
						depth++
					case xml.EndElement:
						depth--
					}
				}
				if depth != 0 {
					t.Fatalf("unbalanced element %q", b)
				}
			}
			sr.release()
		}
	})
}
