package sipside

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// msgUAS is another domain's SIP server as a plain sipgo UAS on
// 127.0.0.1 (UDP and TCP): it records the MESSAGEs it gets and answers
// by the Request-URI's user: "silent" gets no answer, "busy" 486,
// "nobody" 404, anyone else 200.
type msgUAS struct {
	udp, tcp string
	got      chan *sip.Request
}

func startMsgUAS(t *testing.T) *msgUAS {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	u := &msgUAS{got: make(chan *sip.Request, 16)}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		u.got <- req
		code := 200
		switch req.Recipient.User {
		case "silent":
			return
		case "busy":
			code = 486
		case "nobody":
			code = 404
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Answer", nil))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(pc) }()
	go func() { _ = srv.ServeTCP(ln) }()
	u.udp, u.tcp = pc.LocalAddr().String(), ln.Addr().String()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = ln.Close()
		_ = ua.Close()
	})
	return u
}

// closedPort returns a 127.0.0.1 TCP address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSendMessageRemote: SendMessage to users of another domain goes to
// the servers the Resolver names, with the request the brief asks for
// (Request-URI and To sip:user@domain, From sip:user@ourdomain with a
// tag, Max-Forwards 70, our User-Agent, the body and its type); 2xx is
// nil, a final non-2xx a StatusError with that status; a dead first
// target is skipped; no answer is 408, no route 503 or 404.
func TestSendMessageRemote(t *testing.T) {
	uas := startMsgUAS(t)
	res := &staticResolver{}
	res.set("capulets.example.com", "udp", uas.udp)
	res.set("tcp.capulets.example.com", "tcp", closedPort(t)) // dead first target
	res.set("tcp.capulets.example.com", "tcp", uas.tcp)
	res.set("dead.example.com", "tcp", closedPort(t))
	res.mu.Lock()
	res.m["nosip.example.com"] = nil // published, but no SIP server
	res.mu.Unlock()
	users := newUsers(t)
	ts := startServer(t, users, []string{"montague.example.net"}, func(o *Options) {
		o.Resolver = res
		o.UserAgent = "umppd-test"
		o.ForwardTimeout = 2 * time.Second
	})
	romeo := mustAddr(t, "romeo@montague.example.net/orchard")
	for _, tc := range []struct {
		name, to string
		want     int // 0: nil error
		received bool
	}{
		{"udp 200", "juliet@capulets.example.com", 0, true},
		{"tcp after a dead target", "juliet@tcp.capulets.example.com", 0, true},
		{"404", "nobody@capulets.example.com", 404, true},
		{"486", "busy@capulets.example.com", 486, true},
		{"no answer", "silent@capulets.example.com", 408, true},
		{"unresolvable", "juliet@unknown.example.com", 503, false},
		{"no SIP server", "juliet@nosip.example.com", 404, false},
		{"unreachable", "juliet@dead.example.com", 503, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			to := mustAddr(t, tc.to)
			body := "wherefore art thou " + tc.name
			err := ts.SendMessage(ctx, OutMessage{From: romeo, To: to, ContentType: "text/plain;charset=UTF-8", Body: []byte(body)})
			var st *StatusError
			switch {
			case tc.want == 0 && err != nil:
				t.Fatalf("SendMessage: %v", err)
			case tc.want != 0 && (!errors.As(err, &st) || st.Code != tc.want):
				t.Fatalf("SendMessage: %v, want a StatusError %d", err, tc.want)
			}
			if !tc.received {
				return
			}
			var req *sip.Request
			select {
			case req = <-uas.got:
			case <-time.After(5 * time.Second):
				t.Fatal("the other domain's server got nothing")
			}
			want := "sip:" + to.BareJID()
			if req.Recipient.String() != want || req.To().Address.String() != want {
				t.Errorf("Request-URI %s, To %s, want %s", req.Recipient.String(), req.To().Address.String(), want)
			}
			if tag, _ := req.To().Params.Get("tag"); tag != "" {
				t.Errorf("To has a tag %q", tag)
			}
			if req.From().Address.String() != "sip:romeo@montague.example.net" {
				t.Errorf("From %s", req.From().Address.String())
			}
			if tag, _ := req.From().Params.Get("tag"); tag == "" {
				t.Error("From without a tag")
			}
			if mf := req.MaxForwards(); mf == nil || mf.Val() != 70 {
				t.Errorf("Max-Forwards %v", mf)
			}
			if ua := req.GetHeader("User-Agent"); ua == nil || ua.Value() != "umppd-test" {
				t.Errorf("User-Agent %v", ua)
			}
			if ct := req.ContentType(); ct == nil || ct.Value() != "text/plain;charset=UTF-8" {
				t.Errorf("Content-Type %v", ct)
			}
			if string(req.Body()) != body || req.CSeq().MethodName != sip.MESSAGE {
				t.Errorf("body %q, CSeq %v", req.Body(), req.CSeq())
			}
		})
	}
	// Nothing else arrived (the dead and unresolvable cases sent nothing
	// to the UAS; the silent one may have been retransmitted).
	for {
		select {
		case r := <-uas.got:
			if r.Recipient.User != "silent" {
				t.Errorf("unexpected MESSAGE to %s", r.Recipient.String())
			}
			continue
		default:
		}
		break
	}
}

