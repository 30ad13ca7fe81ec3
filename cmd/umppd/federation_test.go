package main

import (
	"net"
	"regexp"
	"strconv"
	"testing"
)

// Two UMPP domains, montague.example.net (127.0.0.2) and
// capulets.example.com (127.0.0.3), found through SRV records in a real
// dnsmasq. Romeo is an XMPP client of montague, Juliet a SIMPLE client of
// capulets. They subscribe to each other's presence and exchange
// threaded messages; the SIP between the servers is checked on the wire
// against draft-mahy-impp-unified-proposal-00 §4.1 and §4.2.
func TestFederationXMPPAndSIMPLE(t *testing.T) {
	montague, capulets, tap := romeoAndJuliet(t, "[session]\nidle_timeout = \"4s\"\n")

	juliet := newSIPUser(t, "juliet", "capulets.example.com", "balcony", "127.0.0.5", capulets.sipAddr())
	juliet.register(t, 600)
	juliet.publish(t, "open", "On the balcony")

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "orchard", "wherefore")
	romeo.send(t, `<presence><status>In the orchard</status></presence>`)
	romeo.send(t, `<presence type="subscribe" to="juliet@capulets.example.com"/>`)

	// §4.2: montague subscribes for Romeo.
	sub := tap.waitSIP(t, "SUBSCRIBE from montague", `^SUBSCRIBE (pres|sip):juliet@capulets\.example\.com`, `(?i)\nEvent: *presence`, `(?i)\nFrom:[^\n]*romeo@montague\.example\.net`)
	t.Logf("wire:\n%s", sub)
	tap.waitSIP(t, "200 to the SUBSCRIBE", `^SIP/2\.0 (200|202) `, `(?i)\nCSeq: *\d+ SUBSCRIBE`, `(?i)\nTo:[^\n]*juliet@capulets\.example\.com`)

	// Juliet subscribes to Romeo from her SIMPLE client: capulets
	// subscribes for her, and Romeo is asked.
	juliet.subscribe(t, "romeo@montague.example.net")
	romeo.waitStanza(t, "subscription request from Juliet", `<presence[^>]*type="subscribe"`, `from="juliet@capulets\.example\.com"`)
	romeo.send(t, `<presence type="subscribed" to="juliet@capulets.example.com"/>`)

	// Juliet's subscription to Romeo on the wire, and NOTIFYs both ways
	// with PIDF open.
	tap.waitSIP(t, "SUBSCRIBE from capulets", `^SUBSCRIBE (pres|sip):romeo@montague\.example\.net`, `(?i)\nFrom:[^\n]*juliet@capulets\.example\.com`)
	notifyJ := tap.waitSIP(t, "NOTIFY with Juliet open", `^NOTIFY `, `(?i)\nSubscription-State: *active`, `<basic>open</basic>`, `entity="pres:juliet@capulets\.example\.com"`)
	t.Logf("wire:\n%s", notifyJ)
	tap.waitSIP(t, "NOTIFY with Romeo open", `^NOTIFY `, `(?i)\nSubscription-State: *active`, `<basic>open</basic>`, `entity="pres:romeo@montague\.example\.net"`)

	// What the users see: Romeo Juliet's presence as XMPP, Juliet
	// Romeo's as a NOTIFY from her server.
	romeo.waitStanza(t, "Juliet available", `<presence[^>]*from="juliet@capulets\.example\.com`, `On the balcony`)
	juliet.waitRequest(t, "NOTIFY", `<basic>open</basic>`, `romeo@montague\.example\.net`)

	// §4.1: Romeo's first message sets up a session.
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="m1"><body>But soft! What light through yonder window breaks?</body></message>`)
	invite := tap.waitSIP(t, "INVITE", `^INVITE im:juliet@capulets\.example\.com SIP/2\.0`,
		`(?i)\nFrom:[^\n]*im:romeo@montague\.example\.net`, `(?i)\nTo:[^\n]*im:juliet@capulets\.example\.com`,
		`(?i)\nContent-Type: *application/sdp`, `\nm=message \d+ xmpp/tcp chat`,
		`\na=jid:`+regexp.QuoteMeta(romeo.jid)+`\r?\n`, `\na=thread:\S+`)
	t.Logf("wire:\n%s", invite)
	thread := regexp.MustCompile(`\na=thread:(\S+)`).FindStringSubmatch(invite)[1]
	ok := tap.waitSIP(t, "200 to the INVITE", `^SIP/2\.0 200 `, `(?i)\nCSeq: *\d+ INVITE`, `\na=jid:juliet@capulets\.example\.com/\S+`)
	t.Logf("wire:\n%s", ok)
	tap.waitSIP(t, "ACK", `^ACK `)
	msg := juliet.waitRequest(t, "MESSAGE", `But soft!`)
	if from := msg.From().Address; from.User != "romeo" || from.Host != "montague.example.net" {
		t.Errorf("Juliet's MESSAGE is from %s, want romeo@montague.example.net", from.String())
	}

	// Juliet answers from her SIMPLE client: the same session carries it
	// to Romeo's resource with the session's thread.
	if code := juliet.message(t, "romeo@montague.example.net", "Romeo, Romeo, wherefore art thou Romeo?"); code/100 != 2 {
		t.Fatalf("Juliet's MESSAGE answered %d", code)
	}
	reply := romeo.waitStanza(t, "Juliet's message", `<message[^>]*from="juliet@capulets\.example\.com/`, `wherefore art thou`)
	if !regexp.MustCompile(`<thread[^>]*>` + regexp.QuoteMeta(thread) + `</thread>`).MatchString(reply) {
		t.Errorf("Juliet's message to Romeo lacks the session thread %s:\n%s", thread, reply)
	}
	if n := tap.count("INVITE "); n != 1 {
		t.Errorf("%d INVITEs for one conversation", n)
	}

	// Idle for montague's 4 s: the session ends with BYE.
	tap.waitSIP(t, "BYE", `^BYE `)
	tap.waitSIP(t, "200 to the BYE", `^SIP/2\.0 200 `, `(?i)\nCSeq: *\d+ BYE`)

	// Juliet goes offline: NOTIFY closed, and Romeo sees her unavailable.
	juliet.publish(t, "closed", "Gone to bed")
	tap.waitSIP(t, "NOTIFY with Juliet closed", `^NOTIFY `, `<basic>closed</basic>`, `entity="pres:juliet@capulets\.example\.com"`)
	romeo.waitStanza(t, "Juliet unavailable", `<presence[^>]*from="juliet@capulets\.example\.com[^"]*"[^>]*type="unavailable"|<presence[^>]*type="unavailable"[^>]*from="juliet@capulets`)

	// A message after the BYE opens a new session.
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="m2"><body>Good night</body></message>`)
	juliet.waitRequest(t, "MESSAGE", `Good night`)
	if n := tap.waitCount("INVITE ", 2); n != 2 {
		t.Errorf("%d INVITEs after a BYE and a new message, want 2", n)
	}
}

// The same two domains with both users on XMPP: the session is set up
// over SIP all the same, the messages carry its thread, and presence
// crosses as SUBSCRIBE/NOTIFY.
func TestFederationBothXMPP(t *testing.T) {
	metricsAddr := net.JoinHostPort("127.0.0.2", strconv.Itoa(freePortOn(t, "127.0.0.2")))
	montague, capulets, tap := romeoAndJulietWith(t, "[session]\nidle_timeout = \"4s\"\n", func(m *domainServer) { m.metrics = metricsAddr })

	romeo := xmppConnect(t, montague.c2sAddr(), "romeo", "montague.example.net", "", "wherefore")
	juliet := xmppConnect(t, capulets.c2sAddr(), "juliet", "capulets.example.com", "", "balcony")
	romeo.send(t, `<presence><status>In the orchard</status></presence>`)
	juliet.send(t, `<presence><show>chat</show><status>On the balcony</status></presence>`)

	romeo.send(t, `<presence type="subscribe" to="juliet@capulets.example.com"/>`)
	juliet.waitStanza(t, "Romeo's request", `<presence[^>]*type="subscribe"`, `from="romeo@montague\.example\.net"`)
	juliet.send(t, `<presence type="subscribed" to="romeo@montague.example.net"/>`)
	juliet.send(t, `<presence type="subscribe" to="romeo@montague.example.net"/>`)
	romeo.waitStanza(t, "Juliet's request", `<presence[^>]*type="subscribe"`, `from="juliet@capulets\.example\.com"`)
	romeo.send(t, `<presence type="subscribed" to="juliet@capulets.example.com"/>`)

	romeo.waitStanza(t, "Juliet available", `<presence[^>]*from="`+regexp.QuoteMeta(juliet.jid)+`"`, `On the balcony`)
	juliet.waitStanza(t, "Romeo available", `<presence[^>]*from="`+regexp.QuoteMeta(romeo.jid)+`"`, `In the orchard`)
	tap.waitSIP(t, "SUBSCRIBE for Romeo", `^SUBSCRIBE pres:juliet@capulets\.example\.com`)
	tap.waitSIP(t, "SUBSCRIBE for Juliet", `^SUBSCRIBE pres:romeo@montague\.example\.net`)
	tap.waitSIP(t, "NOTIFY with Juliet's XMPP presence", `^NOTIFY `, `<basic>open</basic>`, `On the balcony`)

	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="x1"><body>Lady, by yonder blessed moon I vow</body></message>`)
	invite := tap.waitSIP(t, "INVITE", `^INVITE im:juliet@capulets\.example\.com `, `\na=jid:`+regexp.QuoteMeta(romeo.jid)+`\r?\n`)
	thread := regexp.MustCompile(`\na=thread:(\S+)`).FindStringSubmatch(invite)[1]
	tap.waitSIP(t, "200 with Juliet's resource", `^SIP/2\.0 200 `, `\na=jid:`+regexp.QuoteMeta(juliet.jid)+`\r?\n`)
	got := juliet.waitStanza(t, "Romeo's message", `<message[^>]*from="`+regexp.QuoteMeta(romeo.jid)+`"`, `blessed moon`)
	if !regexp.MustCompile(`<thread[^>]*>` + regexp.QuoteMeta(thread) + `</thread>`).MatchString(got) {
		t.Errorf("message lacks the session thread %s:\n%s", thread, got)
	}
	juliet.send(t, `<message type="chat" to="`+romeo.jid+`" id="x2"><body>O, swear not by the moon</body><thread>`+thread+`</thread></message>`)
	got = romeo.waitStanza(t, "Juliet's answer", `<message[^>]*from="`+regexp.QuoteMeta(juliet.jid)+`"`, `swear not`)
	if !regexp.MustCompile(`<thread[^>]*>` + regexp.QuoteMeta(thread) + `</thread>`).MatchString(got) {
		t.Errorf("answer lacks the session thread %s:\n%s", thread, got)
	}
	// Delivery receipts (XEP-0184) pass through the session.
	romeo.send(t, `<message type="chat" to="juliet@capulets.example.com" id="x3"><body>Wilt thou leave me so unsatisfied?</body><request xmlns="urn:xmpp:receipts"/></message>`)
	juliet.waitStanza(t, "message asking for a receipt", `unsatisfied`, `<request xmlns="urn:xmpp:receipts"`)
	juliet.send(t, `<message to="`+romeo.jid+`" id="x4"><received xmlns="urn:xmpp:receipts" id="x3"/></message>`)
	romeo.waitStanza(t, "the receipt", `<received xmlns="urn:xmpp:receipts"[^>]*id="x3"`)
	if n := tap.count("INVITE "); n != 1 {
		t.Errorf("%d INVITEs for one conversation", n)
	}
	// The operator sees the session and the subscription.
	if code, out, errOut := umppd(t, "", "sessions", "-config", montague.cfg); code != 0 || !regexpMatch(`umpp-im\s+`+regexp.QuoteMeta(romeo.jid)+`\s+`+regexp.QuoteMeta(juliet.jid)+`.*thread=`+regexp.QuoteMeta(thread), out) {
		t.Errorf("umppd sessions = %d:\n%s%s", code, out, errOut)
	}
	if code, out, _ := umppd(t, "", "status", "-config", montague.cfg); code != 0 || !regexpMatch(`im sessions: 1\n`, out) || !regexpMatch(`subscriptions: 1 in, 1 out`, out) {
		t.Errorf("umppd status = %d:\n%s", code, out)
	}
	tap.waitSIP(t, "BYE after montague's idle timeout", `^BYE `)
	// The operator's metrics count the session, its end and the messages.
	waitMetric(t, "http://"+metricsAddr+"/metrics", `umpp_im_sessions_ended_total{reason="idle"}`, 1)
	_, exp := scrape(t, "http://"+metricsAddr+"/metrics")
	for series, want := range map[string]float64{
		`umpp_im_sessions_started_total`:                             1,
		`umpp_im_sessions_active`:                                    0,
		`umpp_presence_subscriptions_started_total{direction="out"}`: 1,
	} {
		if got := sample(t, exp, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := sample(t, exp, `umpp_messages_routed_total{path="xmpp->xmpp"}`); got < 3 {
		t.Errorf("umpp_messages_routed_total{path=\"xmpp->xmpp\"} = %v, want at least Romeo's 3 messages", got)
	}

	// Juliet logs out: NOTIFY closed, Romeo sees her unavailable.
	juliet.close()
	tap.waitSIP(t, "NOTIFY with Juliet closed", `^NOTIFY `, `<basic>closed</basic>`)
	romeo.waitStanza(t, "Juliet unavailable", `<presence[^>]*type="unavailable"`)
}

// Both users on SIMPLE clients: SUBSCRIBE/NOTIFY and MESSAGE end to end,
// an XMPP session between the servers in the middle.
func TestFederationBothSIMPLE(t *testing.T) {
	montague, capulets, tap := romeoAndJuliet(t, "")

	romeo := newSIPUser(t, "romeo", "montague.example.net", "wherefore", "127.0.0.4", montague.sipAddr())
	juliet := newSIPUser(t, "juliet", "capulets.example.com", "balcony", "127.0.0.5", capulets.sipAddr())
	romeo.register(t, 600)
	juliet.register(t, 600)
	romeo.publish(t, "open", "Under the window")
	juliet.publish(t, "open", "On the balcony")

	romeo.subscribe(t, "juliet@capulets.example.com")
	juliet.subscribe(t, "romeo@montague.example.net")
	romeo.waitRequest(t, "NOTIFY", `(?i)Subscription-State: *active`, `<basic>open</basic>`, `On the balcony`)
	juliet.waitRequest(t, "NOTIFY", `(?i)Subscription-State: *active`, `<basic>open</basic>`, `Under the window`)

	if code := romeo.message(t, "juliet@capulets.example.com", "It is my lady, O, it is my love!"); code/100 != 2 {
		t.Fatalf("Romeo's MESSAGE answered %d", code)
	}
	tap.waitSIP(t, "INVITE", `^INVITE im:juliet@capulets\.example\.com `, `\na=jid:romeo@montague\.example\.net/umpp-sip\r?\n`)
	tap.waitSIP(t, "200", `^SIP/2\.0 200 `, `\na=jid:juliet@capulets\.example\.com/umpp-sip\r?\n`)
	m := juliet.waitRequest(t, "MESSAGE", `my lady`)
	if f := m.From().Address; f.User != "romeo" || f.Host != "montague.example.net" {
		t.Errorf("MESSAGE from %s@%s, want romeo@montague.example.net", f.User, f.Host)
	}
	if code := juliet.message(t, "romeo@montague.example.net", "Ay me!"); code/100 != 2 {
		t.Fatalf("Juliet's MESSAGE answered %d", code)
	}
	romeo.waitRequest(t, "MESSAGE", `Ay me!`)
	if n := tap.count("INVITE "); n != 1 {
		t.Errorf("%d INVITEs for one conversation, want 1", n)
	}

	juliet.publish(t, "closed", "Asleep")
	romeo.waitRequest(t, "NOTIFY", `<basic>closed</basic>`)
}
