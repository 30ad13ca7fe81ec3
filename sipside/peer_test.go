package sipside

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/internal/certs"
	"github.com/umpp/umpp/internal/testenv"
)

func TestCertNamesDomain(t *testing.T) {
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		name   string
		cert   x509.Certificate
		domain string
		want   bool
	}{
		{"dns name", x509.Certificate{DNSNames: []string{"montague.example.net"}}, "montague.example.net", true},
		{"dns name, other case", x509.Certificate{DNSNames: []string{"Montague.Example.NET"}}, "montague.example.net", true},
		{"sip uri", x509.Certificate{URIs: []*url.URL{uri("sip:montague.example.net")}}, "montague.example.net", true},
		{"sip uri with parameters", x509.Certificate{URIs: []*url.URL{uri("sip:montague.example.net;transport=tls")}}, "montague.example.net", true},
		{"sip uri with a user", x509.Certificate{URIs: []*url.URL{uri("sip:romeo@montague.example.net")}}, "montague.example.net", false},
		{"other scheme", x509.Certificate{URIs: []*url.URL{uri("xmpp:montague.example.net")}}, "montague.example.net", false},
		{"wildcard", x509.Certificate{DNSNames: []string{"*.example.net"}}, "montague.example.net", false},
		{"literal wildcard", x509.Certificate{DNSNames: []string{"*.example.net"}}, "*.example.net", false},
		{"subdomain", x509.Certificate{DNSNames: []string{"sip.montague.example.net"}}, "montague.example.net", false},
		{"other domain", x509.Certificate{DNSNames: []string{"verona.example.org"}}, "montague.example.net", false},
		{"common name only", x509.Certificate{}, "montague.example.net", false},
		{"empty domain", x509.Certificate{DNSNames: []string{""}}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := certNamesDomain(&tc.cert, tc.domain); got != tc.want {
				t.Fatalf("certNamesDomain(%s) = %v, want %v", tc.domain, got, tc.want)
			}
		})
	}
}

// peerRequests are the requests a peer server sends, as the draft prints
// them (SUBSCRIBE, INVITE) or in its style (MESSAGE), with a fresh
// Call-ID each time.
func peerRequest(t testing.TB, kind, from string) []byte {
	t.Helper()
	draft := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "draft", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var msg string
	switch kind {
	case "SUBSCRIBE":
		msg = draft("4.2-1-subscribe.sip")
	case "INVITE":
		msg = draft("4.1-1-invite.sip")
	case "MESSAGE":
		msg = "MESSAGE im:juliet@thecappulets.example.com SIP/2.0\r\n" +
			"To: <im:juliet@thecappulets.example.com>\r\n" +
			"From: <im:romeo@montague.example.net>;tag=rm1\r\n" +
			"Call-ID: x@orchard.montague.example.net\r\n" +
			"CSeq: 1 MESSAGE\r\n" +
			"Content-Type: text/plain\r\n\r\n" +
			"Wherefore art thou?"
	}
	lines := strings.Split(msg, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Call-ID:") {
			lines[i] = "Call-ID: " + newTag() + "@orchard.montague.example.net"
		}
	}
	msg = strings.Join(lines, "\r\n")
	if from != "" {
		msg = strings.ReplaceAll(msg, "romeo@montague.example.net", "romeo@"+from)
	}
	return []byte(msg)
}

