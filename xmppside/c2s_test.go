package xmppside

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/stream"

	"github.com/umpp/umpp/store"
)

func TestChatMessageArrivesIntact(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mech   sasl.Mechanism
		direct bool
	}{
		{"scram-sha-256 starttls", sasl.ScramSha256, false},
		{"scram-sha-1 starttls", sasl.ScramSha1, false},
		{"plain direct tls", sasl.Plain, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.addUser("alice", "alice-pw")
			e.addUser("bob", "bob-pw")
			alice, err := e.login("alice", "alice-pw", loginOpts{mech: tc.mech, direct: tc.direct, resource: "desk"})
			if err != nil {
				t.Fatalf("alice login: %v", err)
			}
			bob, err := e.login("bob", "bob-pw", loginOpts{mech: tc.mech, direct: tc.direct, resource: "phone"})
			if err != nil {
				t.Fatalf("bob login: %v", err)
			}
			if alice.jid != "alice@example.test/desk" {
				t.Fatalf("bound %q", alice.jid)
			}
			// A forged from must be replaced by the authenticated JID.
			alice.send(`<message from='mallory@evil.example/x' to='bob@example.test/phone' type='chat' id='m1' xml:lang='de'>` +
				`<body>Wherefore art thou?</body><thread parent='p0'>t-42</thread>` +
				`<x xmlns='urn:example:unknown' a='1'><y>z &amp; w</y></x>` +
				`<request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/>` +
				`<replace id='m0' xmlns='urn:xmpp:message-correct:0'/></message>`)
			m := bob.next(true)
			if m.XMLName.Local != "message" {
				t.Fatalf("got %s, want message", m.XMLName.Local)
			}
			checks := map[string][2]string{
				"from":     {m.attr("from"), "alice@example.test/desk"},
				"to":       {m.attr("to"), "bob@example.test/phone"},
				"id":       {m.attr("id"), "m1"},
				"type":     {m.attr("type"), "chat"},
				"xml:lang": {m.attr("lang"), "de"},
			}
			for k, v := range checks {
				if v[0] != v[1] {
					t.Errorf("%s = %q, want %q", k, v[0], v[1])
				}
			}
			th, _ := m.child("thread")
			if th.Text != "t-42" || th.attr("parent") != "p0" {
				t.Errorf("thread = %q parent %q", th.Text, th.attr("parent"))
			}
			x, ok := m.child("x")
			if !ok || x.XMLName.Space != "urn:example:unknown" || x.attr("a") != "1" || len(x.Children) != 1 || x.Children[0].Text != "z & w" {
				t.Errorf("unknown child = %+v", x)
			}
			for _, want := range [][2]string{{"request", "urn:xmpp:receipts"}, {"active", "http://jabber.org/protocol/chatstates"}, {"replace", "urn:xmpp:message-correct:0"}} {
				c, ok := m.child(want[0])
				if !ok || c.XMLName.Space != want[1] {
					t.Errorf("child %s in %s missing: %+v", want[0], want[1], m.Children)
				}
			}
		})
	}
}

func TestBareJIDGoesToHighestPriority(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	high := e.mustLogin("bob", "pw", "high")
	low := e.mustLogin("bob", "pw", "low")
	high.send(`<presence><priority>5</priority></presence>`)
	low.send(`<presence><priority>1</priority></presence>`)
	// Wait until both presences are known to the server: each resource
	// sees the other's presence.
	high.nextWhere("presence of low", func(n node) bool { return n.attr("from") == "bob@example.test/low" })

	alice.send(`<message to='bob@example.test' type='chat' id='bare1'><body>to the bare JID</body></message>`)
	alice.send(`<message to='bob@example.test/low' type='chat' id='sentinel'><body>direct</body></message>`)
	if got := high.next(true); got.attr("id") != "bare1" {
		t.Errorf("high priority resource got %q, want bare1", got.attr("id"))
	}
	if got := low.next(true); got.attr("id") != "sentinel" {
		t.Errorf("low priority resource got %q first, want only the sentinel", got.attr("id"))
	}

	// Equal priorities: both get it.
	low.send(`<presence><priority>5</priority></presence>`)
	high.nextWhere("updated presence of low", func(n node) bool {
		p, _ := n.child("priority")
		return n.attr("from") == "bob@example.test/low" && p.Text == "5"
	})
	alice.send(`<message to='bob@example.test' id='tie'><body>both</body></message>`)
	for _, c := range []*client{high, low} {
		if got := c.next(true); got.attr("id") != "tie" {
			t.Errorf("%s got %q, want tie", c.jid, got.attr("id"))
		}
	}

	// A full JID that is gone: chat is treated as bare (RFC 6121 §8.5.3.2.1).
	alice.send(`<message to='bob@example.test/gone' type='chat' id='gone1'><body>x</body></message>`)
	for _, c := range []*client{high, low} {
		if got := c.next(true); got.attr("id") != "gone1" {
			t.Errorf("%s got %q, want gone1", c.jid, got.attr("id"))
		}
	}
}

