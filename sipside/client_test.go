package sipside

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// peer is a sipgo user agent on 127.0.0.1: a client, and a UDP server
// that records the MESSAGEs it receives.
type peer struct {
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	contact string // sip:user@127.0.0.1:port of its UDP listener
	got     chan *sip.Request
	notify  chan *sip.Request
	answer  int // status it answers MESSAGEs with
	// holdNotify delays each NOTIFY's answer, as a slow subscriber
	// would; overlapped records a NOTIFY arriving while another was
	// still unanswered.
	holdNotify atomic.Int64 // a time.Duration
	unanswered atomic.Int32
	overlapped atomic.Bool
}

func newPeer(t *testing.T, user string, answer int) *peer {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(user),
		sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // generated test certificate
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{ua: ua, got: make(chan *sip.Request, 16), notify: make(chan *sip.Request, 16), answer: answer}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		p.got <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, p.answer, "Answer", nil))
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		if p.unanswered.Add(1) > 1 {
			p.overlapped.Store(true)
		}
		p.notify <- req
		time.Sleep(time.Duration(p.holdNotify.Load()))
		p.unanswered.Add(-1)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(pc) }()
	p.contact = fmt.Sprintf("sip:%s@%s", user, pc.LocalAddr())
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	portN, _ := strconv.Atoi(port)
	p.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(portN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pc.Close()
		_ = ua.Close()
	})
	return p
}

// request builds a request to uri sent to the server over transport.
func (ts *testServer) request(method sip.RequestMethod, uri, transport string) *sip.Request {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		panic(err)
	}
	req := sip.NewRequest(method, u)
	switch transport {
	case "udp":
		req.SetDestination(ts.udp)
		req.SetTransport("UDP")
	case "tcp":
		req.SetDestination(ts.tcp)
		req.SetTransport("TCP")
	case "tls":
		req.SetDestination(ts.tls)
		req.SetTransport("TLS")
	}
	return req
}

func do(t *testing.T, c *sipgo.Client, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func doAuth(t *testing.T, c *sipgo.Client, req *sip.Request, res *sip.Response, user, pass string) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res2, err := c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass})
	if err != nil {
		t.Fatalf("%s with credentials: %v", req.Method, err)
	}
	return res2
}

// keepOnly drops every challenge of res but the one for algorithm, so
// sipgo answers that one.
func keepOnly(t *testing.T, res *sip.Response, name, algorithm string) {
	t.Helper()
	var keep sip.Header
	for _, h := range res.GetHeaders(name) {
		if strings.Contains(h.Value(), "algorithm="+algorithm) {
			keep = h
		}
	}
	if keep == nil {
		t.Fatalf("no %s challenge for %s in %v", name, algorithm, res)
	}
	res.RemoveHeader(name)
	res.AppendHeader(sip.NewHeader(name, keep.Value()))
}

func registerReq(ts *testServer, transport, user, contact string, expires int) *sip.Request {
	req := ts.request(sip.REGISTER, "sip:example.com", transport)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "example.com"}, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "example.com"}, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	if contact != "" {
		req.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	}
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	return req
}

// register registers contact for user with the given algorithm and
// returns the final response.
func register(t *testing.T, ts *testServer, p *peer, transport, user, pass, contact string, expires int, algorithm string) *sip.Response {
	t.Helper()
	req := registerReq(ts, transport, user, contact, expires)
	res := do(t, p.client, req)
	if res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: got %d, want 401", res.StatusCode)
	}
	keepOnly(t, res, "WWW-Authenticate", algorithm)
	return doAuth(t, p.client, req, res, user, pass)
}

func contactsOf(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Contact") {
		out = append(out, h.Value())
	}
	return out
}