// TestSendMessageLocal: SendMessage to a user of our own domain forks to
// the registered contacts: ErrNoSuchUser for an unknown account,
// ErrOffline without a contact, nil when one contact accepts, and the
// contact's refusal as a StatusError when none does.
func TestSendMessageLocal(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	addUser(t, users, "carol", "example.com", "secret")
	ts := startServer(t, users, []string{"example.com"}, nil)
	bob := newPeer(t, "bob", 200)
	carol := newPeer(t, "carol", 486)
	if res := register(t, ts, bob, "udp", "bob", "builder", bob.contact, 600, "SHA-256"); res.StatusCode != 200 {
		t.Fatalf("register bob: %d", res.StatusCode)
	}
	if res := register(t, ts, carol, "tcp", "carol", "secret", carol.contact, 600, "SHA-256"); res.StatusCode != 200 {
		t.Fatalf("register carol: %d", res.StatusCode)
	}
	alice := mustAddr(t, "alice@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	send := func(to string) error {
		return ts.SendMessage(ctx, OutMessage{From: alice, To: mustAddr(t, to), ContentType: "text/plain", Body: []byte("hi " + to)})
	}
	if err := send("nobody@example.com"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("unknown user: %v", err)
	}
	if err := send("alice@example.com"); !errors.Is(err, ErrOffline) {
		t.Errorf("user without contacts: %v", err)
	}
	if err := send("bob@example.com"); err != nil {
		t.Fatalf("to bob: %v", err)
	}
	select {
	case got := <-bob.got:
		if got.From().Address.String() != "sip:alice@example.com" || got.To().Address.String() != "sip:bob@example.com" ||
			string(got.Body()) != "hi bob@example.com" || got.ContentType().Value() != "text/plain" {
			t.Errorf("bob got From %s To %s body %q", got.From().Address.String(), got.To().Address.String(), got.Body())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob got nothing")
	}
	var st *StatusError
	if err := send("carol@example.com"); !errors.As(err, &st) || st.Code != 486 {
		t.Errorf("to carol (busy): %v, want a StatusError 486", err)
	}
	// From another domain: relayed to a local user, never elsewhere.
	if err := ts.SendMessage(ctx, OutMessage{From: mustAddr(t, "romeo@montague.example.net"), To: mustAddr(t, "bob@example.com"), Body: []byte("relayed")}); err != nil {
		t.Fatalf("From another domain to a local user: %v", err)
	}
	select {
	case got := <-bob.got:
		if got.From().Address.String() != "sip:romeo@montague.example.net" || string(got.Body()) != "relayed" {
			t.Errorf("bob got From %s body %q", got.From().Address.String(), got.Body())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob got nothing")
	}
	if err := ts.SendMessage(ctx, OutMessage{From: mustAddr(t, "mallory@evil.example"), To: mustAddr(t, "juliet@capulets.example.com")}); err == nil ||
		!strings.Contains(err.Error(), "not a user of ours") {
		t.Errorf("From another domain to another domain: %v", err)
	}
}

// TestMessageToOfflineUserGoesToGateway: a MESSAGE from a local user to
// a local user without registered contacts goes to the Gateway (which
// reaches XMPP resources) and its status is the answer; without a
// Gateway it stays 480.
func TestMessageToOfflineUserGoesToGateway(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	gw := &recordingGateway{got: make(chan Message, 1)}
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.Gateway = gw })
	alice := newPeer(t, "alice", 200)
	for _, transport := range []string{"udp", "tcp"} {
		res := sendMessage(t, ts, alice, transport, "alice", "wonderland", "sip:bob@example.com", "text/plain", "are you there?")
		if res.StatusCode != 202 {
			t.Fatalf("%s: got %d, want the gateway's 202", transport, res.StatusCode)
		}
		m := <-gw.got
		if m.Sender != "alice@example.com" || m.Peer || m.To != "sip:bob@example.com" || string(m.Body) != "are you there?" {
			t.Fatalf("%s: gateway got %+v", transport, m)
		}
	}
	plain := startServer(t, users, []string{"example.com"}, nil)
	if res := sendMessage(t, plain, alice, "udp", "alice", "wonderland", "sip:bob@example.com", "text/plain", "x"); res.StatusCode != 480 {
		t.Fatalf("without a gateway: got %d, want 480", res.StatusCode)
	}
}
