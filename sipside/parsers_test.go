package sipside

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/config"
)

func TestRejectStatus(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		code   int
		answer bool
	}{
		{"other version", "OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/7.0/UDP h;branch=z9hG4bK1\r\n\r\n", 505, true},
		{"unknown scheme", "OPTIONS soap.beep://h:3002 SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", 416, true},
		{"angle brackets", "INVITE <sip:a@b> SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", 400, true},
		{"compact via", "INVITE  sip:a@b  SIP/2.0\r\nv: SIP/2.0/TCP h:5060\r\n\r\n", 400, true},
		{"folded via", "INVITE  sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP\r\n h\r\n\r\n", 400, true},
		{"no via", "OPTIONS sip:a@b SIP/7.0\r\nTo: <sip:a@b>\r\n\r\n", 0, false},
		{"unusable via", "OPTIONS sip:a@b SIP/2.0\r\nVia: garbage\r\n\r\n", 0, false},
		{"response", "SIP/2.0 999999 x\r\nVia: SIP/2.0/UDP h\r\n\r\n", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseRaw([]byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			code, _, ok := rejectStatus(m)
			if ok != tc.answer || code != tc.code {
				t.Fatalf("got %d (answer %v), want %d (answer %v)", code, ok, tc.code, tc.answer)
			}
		})
	}
}

