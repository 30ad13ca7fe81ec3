package main

import (
	"regexp"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// The community bridge inside one domain (RFC 7247, RFC 7572, RFC 8048):
// the Nurse on XMPP and Juliet on a SIMPLE client of the same umppd see
// each other's presence and exchange messages, typing notifications and
// delivery errors, each on its own protocol.
func TestBridgeWithinDomain(t *testing.T) {
	capulets := newDomainServer(t, "capulets.example.com", "127.0.0.3", "")
	startDomains(t, map[*domainServer]map[string]string{
		capulets: {"juliet": "balcony", "nurse": "angelica"},
	}, capulets)

	juliet := newSIPUser(t, "juliet", "capulets.example.com", "balcony", "127.0.0.5", capulets.sipAddr())
	juliet.register(t, 600)
	juliet.publish(t, "open", "Waiting for news")
	nurse := xmppConnect(t, capulets.c2sAddr(), "nurse", "capulets.example.com", "", "angelica")
	nurse.send(t, `<presence><show>away</show><status>Fetching the cords</status></presence>`)

	// Presence both ways: Juliet's SUBSCRIBE asks the Nurse, who approves
	// on XMPP; the Nurse's subscription is pre-approved by Juliet's.
	juliet.subscribe(t, "nurse@capulets.example.com")
	nurse.waitStanza(t, "Juliet's request", `<presence[^>]*type="subscribe"`, `from="juliet@capulets\.example\.com"`)
	nurse.send(t, `<presence type="subscribed" to="juliet@capulets.example.com"/>`)
	juliet.waitRequest(t, "NOTIFY", `(?i)Subscription-State: *active`, `<basic>open</basic>`, `Fetching the cords`)
	nurse.send(t, `<presence type="subscribe" to="juliet@capulets.example.com"/>`)
	nurse.waitStanza(t, "Juliet's presence", `<presence[^>]*from="juliet@capulets\.example\.com/umpp-sip"`, `Waiting for news`)

	// Messages both ways.
	nurse.send(t, `<message type="chat" to="juliet@capulets.example.com" id="n1"><body>Your love says, like an honest gentleman</body></message>`)
	m := juliet.waitRequest(t, "MESSAGE", `honest gentleman`)
	if f := m.From().Address; f.User != "nurse" || f.Host != "capulets.example.com" {
		t.Errorf("MESSAGE from %s@%s, want nurse@capulets.example.com", f.User, f.Host)
	}
	if ct := m.ContentType(); ct == nil || !regexp.MustCompile(`(?i)^text/plain`).MatchString(ct.Value()) {
		t.Errorf("MESSAGE Content-Type %v, want text/plain", ct)
	}
	if code := juliet.message(t, "nurse@capulets.example.com", "What says he of our marriage?"); code != 200 {
		t.Errorf("Juliet's MESSAGE to the Nurse answered %d, want 200", code)
	}
	nurse.waitStanza(t, "Juliet's message", `<message[^>]*from="juliet@capulets\.example\.com/umpp-sip"`, `our marriage`)

	// Typing: XEP-0085 composing becomes an isComposing MESSAGE.
	nurse.send(t, `<message type="chat" to="juliet@capulets.example.com" id="n2"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	juliet.waitRequest(t, sip.MESSAGE, `application/im-iscomposing\+xml`, `<state>active</state>`)

	// And back: RFC 3994 isComposing becomes XEP-0085 composing.
	if code := juliet.messageWith(t, "nurse@capulets.example.com", "application/im-iscomposing+xml",
		`<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><contenttype>text/plain</contenttype></isComposing>`); code != 200 {
		t.Errorf("isComposing MESSAGE answered %d", code)
	}
	nurse.waitStanza(t, "Juliet typing", `<message[^>]*from="juliet@capulets\.example\.com/umpp-sip"`, `<composing xmlns="http://jabber.org/protocol/chatstates"`)

	// Delivery errors on each side's own protocol.
	if code := juliet.message(t, "tybalt@capulets.example.com", "Is he dead?"); code != 404 {
		t.Errorf("MESSAGE to a user who does not exist answered %d, want 404", code)
	}
	nurse.send(t, `<message type="chat" to="romeo@montague.example.net" id="n3"><body>Hie you</body></message>`)
	nurse.waitStanza(t, "bounce for a domain nobody serves", `<message[^>]*type="error"`, `id="n3"`, `remote-server-not-found`)
}

// A message for a SIMPLE user who is not registered waits in offline
// storage and reaches her SIP client when it registers.
func TestBridgeOfflineToSIMPLE(t *testing.T) {
	capulets := newDomainServer(t, "capulets.example.com", "127.0.0.3", "")
	startDomains(t, map[*domainServer]map[string]string{
		capulets: {"juliet": "balcony", "nurse": "angelica"},
	}, capulets)
	nurse := xmppConnect(t, capulets.c2sAddr(), "nurse", "capulets.example.com", "", "angelica")
	nurse.send(t, `<message type="chat" to="juliet@capulets.example.com" id="o1"><body>Madam, your lady mother is coming</body></message>`)
	nurse.send(t, `<message type="chat" to="juliet@capulets.example.com" id="o2"><body>The day is broke; be wary, look about</body></message>`)
	// The server handles the Nurse's stream in order: once it answers a
	// ping, both messages are stored.
	nurse.send(t, `<iq type="get" id="ping1" to="capulets.example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
	nurse.waitStanza(t, "pong", `<iq[^>]*id="ping1"`)

	juliet := newSIPUser(t, "juliet", "capulets.example.com", "balcony", "127.0.0.5", capulets.sipAddr())
	juliet.register(t, 600)
	first := juliet.waitRequest(t, sip.MESSAGE, `lady mother`)
	second := juliet.waitRequest(t, sip.MESSAGE, `day is broke`)
	if f := first.From().Address; f.User != "nurse" {
		t.Errorf("offline MESSAGE from %s", f.String())
	}
	juliet.mu.Lock()
	order := []string{}
	for _, r := range juliet.requests {
		if r.Method == sip.MESSAGE {
			order = append(order, string(r.Body()))
		}
	}
	juliet.mu.Unlock()
	if len(order) != 2 || order[0] != string(first.Body()) || order[1] != string(second.Body()) {
		t.Errorf("offline MESSAGEs in order %q", order)
	}
	// Taken once: a second registration brings nothing again.
	juliet.register(t, 600)
	nurse.send(t, `<message type="chat" to="juliet@capulets.example.com" id="o3"><body>marker</body></message>`)
	juliet.waitRequest(t, sip.MESSAGE, `marker`)
	juliet.mu.Lock()
	n := 0
	for _, r := range juliet.requests {
		if r.Method == sip.MESSAGE {
			n++
		}
	}
	juliet.mu.Unlock()
	if n != 3 {
		t.Errorf("%d MESSAGEs, want 3 (the two stored ones once)", n)
	}
}
