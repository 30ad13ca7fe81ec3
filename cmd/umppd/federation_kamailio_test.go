package main

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/umpp/umpp/internal/testenv"
)

// Romeo (XMPP, montague.example.net on umppd) and Mercutio, a SIMPLE user
// of verona.example.org, a domain served by Debian's Kamailio presence
// server: DNS shows verona as SIP only, so umppd reaches it with SIP
// MESSAGE and SUBSCRIBE (sip: URIs; Kamailio does not take im:/pres:).
func TestFederationKamailioPeer(t *testing.T) {
	montague := newDomainServer(t, "montague.example.net", "127.0.0.2", "")
	kamPort := freePortOn(t, "127.0.0.7")
	opts := []string{"local=/example.net/", "local=/example.org/", "local-ttl=1",
		fmt.Sprintf("srv-host=_sip._udp.verona.example.org,sip.verona.example.org,%d,10,0", kamPort),
		"host-record=sip.verona.example.org,127.0.0.7",
	}
	opts = append(opts, montague.srvRecords()...)
	dns := testenv.DNSMasq(t, "127.0.0.1", opts...)
	montague.writeConfig(t, dns.Addr)
	montague.addUser(t, "romeo", "wherefore")
	montague.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("montague logs:\n%s", montague.logs())
		}
	})
	kam := testenv.StartKamailio(t, testenv.KamailioOptions{
		Domain: "verona.example.org", IP: "127.0.0.7", Port: kamPort,
		Peers: map[string]string{"montague.example.net": montague.sipAddr()},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kamailio log:\n%s", kam.Log())
		}
	})

	if code, out, errOut := umppd(t, "", "resolve", "-config", montague.cfg, "mercutio@verona.example.org"); code != 0 || !regexpMatch(`mode sip`, out) {
		t.Errorf("umppd resolve verona.example.org = %d:\n%s%s", code, out, errOut)
	}

	mercutio := newSIPUser(t, "mercutio", "verona.example.org", "queenmab", "127.0.0.8", net.JoinHostPort("127.0.0.7", strconv.Itoa(kamPort)))
	mercutio.register(t, 600)
	mercutio.publish(t, "open", "Dreaming of Queen Mab")

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	romeo.send(t, `<presence><status>Sighing</status></presence>`)
	romeo.send(t, `<presence type="subscribe" to="mercutio@verona.example.org"/>`)
	romeo.waitStanza(t, "Mercutio's presence", `<presence[^>]*from="mercutio@verona\.example\.org`, `Queen Mab`)

	mercutio.subscribe(t, "romeo@montague.example.net")
	romeo.waitStanza(t, "Mercutio's request", `<presence[^>]*type="subscribe"`, `from="mercutio@verona\.example\.org"`)
	romeo.send(t, `<presence type="subscribed" to="mercutio@verona.example.org"/>`)
	mercutio.waitRequest(t, "NOTIFY", `(?i)Subscription-State: *active`, `<basic>open</basic>`, `Sighing`)

	romeo.send(t, `<message type="chat" to="mercutio@verona.example.org" id="k1"><body>Peace, peace, Mercutio, peace!</body></message>`)
	mercutio.waitRequest(t, "MESSAGE", `Peace, peace`)
	if code := mercutio.message(t, "romeo@montague.example.net", "A plague o' both your houses!"); code/100 != 2 {
		t.Errorf("Mercutio's MESSAGE answered %d", code)
	}
	romeo.waitStanza(t, "Mercutio's message", `<message[^>]*from="mercutio@verona\.example\.org`, `plague`)

	mercutio.publish(t, "closed", "Gone")
	romeo.waitStanza(t, "Mercutio unavailable", `<presence[^>]*type="unavailable"[^>]*|from="mercutio@verona\.example\.org[^"]*"[^>]*type="unavailable"`)
}