func TestRegisterDigest(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	ts := startServer(t, users, []string{"example.com"}, nil)
	for _, transport := range []string{"udp", "tcp", "tls"} {
		for _, alg := range []string{"SHA-256", "MD5"} {
			t.Run(transport+"/"+alg, func(t *testing.T) {
				p := newPeer(t, "alice", 200)
				req := registerReq(ts, transport, "alice", p.contact, 600)
				res := do(t, p.client, req)
				if res.StatusCode != 401 {
					t.Fatalf("got %d, want 401", res.StatusCode)
				}
				chals := res.GetHeaders("WWW-Authenticate")
				if len(chals) != 2 || !strings.Contains(chals[0].Value(), "algorithm=SHA-256") ||
					!strings.Contains(chals[1].Value(), "algorithm=MD5") || !strings.Contains(chals[0].Value(), `qop="auth"`) {
					t.Fatalf("challenges %v, want SHA-256 then MD5 with qop=auth", chals)
				}
				keepOnly(t, res, "WWW-Authenticate", alg)
				res = doAuth(t, p.client, req, res, "alice", "wonderland")
				if res.StatusCode != 200 {
					t.Fatalf("with credentials: got %d, want 200", res.StatusCode)
				}
				cs := contactsOf(res)
				if len(cs) != 1 || !strings.Contains(cs[0], p.contact) || !strings.Contains(cs[0], "expires=") {
					t.Fatalf("200 contacts %v, want only %s with expires", cs, p.contact)
				}
				// Unregister: the 200 lists no binding.
				res = register(t, ts, p, transport, "alice", "wonderland", p.contact, 0, alg)
				if res.StatusCode != 200 || len(contactsOf(res)) != 0 {
					t.Fatalf("unregister: got %d with contacts %v, want 200 and none", res.StatusCode, contactsOf(res))
				}
			})
		}
	}
}

func TestRegisterBadPassword(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.AuthFailures = 3 })
	p := newPeer(t, "alice", 200)
	var got []int
	for range 4 {
		req := registerReq(ts, "udp", "alice", p.contact, 600)
		res := do(t, p.client, req)
		if res.StatusCode != 401 {
			got = append(got, res.StatusCode)
			continue
		}
		res = doAuth(t, p.client, req, res, "alice", "not-the-password")
		got = append(got, res.StatusCode)
	}
	want := []int{401, 401, 401, 403}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("four attempts with a wrong password: got %v, want %v", got, want)
	}
	// Another user's account must not be registrable with one's own
	// credentials either.
	addUser(t, users, "bob", "example.com", "builder")
	ts2 := startServer(t, users, []string{"example.com"}, nil)
	req := registerReq(ts2, "udp", "alice", p.contact, 600)
	res := do(t, p.client, req)
	res = doAuth(t, p.client, req, res, "bob", "builder")
	if res.StatusCode != 403 {
		t.Fatalf("bob registering alice: got %d, want 403", res.StatusCode)
	}
}

func TestRegisterReplayAndStale(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	ts := startServer(t, users, []string{"example.com"}, nil)
	p := newPeer(t, "alice", 200)
	req := registerReq(ts, "udp", "alice", p.contact, 600)
	res := do(t, p.client, req)
	res = doAuth(t, p.client, req, res, "alice", "wonderland")
	if res.StatusCode != 200 {
		t.Fatalf("got %d, want 200", res.StatusCode)
	}
	// Replaying the same Authorization (same nonce and nc) in a new
	// transaction is refused with a fresh, stale challenge.
	auth := req.GetHeader("Authorization")
	replay := registerReq(ts, "udp", "alice", p.contact, 600)
	replay.AppendHeader(sip.NewHeader("Authorization", auth.Value()))
	res = do(t, p.client, replay)
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("replay: got %d %v, want 401 with stale=true", res.StatusCode, res.GetHeaders("WWW-Authenticate"))
	}
}