func TestRawResponse(t *testing.T) {
	m, err := parseRaw([]byte("OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/7.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g\r\n" +
		"f: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(rawResponse(m, 505, "Version Not Supported", "T", "127.0.0.1", "umppd"))
	want := "SIP/2.0 505 Version Not Supported\r\n" +
		"Via: SIP/7.0/UDP h;branch=z9hG4bK1;received=127.0.0.1\r\nVia: SIP/2.0/UDP g\r\n" +
		"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=T\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\n" +
		"Server: umppd\r\nContent-Length: 0\r\n\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestNormalizeDatagram(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"folding and spaced params",
			"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:x@y>\r\n  ;\r\n  tag = 9\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    h;branch=z9hG4bKx\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n",
			"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:x@y>;tag=9\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx;rport\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n"},
		{"trailing octets dropped",
			"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx;rport\r\nFrom: <sip:x@y>;tag=1\r\nl: 2\r\n\r\nhiEXTRA",
			"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx;rport\r\nFrom: <sip:x@y>;tag=1\r\nl: 2\r\n\r\nhi"},
		{"rport only on the first value",
			"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g;branch=z9hG4bK2\r\nFrom: <sip:x@y>;tag=1\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;rport, SIP/2.0/UDP g;branch=z9hG4bK2\r\nFrom: <sip:x@y>;tag=1\r\n\r\n"},
		{"no header end: unchanged", "garbage", "garbage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(normalizeDatagram([]byte(tc.in))); got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	// RFC 2543 requests get a branch derived from their content.
	in := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>\r\n\r\n"
	a, b := string(normalizeDatagram([]byte(in))), string(normalizeDatagram([]byte(in)))
	if a != b || !strings.Contains(a, ";rport;branch=z9hG4bK-2543-") {
		t.Fatalf("RFC 2543 branch: %q / %q", a, b)
	}
}

func TestParseDigest(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{`Digest username="alice", realm="example.com", nc=00000001, qop=auth`,
			map[string]string{"username": "alice", "realm": "example.com", "nc": "00000001", "qop": "auth"}, false},
		{`digest  a = "x\"y" ,b=c`, map[string]string{"a": `x"y`, "b": "c"}, false},
		{`NoOneKnowsThisScheme opaque-data=here`, nil, true},
		{`Digest a="unterminated`, nil, true},
		{`Digest a=1, a=2`, nil, true},
		{`Digest a=1 b=2`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDigest(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error %v", err, tc.bad)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestParseCPIM(t *testing.T) {
	body := "From: MR SANDERS <im:piglet@100akerwood.com>\r\nTo: Depressed Donkey <im:eeyore@100akerwood.com>\r\n" +
		"DateTime: 2000-12-13T13:40:00-08:00\r\nSubject: the weather will be fine today\r\n\r\n" +
		"Content-type: text/plain\r\nContent-ID: <1234567890@foo.com>\r\n\r\nHere is the text of my message."
	c, err := ParseCPIM([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if cpimAddress(c.From) != "piglet@100akerwood.com" || len(c.To) != 1 || cpimAddress(c.To[0]) != "eeyore@100akerwood.com" {
		t.Errorf("From %q To %q", c.From, c.To)
	}
	if want := time.Date(2000, 12, 13, 21, 40, 0, 0, time.UTC); !c.DateTime.Equal(want) {
		t.Errorf("DateTime %v, want %v", c.DateTime, want)
	}
	if c.ContentType != "text/plain" || string(c.Content) != "Here is the text of my message." || c.Subject == "" {
		t.Errorf("content %q %q subject %q", c.ContentType, c.Content, c.Subject)
	}
	for _, bad := range []string{
		"From: a\r\n", // no end of headers
		"From: a\r\n\r\nContent-Type: text/plain", // no end of MIME headers
		"From: a\r\n\r\n\r\nbody",                 // no Content-Type
		"DateTime: yesterday\r\n\r\nContent-Type: text/plain\r\n\r\nx",
		" From: a\r\n\r\nContent-Type: text/plain\r\n\r\nx",
		"From: a\r\nFrom: b\r\n\r\nContent-Type: text/plain\r\n\r\nx",
	} {
		if _, err := ParseCPIM([]byte(bad)); !errors.Is(err, errCPIM) && err == nil {
			t.Errorf("ParseCPIM(%q) accepted", bad)
		}
	}
}

func TestParseContact(t *testing.T) {
	tests := []struct {
		in      string
		uri     string
		expires int
		q       string
		bad     bool
	}{
		{"<sip:a@127.0.0.1:5060;transport=tcp>;expires=60;q=0.5", "sip:a@127.0.0.1:5060;transport=tcp", 60, "0.5", false},
		{"sip:+19725552222@gw1.example.net;unknownparam", "sip:+19725552222@gw1.example.net", -1, "", false},
		{`"A" <sip:u@example.com?Route=%3Csip:sip.example.com%3E>`, "sip:u@example.com?Route=%3Csip:sip.example.com%3E", -1, "", false},
		{"<sip:a@b", "", 0, "", true},
		{"<sip:a@b>;expires=soon", "", 0, "", true},
		{"<>", "", 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			c, err := parseContact(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error %v", err, tc.bad)
			}
			if tc.bad {
				return
			}
			if c.uri != tc.uri || c.expires != tc.expires || c.q != tc.q {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

func TestMemoryRegistrations(t *testing.T) {
	r := NewMemoryRegistrations(2)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	add := func(contact string, ttl time.Duration) error {
		_, err := r.Update(ctx, "a@example.com", func(cur []Binding) ([]Binding, error) {
			return append(cur, Binding{AOR: "a@example.com", Contact: contact, Expires: now.Add(ttl)}), nil
		})
		return err
	}
	if err := add("sip:a@h1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := add("sip:a@h2", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := add("sip:a@h3", time.Hour); !errors.Is(err, ErrTooManyBindings) {
		t.Fatalf("third contact: %v, want ErrTooManyBindings", err)
	}
	now = now.Add(2 * time.Minute) // h1 expires
	bs, _ := r.Bindings(ctx, "a@example.com")
	if len(bs) != 1 || bs[0].Contact != "sip:a@h2" {
		t.Fatalf("after expiry: %+v", bs)
	}
	if err := add("sip:a@h3", time.Hour); err != nil {
		t.Fatalf("room freed by expiry: %v", err)
	}
	now = now.Add(2 * time.Hour)
	r.sweep()
	if n := len(r.shards[r.shard("a@example.com")].m); n != 0 {
		t.Fatalf("sweep left %d AORs", n)
	}
}

func TestNonceExpiry(t *testing.T) {
	a := newAuthenticator([]string{"SHA-256", "MD5"}, []byte("secret"), time.Minute, 3, time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	n := a.nonce("example.com")
	if valid, expired := a.checkNonce(n, "example.com"); !valid || expired {
		t.Fatalf("fresh nonce: valid %v expired %v", valid, expired)
	}
	if valid, _ := a.checkNonce(n, "example.org"); valid {
		t.Fatal("nonce accepted for another realm")
	}
	if valid, _ := a.checkNonce(strings.Replace(n, n[:2], "ff", 1), "example.com"); valid && n[:2] != "ff" {
		t.Fatal("tampered nonce accepted")
	}
	now = now.Add(2 * time.Minute)
	if valid, expired := a.checkNonce(n, "example.com"); !valid || !expired {
		t.Fatalf("old nonce: valid %v expired %v, want valid and expired", valid, expired)
	}
	chal := a.challenges("example.com", true)
	if len(chal) != 2 || !strings.Contains(chal[0], "SHA-256") || !strings.Contains(chal[0], "stale=true") {
		t.Fatalf("challenges %q", chal)
	}
}

func TestLifecycleErrors(t *testing.T) {
	users := newUsers(t)
	ts := startServer(t, users, []string{"example.com"}, nil)
	if err := ts.Listen(context.Background()); err == nil {
		t.Error("second Listen succeeded")
	}
	// Listen then Close without Serve frees the port.
	s, err := New(Options{Domains: []string{"example.com"}, Users: users,
		Listen: []config.Listen{{Transport: "udp", Host: "127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("Serve before Listen succeeded")
	}
	if err := s.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].Addr.String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	pc.Close()
	for _, bad := range []Options{
		{Users: users, Listen: []config.Listen{{Transport: "udp"}}},
		{Domains: []string{"example.com"}, Listen: []config.Listen{{Transport: "udp"}}},
		{Domains: []string{"example.com"}, Users: users},
		{Domains: []string{"example.com"}, Users: users, Listen: []config.Listen{{Transport: "tls"}}},
		{Domains: []string{"example.com"}, Users: users, Listen: []config.Listen{{Transport: "sctp"}}},
		{Domains: []string{"example.com"}, Users: users, Listen: []config.Listen{{Transport: "udp"}}, DigestAlgorithms: []string{"SHA-512"}},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}
