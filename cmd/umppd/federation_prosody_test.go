package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/umpp/umpp/internal/testenv"
)

// prosodyUser logs local@p.Domain in to a Prosody (STARTTLS checking its
// certificate, then PLAIN) and records its stanzas, like xmppConnect.
func prosodyUser(t *testing.T, p *testenv.Prosody, local, password string) *xmppUser {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CertPEM)
	tlsCfg := &tls.Config{ServerName: p.Domain, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return xmppLoginWith(t, p.C2SAddr, local, p.Domain, "", password, tlsCfg, sasl.Plain)
}

// TestFederationProsodyPeer: Romeo, an XMPP client of the UMPP domain
// montague.example.net (umppd, 127.0.0.2), and Mercutio, a user of
// verona.example.org, a plain XMPP domain served by Prosody (127.0.0.6).
// verona publishes only _xmpp-server._tcp, so umppd resolves it as mode
// xmpp and talks to it over XMPP federation alone: subscriptions both
// ways, presence with status text, messages both ways, and no SIP toward
// verona on the wire.
func TestFederationProsodyPeer(t *testing.T) {
	const (
		verona   = "verona.example.org"
		veronaIP = "127.0.0.6"
	)
	montague := newDomainServer(t, "montague.example.net", "127.0.0.2", "")
	veronaS2S := testenv.FreePort(t, "tcp", veronaIP)

	// Were umppd to try SIP toward verona, it would go to verona's host
	// on the SIP default ports (there are no SRV records to say
	// otherwise), or leave from montague's SIP listener: the tap watches
	// both.
	tap := startTap(t, montague,
		&domainServer{domain: verona, ip: veronaIP, sipPort: 5060},
		&domainServer{domain: verona, ip: veronaIP, sipPort: 5061})

	opts := []string{"local=/example.net/", "local=/example.com/", "local=/example.org/", "local-ttl=1"}
	opts = append(opts, montague.srvRecords()...)
	opts = append(opts,
		fmt.Sprintf("srv-host=_xmpp-server._tcp.%s,xmpp.%s,%d,10,0", verona, verona, veronaS2S),
		fmt.Sprintf("host-record=xmpp.%s,%s", verona, veronaIP),
		// verona's own address, as real domains have one: SRV for XMPP
		// only still makes it an XMPP-only peer.
		fmt.Sprintf("host-record=%s,%s", verona, veronaIP),
	)
	dns := testenv.DNSMasq(t, "127.0.0.1", opts...)

	prosody := testenv.StartProsody(t, testenv.ProsodyOptions{
		Domain: verona, IP: veronaIP, Port: veronaS2S, DNS: dns.Addr,
		Users: map[string]string{"mercutio": "queen-mab"},
	})
	montague.writeConfig(t, dns.Addr)
	montague.addUser(t, "romeo", "wherefore")
	montague.addUser(t, "benvolio", "peace")
	montague.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("montague logs:\n%s", montague.logs())
			t.Logf("prosody log:\n%s", prosody.Log())
		}
	})

	// What umppd's resolver makes of verona.
	code, out, errOut := umppd(t, "", "resolve", "-config", montague.cfg, "mercutio@"+verona)
	if code != 0 || !strings.Contains(out, "domain "+verona+": mode xmpp") {
		t.Errorf("umppd resolve mercutio@%s: exit %d, want mode xmpp:\n%s%s", verona, code, out, errOut)
	}

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "orchard", "wherefore")
	romeo.send(t, `<presence><status>In the orchard</status></presence>`)
	mercutio := prosodyUser(t, prosody, "mercutio", "queen-mab")
	// Fetching the roster makes his client an interested resource: Prosody
	// tells it of subscription changes by roster pushes (an approval he
	// receives is not forwarded as presence, RFC 6121 §3.1.6 leaves it to
	// the server).
	mercutio.send(t, `<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`)
	mercutio.waitStanza(t, "his roster", `^<iq[^>]*type="result"`, `id="roster1"`)
	mercutio.send(t, `<presence><status>Talking of dreams</status></presence>`)

	// Romeo asks to see Mercutio's presence; Mercutio approves and asks
	// back; Romeo approves.
	romeo.send(t, `<presence type="subscribe" to="mercutio@verona.example.org"/>`)
	mercutio.waitStanza(t, "Romeo's subscription request",
		`^<presence[^>]*type="subscribe"`, `from="romeo@montague\.example\.net"`)
	mercutio.send(t, `<presence type="subscribed" to="romeo@montague.example.net"/>`)
	romeo.waitStanza(t, "Mercutio's approval",
		`^<presence[^>]*type="subscribed"`, `from="mercutio@verona\.example\.org"`)
	mercutio.send(t, `<presence type="subscribe" to="romeo@montague.example.net"/>`)
	romeo.waitStanza(t, "Mercutio's subscription request",
		`^<presence[^>]*type="subscribe"`, `from="mercutio@verona\.example\.org"`)
	romeo.send(t, `<presence type="subscribed" to="mercutio@verona.example.org"/>`)
	mercutio.waitStanza(t, "Romeo's approval in a roster push", `^<iq[^>]*type="set"`,
		`<item[^>]*jid="romeo@montague\.example\.net"[^>]*subscription="both"|<item[^>]*subscription="both"[^>]*jid="romeo@montague\.example\.net"`)

	// Each sees the other available, with the status text.
	available := func(from string) string {
		return `^<presence(\s+(from="` + regexp.QuoteMeta(from) + `/[^"]+"|to="[^"]*"|id="[^"]*"|xmlns="[^"]*"|xml:lang="[^"]*"))+\s*>`
	}
	romeo.waitStanza(t, "Mercutio available", available("mercutio@verona.example.org"), `<status[^>]*>Talking of dreams</status>`)
	mercutio.waitStanza(t, "Romeo available", available("romeo@montague.example.net"), `<status[^>]*>In the orchard</status>`)

	// A status change travels too.
	mercutio.send(t, `<presence><show>away</show><status>Queen Mab hath been with you</status></presence>`)
	romeo.waitStanza(t, "Mercutio's new status", available("mercutio@verona.example.org"),
		`<show[^>]*>away</show>`, `<status[^>]*>Queen Mab hath been with you</status>`)

	// Messages both ways.
	romeo.send(t, `<message type="chat" to="mercutio@verona.example.org" id="r1"><body>I dreamt a dream tonight.</body></message>`)
	mercutio.waitStanza(t, "Romeo's message", `^<message[^>]*from="`+regexp.QuoteMeta(romeo.jid)+`"`,
		`<body[^>]*>I dreamt a dream tonight\.</body>`)
	mercutio.send(t, `<message type="chat" to="romeo@montague.example.net" id="m1"><body>And so did I.</body></message>`)
	romeo.waitStanza(t, "Mercutio's message", `^<message[^>]*from="mercutio@verona\.example\.org/[^"]+"`,
		`<body[^>]*>And so did I\.</body>`)
	mercutio.send(t, `<message type="chat" to="`+romeo.jid+`" id="m2"><body>O, then, I see Queen Mab hath been with you.</body></message>`)
	romeo.waitStanza(t, "Mercutio's message to his resource", `^<message[^>]*from="mercutio@verona\.example\.org/[^"]+"`,
		`<body[^>]*>O, then, I see Queen Mab hath been with you\.</body>`)

	// A SIMPLE user of montague reaches the plain XMPP peer too: his
	// MESSAGE becomes a stanza over s2s, and the answer a MESSAGE.
	benvolio := newSIPUser(t, "benvolio", "montague.example.net", "peace", "127.0.0.4", montague.sipAddr())
	benvolio.register(t, 600)
	if code := benvolio.message(t, "mercutio@"+verona, "Come, he hath hid himself among these trees"); code/100 != 2 {
		t.Errorf("Benvolio's MESSAGE to Mercutio answered %d", code)
	}
	mercutio.waitStanza(t, "Benvolio's message", `^<message[^>]*from="benvolio@montague\.example\.net/umpp-sip"`, `hid himself`)
	mercutio.send(t, `<message type="chat" to="benvolio@montague.example.net" id="m3"><body>Blind is his love</body></message>`)
	benvolio.waitRequest(t, "MESSAGE", `Blind is his love`)

	// Mercutio leaves: Romeo sees him unavailable.
	mercutio.send(t, `<presence type="unavailable"><status>A plague o' both your houses</status></presence>`)
	romeo.waitStanza(t, "Mercutio unavailable", `^<presence[^>]*type="unavailable"`,
		`from="mercutio@verona\.example\.org/`)

	// The federation was XMPP server-to-server, both directions.
	logs := montague.logs()
	for _, re := range []string{
		`s2s outbound ready.*verona\.example\.org|verona\.example\.org.*s2s outbound ready`,
		`s2s inbound authenticated.*peer=verona\.example\.org`,
	} {
		if !regexp.MustCompile(re).MatchString(logs) {
			t.Errorf("montague's logs lack %s", re)
		}
	}
	plog := prosody.Log()
	for _, want := range []string{
		"Outgoing s2s connection verona.example.org->montague.example.net complete",
		"Incoming s2s connection montague.example.net->verona.example.org complete",
	} {
		if !strings.Contains(plog, want) {
			t.Errorf("prosody's log lacks %q", want)
		}
	}

	// And no SIP toward verona: nothing at its host's SIP ports, nothing
	// about verona through montague's SIP listener.
	time.Sleep(500 * time.Millisecond) // let tcpdump catch up
	// (Benvolio's own client talks SIP to montague, of course.)
	for _, m := range tap.sipMessages() {
		if strings.Contains(m, "benvolio@") {
			continue
		}
		if strings.Contains(m, veronaIP) || strings.Contains(strings.ToLower(m), verona) {
			t.Errorf("SIP toward verona on the wire:\n%s", m)
		}
		for _, method := range []string{"INVITE ", "SUBSCRIBE ", "MESSAGE "} {
			if strings.HasPrefix(m, method) {
				t.Errorf("%s request on the wire:\n%s", strings.TrimSpace(method), m)
			}
		}
	}

}

