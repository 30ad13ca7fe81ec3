package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// prosodyClient logs local@p.Domain in over STARTTLS, checking Prosody's
// certificate, and sends what it receives to the returned channel.
func prosodyClient(t *testing.T, p *Prosody, local, password string) (*xmpp.Session, <-chan string, error) {
	t.Helper()
	origin := jid.MustParse(local + "@" + p.Domain)
	nc, err := net.DialTimeout("tcp", p.C2SAddr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CertPEM)
	s, err := XMPPClientSession(nc, origin, 20*time.Second,
		xmpp.StartTLS(&tls.Config{ServerName: p.Domain, RootCAs: pool, MinVersion: tls.VersionTLS12}),
		xmpp.SASL("", password, sasl.Plain), xmpp.BindResource())
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	// Available, so that chat messages to the bare JID reach it.
	if err := XMPPSend(s, "<presence/>", 10*time.Second); err != nil {
		return nil, nil, err
	}
	got := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var b strings.Builder
			e := xml.NewEncoder(&b)
			if _, err := xmlstream.Copy(e, xmlstream.MultiReader(xmlstream.Token(*start), r)); err != nil && err != io.EOF {
				return err
			}
			_ = e.Flush()
			select {
			case got <- b.String():
			default:
			}
			return nil
		}))
	}()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		_ = s.Conn().Close()
	})
	return s, got, nil
}

// Two Prosodys federate through the records StartProsody serves for
// their Peers: a message from alice@capulets reaches bob@montague.
func TestProsody(t *testing.T) {
	t.Parallel()
	aS2S := FreePort(t, "tcp", "127.0.0.12")
	bS2S := FreePort(t, "tcp", "127.0.0.13")
	a := StartProsody(t, ProsodyOptions{
		Domain: "capulets.example.com", IP: "127.0.0.12", Port: aS2S,
		Peers: map[string]string{"montague.example.net": "127.0.0.13:" + strconv.Itoa(bS2S)},
		Users: map[string]string{"alice": "a-pw"},
	})
	b := StartProsody(t, ProsodyOptions{
		Domain: "montague.example.net", IP: "127.0.0.13", Port: bS2S,
		Peers: map[string]string{"capulets.example.com": "127.0.0.12:" + strconv.Itoa(aS2S)},
		Users: map[string]string{"bob": "b-pw"},
	})
	defer func() {
		if t.Failed() {
			t.Logf("capulets log:\n%s\n\nmontague log:\n%s", a.Log(), b.Log())
		}
	}()
	if a.Addr != "127.0.0.12:"+strconv.Itoa(aS2S) || !strings.HasPrefix(a.C2SAddr, "127.0.0.12:") || a.C2SAddr == a.Addr {
		t.Errorf("Addr %q, C2SAddr %q", a.Addr, a.C2SAddr)
	}

	if _, _, err := prosodyClient(t, a, "alice", "wrong"); err == nil {
		t.Error("alice logged in with a wrong password")
	}
	alice, _, err := prosodyClient(t, a, "alice", "a-pw")
	if err != nil {
		t.Fatalf("alice logs in: %v", err)
	}
	_, bobGot, err := prosodyClient(t, b, "bob", "b-pw")
	if err != nil {
		t.Fatalf("bob logs in: %v", err)
	}

	msg := `<message type="chat" to="bob@montague.example.net" id="m1"><body>Good pilgrim</body></message>`
	if err := XMPPSend(alice, msg, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-bobGot:
			if strings.Contains(s, "Good pilgrim") {
				if !strings.Contains(s, `from="alice@capulets.example.com/`) {
					t.Errorf("bob got %s", s)
				}
				if log := b.Log(); !strings.Contains(log, "capulets.example.com") || !strings.Contains(log, "dialback") {
					t.Errorf("montague's log does not show dialback with capulets")
				}
				for _, p := range []*Prosody{a, b} {
					for _, line := range strings.Split(p.Log(), "\n") {
						if strings.Contains(line, "\terror\t") || strings.Contains(line, "\twarn\t") {
							t.Errorf("%s logged: %s", p.Domain, line)
						}
					}
				}
				a.Stop()
				a.Stop() // idempotent
				if c, err := net.DialTimeout("tcp", a.C2SAddr, time.Second); err == nil {
					c.Close()
					t.Error("prosody still listens after Stop")
				}
				return
			}
		case <-deadline:
			t.Fatal("bob got no message from alice")
		}
	}
}

func TestProsodyOptions(t *testing.T) {
	bad := []ProsodyOptions{
		{Domain: ""},
		{Domain: `verona"; os.exit()`},
		{Domain: "verona.example.org", Port: 70000},
		{Domain: "verona.example.org", Port: 5269, C2SPort: 5269},
		{Domain: "verona.example.org", DNS: "127.0.0.1:53", Peers: map[string]string{"a.example": "127.0.0.2:5269"}},
		{Domain: "verona.example.org", DNS: "192.0.2.1:53"},
		{Domain: "verona.example.org", Peers: map[string]string{"verona.example.org": "127.0.0.1:5269"}},
		{Domain: "verona.example.org", Peers: map[string]string{"a.example": "192.0.2.1:5269"}},
		{Domain: "verona.example.org", Peers: map[string]string{"a.example": "127.0.0.1"}},
		{Domain: "verona.example.org", Users: map[string]string{"Romeo Montague": "x"}},
		{Domain: "verona.example.org", Users: map[string]string{"romeo": ""}},
	}
	for _, o := range bad {
		if err := checkProsodyOptions(o); err == nil {
			t.Errorf("checkProsodyOptions(%+v) = nil, want an error", o)
		}
	}
	o := ProsodyOptions{Domain: "Verona.example.org", IP: "127.0.0.7", DNS: "127.0.0.1:5353",
		Users: map[string]string{"mercutio": "queen-mab"}}
	if err := checkProsodyOptions(o); err != nil {
		t.Fatal(err)
	}
	cfg, err := prosodyConfig(o, "/tmp/run \"x\"", 5269, 5222)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`interfaces = { "127.0.0.7" }`,
		"s2s_ports = { 5269 }",
		"c2s_ports = { 5222 }",
		`forward = "127.0.0.1@5353"`,
		`pidfile = "/tmp/run \"x\"/prosody.pid"`,
		"s2s_secure_auth = false",
		"s2s_require_encryption = true",
		`VirtualHost "verona.example.org"`,
	} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
}