func TestResourceConflict(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("bob", "pw")
	first := e.mustLogin("bob", "pw", "phone")
	second := e.mustLogin("bob", "pw", "phone")
	err := first.streamEnd()
	var se stream.Error
	if !errors.As(err, &se) || se.Err != "conflict" {
		t.Fatalf("first session ended with %v, want conflict stream error", err)
	}
	// The new session works.
	second.send(`<message to='bob@example.test/phone' id='self'><body>me</body></message>`)
	if got := second.next(true); got.attr("id") != "self" {
		t.Fatalf("second session got %q", got.attr("id"))
	}
}

func TestServerGeneratedResource(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("bob", "pw")
	a := e.mustLogin("bob", "pw", "")
	b := e.mustLogin("bob", "pw", "")
	if !strings.HasPrefix(a.jid, "bob@example.test/") || a.jid == "bob@example.test/" || a.jid == b.jid {
		t.Fatalf("generated resources %q and %q", a.jid, b.jid)
	}
}

func TestUnknownUserServiceUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<message to='nobody@example.test' type='chat' id='u1'><body>hello?</body></message>`)
	got := alice.next(true)
	if got.attr("type") != "error" || got.attr("id") != "u1" || got.errorCondition() != "service-unavailable" || got.attr("from") != "nobody@example.test" {
		t.Fatalf("got %+v, want service-unavailable error from nobody@example.test", got)
	}
	// No Remote configured: other domains bounce.
	alice.send(`<message to='juliet@elsewhere.example' type='chat' id='r1'><body>hi</body></message>`)
	got = alice.next(true)
	if got.errorCondition() != "remote-server-not-found" || got.attr("id") != "r1" {
		t.Fatalf("got %+v, want remote-server-not-found", got)
	}
}

func TestOfflineMessagesWithDelayAndRestart(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	for _, id := range []string{"o1", "o2", "o3"} {
		alice.send(`<message to='bob@example.test' type='chat' id='` + id + `'><body>while you were out</body><thread>th</thread></message>`)
	}
	// Make sure all three are stored before bob logs in: a ping
	// round-trip orders them (the server handles a stream in order).
	alice.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.nextWhere("ping result", func(n node) bool { return n.attr("id") == "p1" })

	// Restart the server on the same database before bob logs in.
	alice.close()
	e.stop()
	e.start(nil)

	bob := e.mustLogin("bob", "pw", "b")
	bob.send(`<presence/>`)
	before := time.Now()
	for _, id := range []string{"o1", "o2", "o3"} {
		m := bob.next(true)
		if m.attr("id") != id || m.attr("from") != "alice@example.test/a" {
			t.Fatalf("got id %q from %q, want %s from alice", m.attr("id"), m.attr("from"), id)
		}
		d, ok := m.child("delay")
		if !ok || d.XMLName.Space != "urn:xmpp:delay" || d.attr("from") != testDomain {
			t.Fatalf("no XEP-0203 delay: %+v", m.Children)
		}
		stamp, err := time.Parse(time.RFC3339, d.attr("stamp"))
		if err != nil || stamp.After(before) {
			t.Fatalf("stamp %q (%v) not before login", d.attr("stamp"), err)
		}
		if th, _ := m.child("thread"); th.Text != "th" {
			t.Fatalf("thread lost: %+v", m.Children)
		}
	}
	// Removed once written.
	deadline := time.Now().Add(5 * time.Second)
	for {
		msgs, err := e.db.OfflineMessages(context.Background(), "bob@example.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d offline messages still stored after delivery", len(msgs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBadPassword(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "right")
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain} {
		_, err := e.login("alice", "wrong", loginOpts{mech: mech})
		if err == nil || !strings.Contains(err.Error(), "not-authorized") {
			t.Errorf("%s with a bad password: %v, want not-authorized", mech.Name, err)
		}
	}
	if _, err := e.login("nobody", "x", loginOpts{}); err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("unknown user: %v, want not-authorized", err)
	}
}

func TestFailedLoginsAreThrottled(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AuthFailures = 2
		o.AuthFailureInterval = time.Hour
		o.AuthFailureDelay = 10 * time.Millisecond
	})
	e.addUser("alice", "right")
	for i := 0; i < 2; i++ {
		if _, err := e.login("alice", "wrong", loginOpts{}); err == nil || !strings.Contains(err.Error(), "not-authorized") {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Even the right password is refused now.
	if _, err := e.login("alice", "right", loginOpts{}); err == nil || !strings.Contains(err.Error(), "temporary-auth-failure") {
		t.Fatalf("throttled attempt: %v, want temporary-auth-failure", err)
	}
}

func TestSubscriptionBothWays(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	bob := e.mustLogin("bob", "pw", "b")
	alice.send(`<presence/>`)
	bob.send(`<presence/>`)

	alice.send(`<presence to='bob@example.test' type='subscribe'/>`)
	req := bob.nextWhere("subscribe", func(n node) bool { return n.attr("type") == "subscribe" })
	if req.attr("from") != "alice@example.test" {
		t.Fatalf("subscribe from %q, want alice's bare JID", req.attr("from"))
	}
	bob.send(`<presence to='alice@example.test' type='subscribed'/>`)
	alice.nextWhere("subscribed", func(n node) bool { return n.attr("type") == "subscribed" && n.attr("from") == "bob@example.test" })
	alice.nextWhere("bob's presence", func(n node) bool { return n.attr("type") == "" && n.attr("from") == "bob@example.test/b" })

	bob.send(`<presence to='alice@example.test' type='subscribe'/>`)
	alice.nextWhere("subscribe", func(n node) bool { return n.attr("type") == "subscribe" && n.attr("from") == "bob@example.test" })
	alice.send(`<presence to='bob@example.test' type='subscribed'/>`)
	bob.nextWhere("alice's presence", func(n node) bool { return n.attr("type") == "" && n.attr("from") == "alice@example.test/a" })

	for _, pair := range [][2]string{{"alice@example.test", "bob@example.test"}, {"bob@example.test", "alice@example.test"}} {
		it, err := e.db.RosterItem(context.Background(), pair[0], pair[1])
		if err != nil || it.Subscription != store.SubBoth || it.PendingIn || it.PendingOut {
			t.Fatalf("%s's item for %s: %+v %v, want both", pair[0], pair[1], it, err)
		}
	}
	bob.close()
	alice.nextWhere("bob unavailable", func(n node) bool { return n.attr("type") == "unavailable" && n.attr("from") == "bob@example.test/b" })

	// After a restart, a new login gets the contact's presence (probe).
	alice.close()
	e.stop()
	e.start(nil)
	bob = e.mustLogin("bob", "pw", "b2")
	bob.send(`<presence/>`)
	bob.sync()
	alice = e.mustLogin("alice", "pw", "a2")
	alice.send(`<presence/>`)
	alice.nextWhere("bob's presence after restart", func(n node) bool { return n.attr("type") == "" && n.attr("from") == "bob@example.test/b2" })
	bob.nextWhere("alice's presence after restart", func(n node) bool { return n.attr("type") == "" && n.attr("from") == "alice@example.test/a2" })
}

func TestPendingSubscriptionRedeliveredAtLogin(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<presence to='bob@example.test' type='subscribe'/>`)
	alice.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
	res := alice.nextWhere("roster", func(n node) bool { return n.attr("id") == "r1" })
	q, _ := res.child("query")
	if len(q.Children) != 1 || q.Children[0].attr("jid") != "bob@example.test" || q.Children[0].attr("ask") != "subscribe" || q.Children[0].attr("subscription") != "none" {
		t.Fatalf("roster = %+v", q)
	}
	bob := e.mustLogin("bob", "pw", "b")
	bob.send(`<presence/>`)
	req := bob.nextWhere("pending subscribe", func(n node) bool { return n.attr("type") == "subscribe" })
	if req.attr("from") != "alice@example.test" {
		t.Fatalf("from %q", req.attr("from"))
	}
	// The inbound request alone does not show in bob's roster.
	bob.send(`<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>`)
	res = bob.nextWhere("roster", func(n node) bool { return n.attr("id") == "r2" })
	if q, _ := res.child("query"); len(q.Children) != 0 {
		t.Fatalf("bob's roster = %+v, want empty", q)
	}
}