func TestRegisterBindings(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	ts := startServer(t, users, []string{"example.com"}, func(o *Options) { o.MinExpires = 60 * time.Second; o.MaxExpires = 3600 * time.Second })
	p := newPeer(t, "alice", 200)

	res := register(t, ts, p, "udp", "alice", "wonderland", "sip:alice@127.0.0.1:5999", 30, "MD5")
	if res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil || res.GetHeader("Min-Expires").Value() != "60" {
		t.Fatalf("expires 30: got %d, want 423 with Min-Expires: 60", res.StatusCode)
	}
	for _, c := range []string{"sip:alice@127.0.0.1:5998", "sip:alice@127.0.0.1:5999"} {
		if res := register(t, ts, p, "udp", "alice", "wonderland", c, 7200, "SHA-256"); res.StatusCode != 200 {
			t.Fatalf("register %s: got %d", c, res.StatusCode)
		}
	}
	res = register(t, ts, p, "udp", "alice", "wonderland", "", -1, "SHA-256")
	cs := contactsOf(res)
	if res.StatusCode != 200 || len(cs) != 2 {
		t.Fatalf("query: got %d with %v, want 200 with both contacts", res.StatusCode, cs)
	}
	for _, c := range cs {
		// 7200 was capped to MaxExpires.
		if !strings.Contains(c, "expires=3600") && !strings.Contains(c, "expires=3599") {
			t.Errorf("contact %q: want expires capped at 3600", c)
		}
	}
	// Contact: * with Expires: 0 removes all.
	req := registerReq(ts, "udp", "alice", "", 0)
	req.AppendHeader(sip.NewHeader("Contact", "*"))
	res = do(t, p.client, req)
	res = doAuth(t, p.client, req, res, "alice", "wonderland")
	if res.StatusCode != 200 || len(contactsOf(res)) != 0 {
		t.Fatalf("Contact: *: got %d with %v, want 200 and none", res.StatusCode, contactsOf(res))
	}
	// Contact: * with a non-zero Expires is malformed.
	req = registerReq(ts, "udp", "alice", "", 60)
	req.AppendHeader(sip.NewHeader("Contact", "*"))
	res = do(t, p.client, req)
	res = doAuth(t, p.client, req, res, "alice", "wonderland")
	if res.StatusCode != 400 {
		t.Fatalf("Contact: * with Expires 60: got %d, want 400", res.StatusCode)
	}
}

func TestOptions(t *testing.T) {
	ts := startServer(t, newUsers(t), []string{"example.com"}, nil)
	p := newPeer(t, "probe", 200)
	tests := []struct {
		uri  string
		want int
	}{
		{"sip:example.com", 200},
		{"sip:anyone@example.com", 200},
		{"sip:example.org", 404}, // not ours: never relayed
	}
	for _, transport := range []string{"udp", "tcp", "tls"} {
		for _, tc := range tests {
			t.Run(transport+"/"+tc.uri, func(t *testing.T) {
				res := do(t, p.client, ts.request(sip.OPTIONS, tc.uri, transport))
				if res.StatusCode != tc.want {
					t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
				}
				if tc.want != 200 {
					return
				}
				for name, want := range map[string]string{
					"Allow": "MESSAGE", "Accept": "message/cpim", "Allow-Events": "presence",
				} {
					if h := res.GetHeader(name); h == nil || !strings.Contains(h.Value(), want) {
						t.Errorf("%s: got %v, want it to contain %q", name, h, want)
					}
				}
				if res.GetHeader("Supported") == nil {
					t.Error("no Supported header")
				}
			})
		}
	}
}

// messageReq builds a MESSAGE from user@example.com to uri.
func messageReq(ts *testServer, transport, from, uri, ctype, body string) *sip.Request {
	req := ts.request(sip.MESSAGE, uri, transport)
	var to sip.Uri
	_ = sip.ParseUri(uri, &to)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	f := &sip.FromHeader{DisplayName: "Alice", Address: sip.Uri{Scheme: "sip", User: from, Host: "example.com"}, Params: sip.NewParams()}
	f.Params.Add("tag", newTag())
	req.AppendHeader(f)
	req.AppendHeader(sip.NewHeader("Content-Type", ctype))
	req.SetBody([]byte(body))
	return req
}

func sendMessage(t *testing.T, ts *testServer, p *peer, transport, from, pass, uri, ctype, body string) *sip.Response {
	t.Helper()
	req := messageReq(ts, transport, from, uri, ctype, body)
	res := do(t, p.client, req)
	if res.StatusCode != 407 {
		return res
	}
	if len(res.GetHeaders("Proxy-Authenticate")) != 2 {
		t.Fatalf("407 with %d Proxy-Authenticate, want 2", len(res.GetHeaders("Proxy-Authenticate")))
	}
	return doAuth(t, p.client, req, res, from, pass)
}

