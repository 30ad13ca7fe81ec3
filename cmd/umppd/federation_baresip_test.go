package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/internal/testenv"
)

// Juliet on a real SIMPLE client: Debian's baresip 1.0.0 (baresip-core),
// headless, driven over its ctrl_tcp module (testenv.StartBaresip).

// setSIPKey adds key = value to the [sip] table of s's configuration.
func setSIPKey(t *testing.T, s *domainServer, key, value string) {
	t.Helper()
	b, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.Contains(text, "\n[sip]\n") {
		t.Fatalf("%s: no [sip] table:\n%s", s.cfg, text)
	}
	text = strings.Replace(text, "\n[sip]\n", "\n[sip]\n"+key+" = "+value+"\n", 1)
	if err := os.WriteFile(s.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFederationBaresipJuliet is TestFederationXMPPAndSIMPLE with Juliet
// on baresip 1.0.0: montague.example.net (127.0.0.2) and
// capulets.example.com (127.0.0.3) found through dnsmasq SRV records,
// Romeo an XMPP client of montague, Juliet baresip (127.0.0.5)
// registered with capulets over UDP. baresip's presence module publishes
// her presence (open once registered) and subscribes to Romeo, a contact
// marked ;presence=p2p; its MESSAGEs go to the current contact.
//
// What baresip 1.0.0 cannot do, so the test does not ask it: publish a
// note or any status text (its PIDF has basic open/closed and an empty
// rpid:activities, so Romeo's presence from Juliet has no <status>);
// subscribe at a moment of the test's choosing (it subscribes to its
// ;presence=p2p contacts a second after starting, and ctrl_tcp has no
// command to add a contact); report a received MESSAGE over ctrl_tcp (the
// menu module prints it on stdio, where the test reads it); show the
// note of a NOTIFY (its contact list has Online/Offline/Busy only); and
// answer a digest challenge other than MD5 (libre 1.1 fails the request
// with ENOSYS if any WWW-Authenticate in a 401 is not MD5, in whatever
// order, so capulets challenges with MD5 alone).
func TestFederationBaresipJuliet(t *testing.T) {
	montague := newDomainServer(t, "montague.example.net", "127.0.0.2", "")
	capulets := newDomainServer(t, "capulets.example.com", "127.0.0.3", "")
	tap := startTap(t, montague, capulets)
	dns := startDomainsConfigured(t, map[*domainServer]map[string]string{
		montague: {"romeo": "wherefore"},
		capulets: {"juliet": "balcony"},
	}, func(s *domainServer) {
		if s == capulets {
			// libre 1.1 (baresip's SIP stack) answers a 401 only
			// if every challenge in it is MD5: any other
			// algorithm fails the whole request with ENOSYS,
			// whatever the order (src/sip/auth.c auth_handler).
			// So capulets challenges with MD5 alone.
			setSIPKey(t, s, "digest_algorithms", `["MD5"]`)
		}
	}, montague, capulets)

	juliet := testenv.StartBaresip(t, testenv.BaresipOptions{
		IP:       "127.0.0.5",
		SIPPort:  freePortOn(t, "127.0.0.5"),
		DNS:      dns.Addr,
		Account:  `<sip:juliet@capulets.example.com;transport=udp>;auth_pass=balcony;outbound="sip:` + capulets.sipAddr() + `;transport=udp";regint=600;pubint=600`,
		Contacts: []string{`"Romeo" <sip:romeo@montague.example.net>;presence=p2p`},
	})
	// ctrl_tcp relays events only to a client connected in time, and
	// baresip registers as it starts: the REGISTER is watched on the
	// wire.
	tap.waitSIP(t, "baresip's REGISTER answered", `^SIP/2\.0 200 `, `(?i)\nCSeq: *\d+ REGISTER`, `(?i)\nTo:[^\n]*juliet@capulets\.example\.com`)
	// Once registered, baresip publishes open.
	tap.waitSIP(t, "baresip's PUBLISH", `^PUBLISH sip:juliet@capulets\.example\.com`, `<basic>open</basic>`)
	tap.waitSIP(t, "200 to the PUBLISH", `^SIP/2\.0 200 `, `(?i)\nCSeq: *\d+ PUBLISH`, `(?i)\nSIP-ETag: *\S+`)

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "orchard", "wherefore")
	romeo.send(t, `<presence><status>In the orchard</status></presence>`)
	romeo.send(t, `<presence type="subscribe" to="juliet@capulets.example.com"/>`)

	// §4.2: montague subscribes for Romeo and is told Juliet is open.
	tap.waitSIP(t, "SUBSCRIBE from montague", `^SUBSCRIBE (pres|sip):juliet@capulets\.example\.com`, `(?i)\nEvent: *presence`, `(?i)\nFrom:[^\n]*romeo@montague\.example\.net`)
	notifyJ := tap.waitSIP(t, "NOTIFY with Juliet open", `^NOTIFY `, `(?i)\nSubscription-State: *active`, `<basic>open</basic>`, `entity="pres:juliet@capulets\.example\.com"`)
	t.Logf("wire:\n%s", notifyJ)
	romeo.waitStanza(t, "Juliet available", `<presence[^>]*from="juliet@capulets\.example\.com`)

	// baresip subscribed to Romeo at start: capulets subscribes for
	// her, and Romeo is asked. When he approves, montague's NOTIFY
	// carries his presence, and capulets passes it on to baresip.
	tap.waitSIP(t, "baresip's SUBSCRIBE", `^SUBSCRIBE sip:romeo@montague\.example\.net`, `(?i)\nFrom:[^\n]*juliet@capulets\.example\.com`)
	romeo.waitStanza(t, "subscription request from Juliet", `<presence[^>]*type="subscribe"`, `from="juliet@capulets\.example\.com"`)
	romeo.send(t, `<presence type="subscribed" to="juliet@capulets.example.com"/>`)
	tap.waitSIP(t, "SUBSCRIBE from capulets", `^SUBSCRIBE (pres|sip):romeo@montague\.example\.net`, `(?i)\nFrom:[^\n]*juliet@capulets\.example\.com`, `(?i)\nVia:[^\n]*127\.0\.0\.3`)
	tap.waitSIP(t, "NOTIFY with Romeo open", `^NOTIFY `, `(?i)\nSubscription-State: *active`, `<basic>open</basic>`, `entity="pres:romeo@montague\.example\.net"`)
	// What Juliet sees: baresip's contact list shows Romeo online.
	deadline := time.Now().Add(30 * time.Second)
	for {
		list := juliet.Command(t, "contacts", "")
		if regexp.MustCompile(`Online\S*\s+"?Romeo"?\s+<sip:romeo@montague\.example\.net`).MatchString(list) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip's contacts never show Romeo online:\n%s\n%s", list, juliet.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// §4.1: Romeo's first message sets up a session with Juliet's SIP
	// resource.
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="m1"><body>But soft! What light through yonder window breaks?</body></message>`)
	invite := tap.waitSIP(t, "INVITE", `^INVITE im:juliet@capulets\.example\.com SIP/2\.0`,
		`(?i)\nFrom:[^\n]*im:romeo@montague\.example\.net`, `(?i)\nTo:[^\n]*im:juliet@capulets\.example\.com`,
		`(?i)\nContent-Type: *application/sdp`, `\nm=message \d+ xmpp/tcp chat`,
		`\na=jid:`+regexp.QuoteMeta(romeo.jid)+`\r?\n`, `\na=thread:\S+`)
	t.Logf("wire:\n%s", invite)
	thread := regexp.MustCompile(`\na=thread:(\S+)`).FindStringSubmatch(invite)[1]
	ok := tap.waitSIP(t, "200 to the INVITE", `^SIP/2\.0 200 `, `(?i)\nCSeq: *\d+ INVITE`, `\na=jid:juliet@capulets\.example\.com/umpp-sip\r?\n`)
	t.Logf("wire:\n%s", ok)
	tap.waitSIP(t, "ACK", `^ACK `)
	// capulets delivers it to baresip as a MESSAGE, which prints it.
	tap.waitSIP(t, "MESSAGE to baresip", `^MESSAGE sip:juliet[^@\s]*@127\.0\.0\.5`, `But soft!`)
	juliet.WaitOutput(t, "Romeo's message", `romeo@montague\.example\.net[^\n]*: "But soft! What light through yonder window breaks\?"`)

	// Juliet answers from baresip, to her current contact (Romeo):
	// the same session carries it to Romeo's resource with the
	// session's thread.
	juliet.Command(t, "contact_next", "")
	juliet.Command(t, "message", "Romeo, Romeo, wherefore art thou Romeo?")
	tap.waitSIP(t, "baresip's MESSAGE", `^MESSAGE sip:romeo@montague\.example\.net`, `wherefore art thou`)
	tap.waitSIP(t, "200 to baresip's MESSAGE", `^SIP/2\.0 20\d `, `(?i)\nCSeq: *\d+ MESSAGE`, `(?i)\nTo:[^\n]*romeo@montague\.example\.net`)
	reply := romeo.waitStanza(t, "Juliet's message", `<message[^>]*from="juliet@capulets\.example\.com/`, `wherefore art thou`)
	if !regexp.MustCompile(`<thread[^>]*>` + regexp.QuoteMeta(thread) + `</thread>`).MatchString(reply) {
		t.Errorf("Juliet's message to Romeo lacks the session thread %s:\n%s", thread, reply)
	}
	if n := tap.count("INVITE "); n != 1 {
		t.Errorf("%d INVITEs for one conversation", n)
	}

	// Juliet goes offline (baresip's presence_offline): PUBLISH
	// closed, NOTIFY closed, and Romeo sees her unavailable.
	juliet.Command(t, "presence_offline", "")
	tap.waitSIP(t, "baresip's PUBLISH closed", `^PUBLISH sip:juliet@capulets\.example\.com`, `<basic>closed</basic>`)
	tap.waitSIP(t, "NOTIFY with Juliet closed", `^NOTIFY `, `<basic>closed</basic>`, `entity="pres:juliet@capulets\.example\.com"`)
	romeo.waitStanza(t, "Juliet unavailable", `<presence[^>]*from="juliet@capulets\.example\.com[^"]*"[^>]*type="unavailable"|<presence[^>]*type="unavailable"[^>]*from="juliet@capulets`)
}