func TestServiceQueries(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	for _, tc := range []struct {
		req, cond, child string
	}{
		{`<iq type='get' id='q1' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>`, "", ""},
		{`<iq type='get' id='q2' to='example.test'><query xmlns='jabber:iq:version'/></iq>`, "", "query"},
		{`<iq type='get' id='q3' to='example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, "", "query"},
		{`<iq type='get' id='q4' to='example.test'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`, "", "query"},
		{`<iq type='get' id='q5' to='alice@example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, "", "query"},
		{`<iq type='get' id='q6' to='example.test'><unknown xmlns='urn:example:nothing'/></iq>`, "service-unavailable", ""},
		{`<iq type='set' id='q7'><unknown xmlns='urn:example:nothing'/></iq>`, "service-unavailable", ""},
		{`<iq type='get' id='q8' to='ghost@example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, "service-unavailable", ""},
		{`<iq type='get' id='q9' to='alice@example.test/nope'><ping xmlns='urn:xmpp:ping'/></iq>`, "service-unavailable", ""},
	} {
		alice.send(tc.req)
		id := tc.req[strings.Index(tc.req, "id='")+4:]
		id = id[:strings.IndexByte(id, '\'')]
		got := alice.nextWhere("reply "+id, func(n node) bool { return n.attr("id") == id })
		switch {
		case tc.cond != "" && got.errorCondition() != tc.cond:
			t.Errorf("%s: got %+v, want %s", id, got, tc.cond)
		case tc.cond == "" && got.attr("type") != "result":
			t.Errorf("%s: got %+v, want result", id, got)
		case tc.child != "":
			if _, ok := got.child(tc.child); !ok {
				t.Errorf("%s: result without %s: %+v", id, tc.child, got)
			}
		}
	}
}