func TestMessageBetweenUsers(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	addUser(t, users, "carol", "example.com", "secret")
	ts := startServer(t, users, []string{"example.com"}, nil)
	alice := newPeer(t, "alice", 200)
	bob := newPeer(t, "bob", 200)

	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			if res := register(t, ts, bob, transport, "bob", "builder", bob.contact, 600, "SHA-256"); res.StatusCode != 200 {
				t.Fatalf("bob register: %d", res.StatusCode)
			}
			text := "Hello Bob over " + transport
			res := sendMessage(t, ts, alice, transport, "alice", "wonderland", "sip:bob@example.com", "text/plain", text)
			if res.StatusCode != 200 {
				t.Fatalf("MESSAGE to bob: got %d, want 200", res.StatusCode)
			}
			select {
			case got := <-bob.got:
				if string(got.Body()) != text {
					t.Errorf("bob got body %q, want %q", got.Body(), text)
				}
				if ct := got.ContentType(); ct == nil || ct.Value() != "text/plain" {
					t.Errorf("bob got Content-Type %v, want text/plain", ct)
				}
				if got.From().Address.User != "alice" || got.From().Address.Host != "example.com" {
					t.Errorf("bob got From %v, want alice@example.com", got.From())
				}
				if got.To().Address.User != "bob" {
					t.Errorf("bob got To %v, want bob@example.com", got.To())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("bob received nothing")
			}
			// Unregister: the next MESSAGE finds no binding.
			if res := register(t, ts, bob, transport, "bob", "builder", bob.contact, 0, "MD5"); res.StatusCode != 200 {
				t.Fatalf("bob unregister: %d", res.StatusCode)
			}
			res = sendMessage(t, ts, alice, transport, "alice", "wonderland", "sip:bob@example.com", "text/plain", "still there?")
			if res.StatusCode != 480 {
				t.Fatalf("MESSAGE after unregister: got %d, want 480", res.StatusCode)
			}
		})
	}

	tests := []struct {
		name, from, pass, uri, ctype, body string
		want                               int
	}{
		{"unregistered user", "alice", "wonderland", "sip:carol@example.com", "text/plain", "hi", 480},
		{"unknown user", "alice", "wonderland", "sip:nobody@example.com", "text/plain", "hi", 404},
		{"other domain, no gateway", "alice", "wonderland", "sip:dave@elsewhere.example", "text/plain", "hi", 403},
		{"wrong password", "alice", "guess", "sip:carol@example.com", "text/plain", "hi", 407},
		{"unsupported body", "alice", "wonderland", "sip:carol@example.com", "application/octet-stream", "x", 415},
		{"bad cpim", "alice", "wonderland", "sip:carol@example.com", "message/cpim", "no blank line", 400},
		{"cpim from someone else", "alice", "wonderland", "sip:carol@example.com", "message/cpim",
			"From: <im:mallory@example.com>\r\nTo: <im:carol@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nhi", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := sendMessage(t, ts, alice, "udp", tc.from, tc.pass, tc.uri, tc.ctype, tc.body)
			if res.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}

func TestMessageCPIMAndForking(t *testing.T) {
	users := newUsers(t)
	addUser(t, users, "alice", "example.com", "wonderland")
	addUser(t, users, "bob", "example.com", "builder")
	ts := startServer(t, users, []string{"example.com"}, nil)
	alice := newPeer(t, "alice", 200)
	phone := newPeer(t, "bob", 486) // busy: refuses
	laptop := newPeer(t, "bob", 200)
	for _, p := range []*peer{phone, laptop} {
		if res := register(t, ts, p, "udp", "bob", "builder", p.contact, 600, "SHA-256"); res.StatusCode != 200 {
			t.Fatalf("register: %d", res.StatusCode)
		}
	}
	body := "From: Alice <im:alice@example.com>\r\nTo: Bob <im:bob@example.com>\r\nDateTime: 2026-11-24T04:00:00Z\r\n\r\n" +
		"Content-Type: text/plain\r\n\r\nHello in CPIM"
	res := sendMessage(t, ts, alice, "udp", "alice", "wonderland", "sip:bob@example.com", "message/cpim", body)
	if res.StatusCode != 200 {
		t.Fatalf("got %d, want 200 (one contact accepted)", res.StatusCode)
	}
	var wg sync.WaitGroup
	for _, p := range []*peer{phone, laptop} {
		wg.Go(func() {
			select {
			case got := <-p.got:
				if string(got.Body()) != body {
					t.Errorf("%s got body %q", p.contact, got.Body())
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s received nothing", p.contact)
			}
		})
	}
	wg.Wait()
}
