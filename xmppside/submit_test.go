package xmppside

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umpp/umpp/store"
)

// fakeEndpoint stands in for the UMPP gateway's resource of a SIP user:
// a foreign Endpoint registered in the Locator.
type fakeEndpoint struct {
	jid   string
	avail bool
	got   chan string
}

func newFakeEndpoint(jid string, avail bool) *fakeEndpoint {
	return &fakeEndpoint{jid: jid, avail: avail, got: make(chan string, 100)}
}

func (f *fakeEndpoint) JID() string           { return f.jid }
func (f *fakeEndpoint) Presence() (int, bool) { return 0, f.avail }
func (f *fakeEndpoint) LastPresence() []byte  { return nil }
func (f *fakeEndpoint) Close(string)          {}
func (f *fakeEndpoint) Deliver(_ context.Context, raw []byte) error {
	select {
	case f.got <- string(raw):
		return nil
	default:
		return ErrQueueFull
	}
}

// next returns the next delivered stanza containing want.
func (f *fakeEndpoint) next(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-f.got:
			if strings.Contains(s, want) {
				return s
			}
		case <-timeout:
			t.Fatalf("%s: nothing with %q in 10s", f.jid, want)
			return ""
		}
	}
}

// rosterEvents is a RosterObserver that keeps a line per change.
type rosterEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *rosterEvents) RosterChanged(_ context.Context, it store.RosterItem, removed bool) {
	ev := fmt.Sprintf("%s>%s %s", it.Owner, it.Contact, it.Subscription)
	if it.PendingOut {
		ev += " ask"
	}
	if removed {
		ev += " removed"
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// wait waits until an event equal to want was seen.
func (r *rosterEvents) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		evs := append([]string(nil), r.events...)
		r.mu.Unlock()
		for _, e := range evs {
			if e == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("roster observer never saw %q; saw %q", want, evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain returns what c receives before the answer to a ping it sends now.
func (c *client) drain() []node {
	c.t.Helper()
	c.send(`<iq type='get' id='drain-ping'><ping xmlns='urn:xmpp:ping'/></iq>`)
	var got []node
	for {
		n := c.next(false)
		if n.attr("id") == "drain-ping" {
			return got
		}
		got = append(got, n)
	}
}

const sipJID = "juliet@example.test/umpp-sip"

func TestSubmitMessage(t *testing.T) {
	rem := &recordingRemote{}
	h := &recordingHooks{routed: map[string]int{}, failed: map[string]int{}}
	e := newEnv(t, func(o *Options) { o.Remote = rem; o.Metrics = h })
	e.addUser("alice", "pw")
	e.addUser("juliet", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<presence/>`)
	alice.sync()
	ctx := context.Background()

	for _, tt := range []struct {
		name, from, raw string
		wantCond        string // StanzaError condition, "" for none
		wantErr         error  // other error (errors.Is)
		anyErr          bool   // a plain error
		alice           bool   // alice gets it
		remote          bool   // Remote gets it
	}{
		{name: "local client", from: sipJID, raw: `<message to='alice@example.test' type='chat' id='s1'><body>hi</body><thread>th</thread></message>`, alice: true},
		{name: "own from", from: sipJID, raw: `<message from='juliet@example.test/umpp-sip' to='alice@example.test/a' type='chat' id='s2'><body>hi</body></message>`, alice: true},
		{name: "unknown user", from: sipJID, raw: `<message to='ghost@example.test' type='chat' id='s3'><body>?</body></message>`, wantCond: "service-unavailable"},
		{name: "server itself", from: sipJID, raw: `<message to='example.test' id='s4'><body>?</body></message>`, wantCond: "service-unavailable"},
		{name: "error to nobody", from: sipJID, raw: `<message to='ghost@example.test' type='error' id='s5'/>`},
		{name: "groupchat to gone resource", from: sipJID, raw: `<message to='alice@example.test/gone' type='groupchat' id='s6'/>`, wantCond: "service-unavailable"},
		{name: "other domain", from: sipJID, raw: `<message to='romeo@montague.example/garden' type='chat' id='s7'><body>hi</body></message>`, remote: true},
		{name: "remote error as is", from: sipJID, raw: `<message to='romeo@down.example' id='s8'/>`, wantErr: condError("remote-server-timeout")},
		{name: "forged from", from: sipJID, raw: `<message from='alice@example.test/a' to='alice@example.test' id='s9'/>`, wantCond: "bad-request"},
		{name: "iq", from: sipJID, raw: `<iq type='get' id='s10' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>`, wantCond: "service-unavailable"},
		{name: "not a stanza", from: sipJID, raw: `<foo/>`, wantCond: "bad-request"},
		{name: "other namespace", from: sipJID, raw: `<message xmlns='urn:x' to='alice@example.test'/>`, wantCond: "bad-request"},
		{name: "bare from", from: "juliet@example.test", raw: `<message to='alice@example.test'/>`, anyErr: true},
		{name: "remote from", from: "juliet@capulet.example/x", raw: `<message to='alice@example.test'/>`, anyErr: true},
		{name: "truncated", from: sipJID, raw: `<message to='alice@example.test'>`, anyErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rem.stanzas())
			err := e.srv.Submit(ctx, tt.from, []byte(tt.raw))
			var se *StanzaError
			switch {
			case tt.wantCond != "":
				if !errors.As(err, &se) || se.Condition() != tt.wantCond {
					t.Fatalf("Submit = %v, want StanzaError %s", err, tt.wantCond)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || errors.As(err, &se) {
					t.Fatalf("Submit = %v, want %v as is", err, tt.wantErr)
				}
			case tt.anyErr:
				if err == nil {
					t.Fatal("Submit accepted it")
				}
			case err != nil:
				t.Fatalf("Submit: %v", err)
			}
			got := alice.drain()
			if tt.alice {
				if len(got) != 1 || got[0].XMLName.Local != "message" || got[0].attr("from") != sipJID || got[0].errorCondition() != "" {
					t.Fatalf("alice got %+v, want the message from %s", got, sipJID)
				}
			} else if len(got) != 0 {
				t.Fatalf("alice got %+v, want nothing", got)
			}
			sts := rem.stanzas()[before:]
			if tt.remote {
				if len(sts) != 1 || sts[0].From != sipJID || sts[0].To != "romeo@montague.example/garden" || !strings.Contains(string(sts[0].Raw), "from='"+sipJID+"'") {
					t.Fatalf("remote got %+v", sts)
				}
			} else if len(sts) != 0 {
				t.Fatalf("remote got %+v, want nothing", sts)
			}
		})
	}
	// Submit's messages are the session layer's to count (sip->xmpp).
	if _, routed, failed := h.snapshot(); len(routed) != 0 || len(failed) != 0 {
		t.Errorf("metrics routed %v failed %v, want nothing counted", routed, failed)
	}
	// Messages for the SIP user still reach its Endpoint.
	ep := newFakeEndpoint(sipJID, true)
	e.srv.loc.Register(ep)
	alice.send(`<message to='juliet@example.test' type='chat' id='back'><body>hello</body></message>`)
	if got := ep.next(t, "back"); !strings.Contains(got, "from='alice@example.test/a'") {
		t.Fatalf("endpoint got %s", got)
	}
}

// Subscriptions submitted for a SIP user follow RFC 6121 like a
// client's, and the RosterObserver sees every change.
func TestSubmitSubscription(t *testing.T) {
	rosters := &rosterEvents{}
	rem := &recordingRemote{}
	e := newEnv(t, func(o *Options) { o.Roster = rosters; o.Remote = rem })
	e.addUser("alice", "pw")
	e.addUser("juliet", "pw")
	ep := newFakeEndpoint(sipJID, true)
	e.srv.loc.Register(ep)
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<presence/>`)
	// juliet also has an XMPP client that asked for the roster.
	phone := e.mustLogin("juliet", "pw", "phone")
	phone.send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`)
	phone.nextWhere("roster", func(n node) bool { return n.attr("id") == "r" })
	alice.sync()
	ctx := context.Background()

	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence to='alice@example.test' type='subscribe'/>`)); err != nil {
		t.Fatalf("Submit subscribe: %v", err)
	}
	req := alice.nextWhere("subscribe", isPresence("juliet@example.test", "subscribe"))
	if req.attr("from") != "juliet@example.test" {
		t.Fatalf("request from %q, want the bare JID", req.attr("from"))
	}
	push := phone.nextWhere("roster push", func(n node) bool { return n.XMLName.Local == "iq" && n.attr("type") == "set" })
	q, _ := push.child("query")
	if len(q.Children) != 1 || q.Children[0].attr("jid") != "alice@example.test" || q.Children[0].attr("ask") != "subscribe" {
		t.Fatalf("push %+v, want alice with ask", push)
	}
	it, err := e.db.RosterItem(ctx, "juliet@example.test", "alice@example.test")
	if err != nil || !it.PendingOut || it.Subscription != store.SubNone {
		t.Fatalf("juliet's item: %+v %v, want none + ask", it, err)
	}
	rosters.wait(t, "juliet@example.test>alice@example.test none ask")

	// alice approves: juliet gains to, alice gains from; the gateway's
	// endpoint gets the subscribed stanza.
	alice.send(`<presence to='juliet@example.test' type='subscribed'/>`)
	rosters.wait(t, "alice@example.test>juliet@example.test from")
	rosters.wait(t, "juliet@example.test>alice@example.test to")
	ep.next(t, "type='subscribed'")

	// alice asks back, the SIP user approves through Submit.
	alice.send(`<presence to='juliet@example.test' type='subscribe'/>`)
	ep.next(t, "type='subscribe'")
	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence to='alice@example.test' type='subscribed'/>`)); err != nil {
		t.Fatalf("Submit subscribed: %v", err)
	}
	alice.nextWhere("subscribed", isPresence("juliet@example.test", "subscribed"))
	rosters.wait(t, "juliet@example.test>alice@example.test both")
	rosters.wait(t, "alice@example.test>juliet@example.test both")

	// Pre-approval without a request, and a subscription to a remote
	// contact, which goes through Remote.
	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence to='bob@example.test' type='subscribed'/>`)); err != nil {
		t.Fatal(err)
	}
	if it, err := e.db.RosterItem(ctx, "juliet@example.test", "bob@example.test"); err != nil || !it.Approved {
		t.Fatalf("pre-approval: %+v %v", it, err)
	}
	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence to='romeo@montague.example' type='subscribe'/>`)); err != nil {
		t.Fatal(err)
	}
	rosters.wait(t, "juliet@example.test>romeo@montague.example none ask")
	if sts := rem.stanzas(); len(sts) != 1 || sts[0].Type != "subscribe" || sts[0].From != "juliet@example.test" {
		t.Fatalf("remote got %+v", sts)
	}

	// Removing an item from a client is a change too.
	phone.send(`<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='romeo@montague.example' subscription='remove'/></query></iq>`)
	phone.nextWhere("remove result", func(n node) bool { return n.attr("id") == "rm" })
	rosters.wait(t, "juliet@example.test>romeo@montague.example none ask removed")
}

// Presence submitted for a SIP user is broadcast to its subscribers and
// the account's other resources, not to others, and not to the
// PresenceObserver; initial presence brings the contacts' presence to the
// gateway's endpoint; directed presence ends with unavailable.
func TestSubmitPresence(t *testing.T) {
	h := &recordingHooks{routed: map[string]int{}, failed: map[string]int{}}
	rem := &recordingRemote{}
	e := newEnv(t, func(o *Options) { o.Presence = h; o.Remote = rem })
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	e.addUser("juliet", "pw")
	ctx := context.Background()
	// alice <-> juliet both; juliet -> romeo (remote) to; bob nothing.
	for _, it := range []store.RosterItem{
		{Owner: "juliet@example.test", Contact: "alice@example.test", Subscription: store.SubBoth},
		{Owner: "alice@example.test", Contact: "juliet@example.test", Subscription: store.SubBoth},
		{Owner: "juliet@example.test", Contact: "romeo@montague.example", Subscription: store.SubTo},
		{Owner: "juliet@example.test", Contact: "nurse@montague.example", Subscription: store.SubFrom},
	} {
		if _, err := e.db.PutRosterItem(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<presence><status>in the garden</status></presence>`)
	bob := e.mustLogin("bob", "pw", "b")
	bob.send(`<presence/>`)
	phone := e.mustLogin("juliet", "pw", "phone")
	phone.send(`<presence/>`)
	alice.sync()
	bob.sync()
	phone.sync()
	ep := newFakeEndpoint(sipJID, true)
	e.srv.loc.Register(ep)
	alice.drain()
	bob.drain()
	phone.drain()
	before := len(rem.stanzas()) // the phone's presence and probe

	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence><show>away</show></presence>`)); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	p := alice.nextWhere("juliet's presence", isPresence(sipJID, ""))
	if s, _ := p.child("show"); s.Text != "away" || p.attr("to") != "alice@example.test" {
		t.Fatalf("alice got %+v", p)
	}
	phone.nextWhere("own resource's presence", isPresence(sipJID, ""))
	// Initial presence: alice's presence for the SIP user, a probe to the
	// remote contact, the broadcast to the remote subscriber.
	ep.next(t, "in the garden")
	var kinds []string
	for _, st := range rem.stanzas()[before:] {
		kinds = append(kinds, st.To+" "+st.Type)
	}
	if got := strings.Join(kinds, ","); got != "nurse@montague.example ,romeo@montague.example probe" {
		t.Fatalf("remote got %q", got)
	}
	if got := bob.drain(); len(got) != 0 {
		t.Fatalf("bob, not subscribed, got %+v", got)
	}

	// An update is not initial: no second probe.
	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence/>`)); err != nil {
		t.Fatal(err)
	}
	alice.nextWhere("update", isPresence(sipJID, ""))
	probes := 0
	for _, st := range rem.stanzas()[before:] {
		if st.Type == "probe" {
			probes++
		}
	}
	if probes != 1 {
		t.Fatalf("remote got %d probes, want 1 (an update is not initial)", probes)
	}

	// Directed presence to bob, then unavailable: bob hears both.
	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence to='bob@example.test/b'><status>psst</status></presence>`)); err != nil {
		t.Fatal(err)
	}
	bob.nextWhere("directed", isPresence(sipJID, ""))
	if err := e.srv.Submit(ctx, sipJID, []byte(`<presence type='unavailable'/>`)); err != nil {
		t.Fatal(err)
	}
	alice.nextWhere("unavailable", isPresence(sipJID, "unavailable"))
	bob.nextWhere("unavailable after directed", isPresence(sipJID, "unavailable"))
	e.srv.subMu.Lock()
	left := len(e.srv.submitters)
	e.srv.subMu.Unlock()
	if left != 0 {
		t.Errorf("%d submit states kept after unavailable", left)
	}

	pres, _, _ := h.snapshot()
	for _, p := range pres {
		if strings.HasPrefix(p.From, "juliet@example.test/umpp-sip") {
			t.Errorf("PresenceObserver told of submitted presence %+v", p)
		}
	}
	if len(pres) != 3 {
		t.Errorf("PresenceObserver saw %d presences, want the 3 clients'", len(pres))
	}
}

// Stanzas from another domain reach a foreign Endpoint registered for a
// full JID, errors included.
func TestReceiveToForeignEndpoint(t *testing.T) {
	loc := NewMemLocator()
	rem := &recordingRemote{}
	e := newEnv(t, func(o *Options) { o.Locator = loc; o.Remote = rem })
	e.addUser("juliet", "pw")
	ep := newFakeEndpoint(sipJID, true)
	loc.Register(ep)
	ctx := context.Background()
	for _, tt := range []struct{ name, raw, want string }{
		{"chat", `<message xmlns='jabber:server' from='romeo@montague.example/garden' to='juliet@example.test/umpp-sip' type='chat' id='c1'><body>hi</body></message>`, "id='c1'"},
		{"error", `<message from='romeo@montague.example/garden' to='juliet@example.test/umpp-sip' type='error' id='c2'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, "id='c2'"},
		{"bare", `<message from='romeo@montague.example/garden' to='juliet@example.test' type='chat' id='c3'/>`, "id='c3'"},
		{"presence", `<presence from='romeo@montague.example/garden' to='juliet@example.test/umpp-sip'><show>dnd</show></presence>`, "<show>dnd</show>"},
		{"iq", `<iq from='romeo@montague.example/garden' to='juliet@example.test/umpp-sip' type='get' id='c5'><ping xmlns='urn:xmpp:ping'/></iq>`, "id='c5'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.srv.Receive(ctx, []byte(tt.raw)); err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if got := ep.next(t, tt.want); !strings.Contains(got, "from='romeo@montague.example/garden'") {
				t.Fatalf("endpoint got %s", got)
			}
		})
	}
	if sts := rem.stanzas(); len(sts) != 0 {
		t.Fatalf("remote got %+v, want no bounces", sts)
	}
}

