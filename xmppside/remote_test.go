package xmppside

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// recordingRemote stands in for the s2s/UMPP layer, which is not written
// yet: it keeps what the router hands it and fails for one domain.
type recordingRemote struct {
	mu  sync.Mutex
	got []Stanza
}

type condError string

func (e condError) Error() string     { return "remote: " + string(e) }
func (e condError) Condition() string { return string(e) }

func (r *recordingRemote) Deliver(_ context.Context, st Stanza) error {
	if strings.HasSuffix(st.To, "@down.example") {
		return condError("remote-server-timeout")
	}
	if strings.HasSuffix(st.To, "@nowhere.example") {
		return errors.New("no route")
	}
	st.Raw = append([]byte(nil), st.Raw...)
	r.mu.Lock()
	r.got = append(r.got, st)
	r.mu.Unlock()
	return nil
}

func (r *recordingRemote) stanzas() []Stanza {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Stanza(nil), r.got...)
}

func TestRemoteDomains(t *testing.T) {
	rem := &recordingRemote{}
	e := newEnv(t, func(o *Options) { o.Remote = rem })
	e.addUser("alice", "pw")
	alice := e.mustLogin("alice", "pw", "a")

	alice.send(`<message from='forged@x' to='juliet@capulet.example/balcony' type='chat' id='r1'><body>hi</body><thread>t</thread></message>`)
	alice.send(`<message to='juliet@down.example' id='r2'><body>x</body></message>`)
	alice.send(`<message to='juliet@nowhere.example' id='r3'><body>x</body></message>`)
	for _, want := range [][2]string{{"r2", "remote-server-timeout"}, {"r3", "remote-server-not-found"}} {
		got := alice.next(true)
		if got.attr("id") != want[0] || got.errorCondition() != want[1] {
			t.Fatalf("got %+v, want %s with %s", got, want[0], want[1])
		}
	}
	got := rem.stanzas()
	if len(got) != 1 {
		t.Fatalf("remote got %d stanzas, want 1", len(got))
	}
	st := got[0]
	if st.Name != "message" || st.From != "alice@example.test/a" || st.To != "juliet@capulet.example/balcony" || st.Type != "chat" || st.ID != "r1" {
		t.Fatalf("stanza %+v", st)
	}
	raw := string(st.Raw)
	if strings.Contains(raw, "forged") || !strings.Contains(raw, "from='alice@example.test/a'") || !strings.Contains(raw, "<thread>t</thread>") {
		t.Fatalf("raw %s", raw)
	}
}

func TestReceiveFromRemote(t *testing.T) {
	rem := &recordingRemote{}
	e := newEnv(t, func(o *Options) { o.Remote = rem })
	e.addUser("alice", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<presence/>`)
	alice.sync()
	ctx := context.Background()

	err := e.srv.Receive(ctx, []byte(`<message xmlns='jabber:server' from='juliet@capulet.example/balcony' to='alice@example.test' type='chat' id='in1'><body>hi alice</body><thread>t9</thread><x xmlns='urn:u'/></message>`))
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	m := alice.next(true)
	th, _ := m.child("thread")
	if _, ok := m.child("x"); m.attr("from") != "juliet@capulet.example/balcony" || m.attr("id") != "in1" || th.Text != "t9" || !ok {
		t.Fatalf("alice got %+v", m)
	}

	// Unknown local user: the error goes back to the remote sender.
	if err := e.srv.Receive(ctx, []byte(`<message from='juliet@capulet.example/balcony' to='ghost@example.test' id='in2'><body>x</body></message>`)); err != nil {
		t.Fatal(err)
	}
	// Subscription from the remote contact, approved by alice: the remote
	// gets subscribed and alice's presence, addressed.
	if err := e.srv.Receive(ctx, []byte(`<presence from='juliet@capulet.example/balcony' to='alice@example.test' type='subscribe'/>`)); err != nil {
		t.Fatal(err)
	}
	req := alice.nextWhere("subscribe", func(n node) bool { return n.attr("type") == "subscribe" })
	if req.attr("from") != "juliet@capulet.example" {
		t.Fatalf("subscribe from %q", req.attr("from"))
	}
	alice.send(`<presence to='juliet@capulet.example' type='subscribed'/>`)
	alice.send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.nextWhere("ping", func(n node) bool { return n.attr("id") == "sync" })
	// A probe is answered with the current presence.
	if err := e.srv.Receive(ctx, []byte(`<presence from='juliet@capulet.example' to='alice@example.test' type='probe'/>`)); err != nil {
		t.Fatal(err)
	}

	var kinds []string
	for _, st := range rem.stanzas() {
		raw := string(st.Raw)
		switch {
		case st.Type == "error" && st.ID == "in2" && strings.Contains(raw, "service-unavailable") && st.To == "juliet@capulet.example/balcony":
			kinds = append(kinds, "bounce")
		case st.Type == "subscribed" && st.From == "alice@example.test" && st.To == "juliet@capulet.example":
			kinds = append(kinds, "subscribed")
		case st.Name == "presence" && st.Type == "" && strings.Contains(raw, "to='juliet@capulet.example'") && strings.Contains(raw, "from='alice@example.test/a'"):
			kinds = append(kinds, "presence")
		}
	}
	want := "bounce subscribed presence presence"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("remote got %q, want %q; stanzas: %+v", got, want, rem.stanzas())
	}
	for _, bad := range []string{
		`<message from='bob@example.test' to='alice@example.test'/>`,        // spoofed local sender
		`<message from='juliet@capulet.example' to='x@elsewhere.example'/>`, // not ours
		`<message from='juliet@capulet.example' to='alice@example.test'>`,   // truncated
	} {
		if err := e.srv.Receive(ctx, []byte(bad)); err == nil {
			t.Errorf("Receive(%s) accepted", bad)
		}
	}
}
