package sdp

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func crlf(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// TestParseDraftOffer reads the draft's §4.1 offer exactly as printed.
func TestParseDraftOffer(t *testing.T) {
	d, err := Parse(readTestdata(t, "draft-offer.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Description{
		Origin:      Origin{Username: "romeo", SessionID: 289087, SessionVersion: 289087, NetType: "IN", AddrType: "IP4", Address: "orchard.montague.example.net"},
		SessionName: "-",
		Connection:  &Connection{NetType: "IN", AddrType: "IP4", Address: "orchard.montague.example.net"},
		Timing:      "0 0",
		Media: []Media{
			{Type: "audio", Port: 39923, Proto: "RTP/AVP", Formats: []string{"0"},
				Attributes: []Attribute{{"rtpmap", "0 PCMU/8000"}}},
			{Type: "message", Port: 5222, Proto: "xmpp/tcp", Formats: []string{"chat"},
				Connection: &Connection{NetType: "IN", AddrType: "IP4", Address: "xmpp.montague.example.net"},
				Attributes: []Attribute{{"direction", "both"}, {"jid", "romeo@montague.example.net/orchard"}, {"thread", "283461923759234"}}},
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", d, want)
	}
	s, err := d.XMPPSession()
	if err != nil {
		t.Fatal(err)
	}
	if s.ConnAddr != "xmpp.montague.example.net" || s.Port != 5222 || s.Kind != "chat" || s.JID != "romeo@montague.example.net/orchard" ||
		s.Thread != "283461923759234" || s.Direction != "both" || s.Index != 1 || len(s.OtherMedia) != 1 || s.OtherMedia[0].Type != "audio" {
		t.Fatalf("XMPPSession = %+v", s)
	}
	// What we write is standard: c= and t= before the media.
	got := string(d.Marshal())
	wantSDP := string(crlf(
		"v=0",
		"o=romeo 289087 289087 IN IP4 orchard.montague.example.net",
		"s=-",
		"c=IN IP4 orchard.montague.example.net",
		"t=0 0",
		"m=audio 39923 RTP/AVP 0",
		"a=rtpmap:0 PCMU/8000",
		"m=message 5222 xmpp/tcp chat",
		"c=IN IP4 xmpp.montague.example.net",
		"a=direction:both",
		"a=jid:romeo@montague.example.net/orchard",
		"a=thread:283461923759234",
	))
	if got != wantSDP {
		t.Fatalf("Marshal:\n%s\nwant\n%s", got, wantSDP)
	}
}

// TestAnswerDraft builds the draft's answer (SIP message 2) from its
// offer, with the draft's values for our side.
func TestAnswerDraft(t *testing.T) {
	offer, err := Parse(readTestdata(t, "draft-offer.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	ans, err := Answer(offer, XMPPSession{
		Origin:   Origin{Username: "juliet", SessionID: 289087, SessionVersion: 289087, Address: "balcony.thecappulets.example.com"},
		ConnAddr: "impish.thecapulets.example.com",
		Port:     5222,
		JID:      "juliet@thecappulets.example.com/balcony",
	})
	if err != nil {
		t.Fatal(err)
	}
	printed, err := Parse(readTestdata(t, "draft-answer.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ans, printed) {
		t.Fatalf("Answer:\n got %+v\nwant %+v (the draft's)", ans, printed)
	}
	s, err := printed.XMPPSession()
	if err != nil {
		t.Fatal(err)
	}
	if s.Direction != "passive" || s.JID != "juliet@thecappulets.example.com/balcony" || s.ConnAddr != "impish.thecapulets.example.com" {
		t.Fatalf("answer session = %+v", s)
	}
	if !strings.Contains(string(ans.Marshal()), "m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=message 5222 xmpp/tcp chat\r\nc=IN IP4 impish.thecapulets.example.com\r\n") {
		t.Fatalf("answer SDP:\n%s", ans.Marshal())
	}
}

func TestAnswerDirections(t *testing.T) {
	for _, tc := range []struct{ offer, want string }{
		{"both", "passive"}, {"active", "passive"}, {"passive", "active"}, {"", "passive"},
	} {
		t.Run(tc.offer, func(t *testing.T) {
			lines := []string{"v=0", "o=- 1 1 IN IP4 a.example", "s=-", "c=IN IP4 a.example", "t=0 0", "m=message 5269 xmpp/tcp groupchat", "a=jid:r@a.example/x"}
			if tc.offer != "" {
				lines = append(lines, "a=direction:"+tc.offer)
			}
			offer, err := Parse(crlf(lines...))
			if err != nil {
				t.Fatal(err)
			}
			ans, err := Answer(offer, XMPPSession{Origin: Origin{Address: "b.example"}, ConnAddr: "b.example", Port: 5269, JID: "j@b.example/y"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := ans.XMPPSession()
			if err != nil {
				t.Fatal(err)
			}
			if s.Direction != tc.want || s.Kind != "groupchat" || ans.Media[0].Connection != nil {
				t.Fatalf("answer %+v", s)
			}
		})
	}
}

func TestNewOffer(t *testing.T) {
	d, err := NewOffer(XMPPSession{
		Origin:   Origin{Username: "romeo", SessionID: 7, SessionVersion: 7, Address: "2001:db8::1"},
		ConnAddr: "xmpp.montague.example.net", Port: 5269, JID: "romeo@montague.example.net/orchard", Thread: "t1",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := string(crlf(
		"v=0",
		"o=romeo 7 7 IN IP6 2001:db8::1",
		"s=-",
		"c=IN IP6 2001:db8::1",
		"t=0 0",
		"m=message 5269 xmpp/tcp chat",
		"c=IN IP4 xmpp.montague.example.net",
		"a=direction:both",
		"a=jid:romeo@montague.example.net/orchard",
		"a=thread:t1",
	))
	if got := string(d.Marshal()); got != want {
		t.Fatalf("offer:\n%s\nwant\n%s", got, want)
	}
	back, err := Parse(d.Marshal())
	if err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, d)
	}
	for _, bad := range []XMPPSession{
		{Origin: Origin{Address: "a"}, ConnAddr: "a", Port: 0, JID: "j@a/r"},
		{Origin: Origin{Address: "a"}, ConnAddr: "a", Port: 1, JID: ""},
		{Origin: Origin{Address: "a b"}, ConnAddr: "a", Port: 1, JID: "j@a/r"},
		{Origin: Origin{Address: "a"}, ConnAddr: "a", Port: 1, JID: "j@a/r", Kind: "headline"},
		{Origin: Origin{Address: "a"}, ConnAddr: "a", Port: 1, JID: "j@a/r", Thread: "x\r\ny"},
	} {
		if _, err := NewOffer(bad); err == nil {
			t.Errorf("NewOffer(%+v) succeeded", bad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	base := []string{"v=0", "o=- 1 1 IN IP4 a.example", "s=-", "c=IN IP4 a.example", "t=0 0"}
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrNotSDP},
		{"text", []byte("hello, Juliet"), ErrNotSDP},
		{"xml", []byte("<?xml version='1.0'?><x/>"), ErrNotSDP},
		{"no origin", crlf("v=0", "s=-", "t=0 0", "m=message 1 xmpp/tcp chat"), ErrMalformed},
		{"bad line", crlf(append(base, "m=message 1 xmpp/tcp chat", "garbage")...), ErrMalformed},
		{"bad port", crlf(append(base, "m=message x xmpp/tcp chat")...), ErrMalformed},
		{"no formats", crlf(append(base, "m=message 1 xmpp/tcp")...), ErrMalformed},
		{"short m", crlf(append(base, "m=message 1")...), ErrMalformed},
		{"empty line", crlf(append(base[:3], "", "t=0 0")...), ErrMalformed},
		{"nul", crlf(append(base, "m=message 1 xmpp/tcp chat", "a=jid:a\x00b")...), ErrMalformed},
		{"too large", append(crlf(base...), []byte(strings.Repeat("a=x\r\n", MaxBytes/5+1))...), ErrMalformed},
		{"too many media", crlf(append(base, strings.Split(strings.Repeat("m=audio 0 RTP/AVP 0\n", MaxMedia+1), "\n")...)...), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestXMPPSessionErrors(t *testing.T) {
	base := []string{"v=0", "o=- 1 1 IN IP4 a.example", "s=-", "c=IN IP4 a.example", "t=0 0"}
	for _, tc := range []struct {
		name  string
		media []string
		want  error
	}{
		{"audio only", []string{"m=audio 4000 RTP/AVP 0"}, ErrNoXMPPMedia},
		{"msrp", []string{"m=message 7394 TCP/MSRP *", "a=path:msrp://a.example:7394/x;tcp"}, ErrNoXMPPMedia},
		{"rejected xmpp", []string{"m=message 0 xmpp/tcp chat", "a=jid:r@a.example/x"}, ErrNoXMPPMedia},
		{"headline", []string{"m=message 5269 xmpp/tcp headline", "a=jid:r@a.example/x"}, ErrNoXMPPMedia},
		{"no jid", []string{"m=message 5269 xmpp/tcp chat"}, ErrMalformed},
		{"bad direction", []string{"m=message 5269 xmpp/tcp chat", "a=jid:r@a.example/x", "a=direction:sideways"}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(crlf(append(base, tc.media...)...))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.XMPPSession(); !errors.Is(err, tc.want) {
				t.Fatalf("XMPPSession = %v, want %v", err, tc.want)
			}
			if _, err := Answer(d, XMPPSession{Origin: Origin{Address: "b"}, ConnAddr: "b", Port: 1, JID: "j@b/r"}); !errors.Is(err, tc.want) {
				t.Fatalf("Answer = %v, want %v", err, tc.want)
			}
		})
	}
	// No connection data at all for the stream.
	d, err := Parse(crlf("v=0", "o=- 1 1 IN IP4 a.example", "s=-", "t=0 0", "m=message 5269 xmpp/tcp chat", "a=jid:r@a.example/x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.XMPPSession(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("XMPPSession without c= = %v", err)
	}
}

// TestNormalizeLayouts: LF line ends, lines out of order, a c= preamble
// before a media section that has its own c=, a trailing c= in the last
// section, and optional lines we drop.
func TestNormalizeLayouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		conn []string // per media: its c= address or ""
	}{
		{"lf", "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 h\nt=0 0\nm=message 1 xmpp/tcp chat\na=jid:a@b/c\n", []string{""}},
		{"attr before c", "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=message 1 xmpp/tcp chat\na=jid:a@b/c\nc=IN IP4 x\n", []string{"x"}},
		{"preamble and own c", "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 h\nt=0 0\nm=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU/8000\nc=IN IP4 p\nt=0 0\nm=message 1 xmpp/tcp chat\nc=IN IP4 own\na=jid:a@b/c\n", []string{"", "own"}},
		{"standard media c", "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 h\nt=0 0\nm=audio 1 RTP/AVP 0\nc=IN IP4 au\na=sendrecv\nm=message 1 xmpp/tcp chat\na=jid:a@b/c\n", []string{"au", ""}},
		{"dropped lines", "v=0\no=- 1 1 IN IP4 h\ns=-\ni=info\nu=http://x/\ne=a@b\np=+1\nc=IN IP4 h\nb=AS:64\nt=0 0\nr=7d 1h 0 25h\nz=0 0\nk=clear:x\na=tool:x\nm=message 1 xmpp/tcp chat\ni=m\nb=AS:1\nk=prompt\na=jid:a@b/c\n", []string{""}},
		{"trailing blank lines", "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=message 1 xmpp/tcp chat\r\na=jid:a@b/c\r\n\r\n\r\n", []string{""}},
		{"sloppy spaces", "v=0 \r\no=- 1 1 IN IP4 h\r\ns= \r\nc=IN IP4 h \r\nt=0 0\r\nm=message 1 xmpp/tcp chat \r\na=jid: a@b/c \r\n", []string{""}},
		{"no t", "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 h\nm=message 1 xmpp/tcp chat\na=jid:a@b/c\n", []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Media) != len(tc.conn) {
				t.Fatalf("%d media", len(d.Media))
			}
			for i, c := range tc.conn {
				got := ""
				if d.Media[i].Connection != nil {
					got = d.Media[i].Connection.Address
				}
				if got != c {
					t.Errorf("media %d c= %q, want %q", i, got, c)
				}
			}
			if _, err := d.XMPPSession(); err != nil {
				t.Fatal(err)
			}
			back, err := Parse(d.Marshal())
			if err != nil || !reflect.DeepEqual(back, d) {
				t.Fatalf("round trip: %v\n%+v\n%+v", err, back, d)
			}
		})
	}
}

// FuzzParse: whatever Parse accepts marshals to SDP that parses back to
// the same Description, and XMPPSession/Answer never panic.
func FuzzParse(f *testing.F) {
	f.Add(readTestdata(f, "draft-offer.sdp"))
	f.Add(readTestdata(f, "draft-answer.sdp"))
	f.Add([]byte("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=message 1 xmpp/tcp chat\na=jid:a@b/c\nc=IN IP4 x\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=x\r\nc=IN IP4 224.2.1.1/127/3\r\nt=1 2\r\na=recvonly\r\nm=message 7394/2 TCP/MSRP *\r\na=path:msrp://a/b;tcp\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrNotSDP) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v wraps no sentinel", err)
			}
			return
		}
		out := d.Marshal()
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(d)) = %v\n%q\nfrom %q", err, out, b)
		}
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip differs:\n%+v\n%+v\n%q", back, d, out)
		}
		if s, err := d.XMPPSession(); err == nil {
			if s.JID == "" || s.Port <= 0 {
				t.Fatalf("XMPPSession %+v", s)
			}
			ans, err := Answer(d, XMPPSession{Origin: Origin{Address: "b.example"}, ConnAddr: "x.b.example", Port: 5269, JID: "j@b.example/r"})
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			if len(ans.Media) != len(d.Media) {
				t.Fatalf("answer has %d media, offer %d", len(ans.Media), len(d.Media))
			}
			if _, err := Parse(ans.Marshal()); err != nil {
				t.Fatalf("answer does not parse: %v\n%q", err, ans.Marshal())
			}
		} else if !errors.Is(err, ErrNoXMPPMedia) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("XMPPSession error %v wraps no sentinel", err)
		}
	})
}