type messageEvents struct {
	mu  sync.Mutex
	got []string
}

func (m *messageEvents) RemoteMessage(from, to string, thread []byte) {
	m.mu.Lock()
	m.got = append(m.got, from+" "+to+" "+string(thread))
	m.mu.Unlock()
}

func TestMessageObserver(t *testing.T) {
	obs := &messageEvents{}
	e := newEnv(t, func(o *Options) { o.Messages = obs; o.Remote = &recordingRemote{} })
	e.addUser("juliet", "pw")
	ctx := context.Background()
	for _, raw := range []string{
		`<message xmlns='jabber:server' from='romeo@montague.example/garden' to='juliet@example.test/x' type='chat'><body>a</body><thread>t-1</thread></message>`,
		`<message from='romeo@montague.example/garden' to='juliet@example.test' type='chat'><body>no thread</body></message>`,
		`<message from='romeo@montague.example/garden' to='juliet@example.test' type='error'><thread>t-err</thread></message>`,
	} {
		if err := e.srv.Receive(ctx, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	obs.mu.Lock()
	got := strings.Join(obs.got, "|")
	obs.mu.Unlock()
	want := "romeo@montague.example/garden juliet@example.test/x t-1|romeo@montague.example/garden juliet@example.test "
	if got != want {
		t.Fatalf("observer got %q, want %q", got, want)
	}
}

func TestThreadOf(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{`<message><body>x</body><thread>t1</thread></message>`, "t1"},
		{`<message/>`, ""},
		{`<message><body>no thread here</body></message>`, ""},
		{`<message><body>&lt;thread>fake</body></message>`, ""},
		{`<message><x xmlns='urn:x'><thread>nested</thread></x><thread parent='p'>real</thread></message>`, "real"},
		{`<message><thread xmlns='urn:other'>other</thread></message>`, ""},
		{`<message><thread xmlns='jabber:client'>ok</thread></message>`, "ok"},
		{`<message><a:thread xmlns:a='urn:a'>prefixed</a:thread></message>`, ""},
		{`<message><x a='>'/><thread>after</thread></message>`, "after"},
		{`<message><threads>no</threads><thread>t&amp;u</thread></message>`, "t&u"},
		{`<message><thread><![CDATA[c<d]]></thread></message>`, "c<d"},
		{`<message><x><![CDATA[<thread>cdata</thread>]]></x></message>`, ""},
		{`<message><thread/></message>`, ""},
	} {
		var el element
		if err := parseStanza([]byte(tt.raw), &el); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		if got := string(threadOf(&el)); got != tt.want {
			t.Errorf("threadOf(%s) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// BenchmarkThreadOf: what the MessageObserver costs per message.
func BenchmarkThreadOf(b *testing.B) {
	for _, raw := range []string{
		`<message to='juliet@example.test' type='chat'><body>Wherefore art thou, Romeo?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		`<message to='juliet@example.test' type='chat'><body>Wherefore art thou, Romeo?</body><active xmlns='http://jabber.org/protocol/chatstates'/><thread>t-1</thread></message>`,
	} {
		var el element
		if err := parseStanza([]byte(raw), &el); err != nil {
			b.Fatal(err)
		}
		name := "none"
		if threadOf(&el) != nil {
			name = "thread"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				threadOf(&el)
			}
		})
	}
}