// TestPeerAuthByAddress: with a real DNS server (dnsmasq) publishing
// montague's SIP server at 127.0.0.2, SUBSCRIBE, INVITE and MESSAGE from
// montague's users are taken from 127.0.0.2 and refused 403 from
// 127.0.0.3, over UDP and TCP. A peer's MESSAGE to a local user without
// contacts reaches the Gateway with Peer set. The addresses are
// resolved once for all the requests (cached).
func TestPeerAuthByAddress(t *testing.T) {
	dns := testenv.DNSMasq(t, "127.0.0.1",
		"srv-host=_sip._udp."+montagues+",sip."+montagues+",5060,0,0",
		"host-record=sip."+montagues+",127.0.0.2",
		"local=/"+montagues+"/",
		"local-ttl=300")
	res, err := addressing.NewResolver(addressing.ResolverConfig{Server: dns.Addr})
	if err != nil {
		t.Fatal(err)
	}
	users := newUsers(t)
	addUser(t, users, "juliet", capulets, "balcony")
	gw := &recordingGateway{got: make(chan Message, 4)}
	ts := startServer(t, users, []string{capulets}, func(o *Options) {
		o.Resolver = res
		o.PeerPolicy = func(d string) bool { return d == montagues }
		o.PresencePolicy = allowAll{}
		o.Gateway = gw
	})
	for _, tc := range []struct {
		transport, kind, src, from string
		want                       int
		reason                     string
	}{
		{"udp", "SUBSCRIBE", "127.0.0.2", "", 200, ""},
		{"udp", "SUBSCRIBE", "127.0.0.3", "", 403, "Forbidden - Peer not authenticated"},
		{"tcp", "SUBSCRIBE", "127.0.0.2", "", 200, ""},
		{"tcp", "SUBSCRIBE", "127.0.0.3", "", 403, "Forbidden - Peer not authenticated"},
		{"udp", "INVITE", "127.0.0.2", "", 480, ""}, // authenticated; no SessionHandler
		{"udp", "INVITE", "127.0.0.3", "", 403, "Forbidden - Peer not authenticated"},
		{"tcp", "INVITE", "127.0.0.3", "", 403, "Forbidden - Peer not authenticated"},
		{"udp", "MESSAGE", "127.0.0.2", "", 202, ""}, // the gateway's answer
		{"tcp", "MESSAGE", "127.0.0.2", "", 202, ""},
		{"udp", "MESSAGE", "127.0.0.3", "", 403, "Forbidden - Peer not authenticated"},
		{"tcp", "MESSAGE", "127.0.0.3", "", 403, "Forbidden - Peer not authenticated"},
		{"udp", "MESSAGE", "127.0.0.2", "verona.example.org", 403, "Forbidden - Sender domain not served here"},
	} {
		t.Run(tc.transport+"/"+tc.kind+"/"+tc.src+"/"+tc.from, func(t *testing.T) {
			server := ts.udp
			if tc.transport == "tcp" {
				server = ts.tcp
			}
			w := dialWireFrom(t, tc.transport, tc.src, server, nil)
			w.send(completeDraft(peerRequest(t, tc.kind, tc.from), tc.transport, w.local(), newTag()))
			r := w.final()
			if r.StatusCode != tc.want || tc.reason != "" && r.Reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s", r.StatusCode, r.Reason, tc.want, tc.reason)
			}
			if tc.kind == "MESSAGE" && tc.want == 202 {
				m := <-gw.got
				if !m.Peer || m.Sender != "romeo@"+montagues || !strings.HasPrefix(m.To, "im:juliet@"+capulets) || string(m.Body) != "Wherefore art thou?" {
					t.Fatalf("gateway got %+v", m)
				}
			}
		})
	}
	if n := dns.QueryCount(t, "SRV", "_sip._udp."+montagues); n != 1 {
		t.Errorf("montague's SRV asked %d times, want once (cached)", n)
	}
	if n := dns.QueryCount(t, "A", "sip."+montagues); n != 1 {
		t.Errorf("montague's server address asked %d times, want once (cached)", n)
	}
}

// TestPeerAuthByTLS: over TLS, a client certificate that verifies
// against RootCAs and names montague proves a peer's SUBSCRIBE even from
// an address that is not montague's; a certificate for another domain,
// an untrusted one, or none, gets 403.
func TestPeerAuthByTLS(t *testing.T) {
	pair := func(domain string) (tls.Certificate, *x509.Certificate) {
		certPEM, keyPEM, err := certs.Generate([]string{domain}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		x, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c, x
	}
	montague, montagueX := pair(montagues)
	verona, veronaX := pair("verona.example.org")
	untrusted, _ := pair(montagues)
	roots := x509.NewCertPool()
	roots.AddCert(montagueX)
	roots.AddCert(veronaX)

	res := &staticResolver{}
	res.set(montagues, "tls", "127.0.0.9:5061") // not where the tests send from
	users := newUsers(t)
	addUser(t, users, "juliet", capulets, "balcony")
	ts := startServer(t, users, []string{capulets}, func(o *Options) {
		o.Resolver = res
		o.PeerPolicy = func(d string) bool { return d == montagues || d == "verona.example.org" }
		o.PresencePolicy = allowAll{}
		o.RootCAs = func() *x509.CertPool { return roots }
	})
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{"montague's certificate", &montague, 200},
		{"verona's certificate", &verona, 403},
		{"untrusted certificate for montague", &untrusted, 403},
		{"no certificate", nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dialWireFrom(t, "tls", "127.0.0.1", ts.tls, tc.cert)
			w.send(completeDraft(peerRequest(t, "SUBSCRIBE", ""), "tls", w.local(), newTag()))
			if r := w.final(); r.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", r.StatusCode, r.Reason, tc.want)
			}
			// A second request on the same connection is judged alike.
			w.send(completeDraft(peerRequest(t, "SUBSCRIBE", ""), "tls", w.local(), newTag()))
			if r := w.final(); r.StatusCode != tc.want {
				t.Fatalf("second request: got %d %s, want %d", r.StatusCode, r.Reason, tc.want)
			}
		})
	}
	// Over plain UDP from 127.0.0.1 nothing proves montague.
	w := dialWire(t, "udp", ts.udp)
	w.send(completeDraft(peerRequest(t, "SUBSCRIBE", ""), "udp", w.local(), newTag()))
	if r := w.final(); r.StatusCode != 403 {
		t.Fatalf("udp without proof: got %d", r.StatusCode)
	}
}