// A plain XMPP domain usually has an address record of its own too (its
// web site). That does not make it a SIP domain: docs/dns.md says a domain
// with only XMPP SRV records is an XMPP peer, and that the A/AAAA fallback
// on the default ports is for a domain with none of the records.
func TestFederationXMPPPeerWithAddressRecord(t *testing.T) {
	const verona = "verona.example.org"
	montague := newDomainServer(t, "montague.example.net", "127.0.0.2", "")
	opts := append([]string{"local=/example.net/", "local=/example.org/", "local-ttl=1"}, montague.srvRecords()...)
	opts = append(opts,
		"srv-host=_xmpp-server._tcp."+verona+",xmpp."+verona+",5269,10,0",
		"host-record=xmpp."+verona+",127.0.0.6",
		"host-record="+verona+",127.0.0.6",
	)
	dns := testenv.DNSMasq(t, "127.0.0.1", opts...)
	montague.writeConfig(t, dns.Addr)
	code, out, errOut := umppd(t, "", "resolve", "-config", montague.cfg, "mercutio@"+verona)
	if code != 0 {
		t.Fatalf("umppd resolve: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "domain "+verona+": mode xmpp") || !strings.Contains(out, "SIP targets: none") {
		t.Errorf("umppd resolve mercutio@%s, want mode xmpp and no SIP targets:\n%s", verona, out)
	}
}
