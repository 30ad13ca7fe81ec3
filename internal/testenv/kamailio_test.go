package testenv

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// sipUser is a tiny SIP user agent on UDP and TCP for the tests: it
// answers every MESSAGE and NOTIFY with 200 OK and hands them to the test.
type sipUser struct {
	t         testing.TB
	addr      string                                  // ip:port, UDP and TCP
	client    *sipgo.Client                           // sends over UDP from addr
	tcpClient *sipgo.Client                           // sends over TCP from an ephemeral port
	got       map[sip.RequestMethod]chan *sip.Request // MESSAGE, NOTIFY
}

func startSIPUser(t testing.TB, ip string) *sipUser {
	t.Helper()
	var (
		port int
		addr string
		conn net.PacketConn
		l    net.Listener
		err  error
	)
	for range 10 { // the port may be taken between FreePort and here
		port = FreePort(t, "tcp+udp", ip)
		addr = net.JoinHostPort(ip, strconv.Itoa(port))
		if conn, err = net.ListenPacket("udp", addr); err != nil {
			continue
		}
		if l, err = net.Listen("tcp", addr); err != nil {
			conn.Close()
			continue
		}
		break
	}
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("testenv"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	u := &sipUser{t: t, addr: addr, got: map[sip.RequestMethod]chan *sip.Request{
		sip.MESSAGE: make(chan *sip.Request, 16),
		sip.NOTIFY:  make(chan *sip.Request, 16),
	}}
	answer := func(req *sip.Request, tx sip.ServerTransaction) {
		u.got[req.Method] <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	srv.OnMessage(answer)
	srv.OnNotify(answer)
	served := make(chan struct{}, 2)
	go func() {
		_ = srv.ServeUDP(conn)
		served <- struct{}{}
	}()
	go func() {
		_ = srv.ServeTCP(l)
		served <- struct{}{}
	}()
	t.Cleanup(func() {
		_ = ua.Close()
		_ = conn.Close()
		_ = l.Close()
		<-served
		<-served
	})
	// ServeUDP registers the socket for sending from another goroutine.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipgo does not serve %s", addr)
		}
		time.Sleep(time.Millisecond)
	}
	u.client, err = sipgo.NewClient(ua,
		sipgo.WithClientHostname(ip), sipgo.WithClientPort(port),
		sipgo.WithClientConnectionAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	u.tcpClient, err = sipgo.NewClient(ua, sipgo.WithClientHostname(ip))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// request builds a request from user@domain to rURI, to be sent to proxy.
func (u *sipUser) request(method sip.RequestMethod, from, rURI, proxy string) *sip.Request {
	u.t.Helper()
	var to sip.Uri
	if err := sip.ParseUri(rURI, &to); err != nil {
		u.t.Fatal(err)
	}
	req := sip.NewRequest(method, to)
	var f sip.Uri
	if err := sip.ParseUri(from, &f); err != nil {
		u.t.Fatal(err)
	}
	fromHdr := &sip.FromHeader{Address: f, Params: sip.NewParams()}
	fromHdr.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(fromHdr)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: f.User, Host: u.host(), Port: u.port()}})
	req.SetDestination(proxy)
	return req
}

func (u *sipUser) host() string { h, _, _ := net.SplitHostPort(u.addr); return h }
func (u *sipUser) port() int {
	_, p, _ := net.SplitHostPort(u.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (u *sipUser) do(k *Kamailio, req *sip.Request) *sip.Response {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := u.client
	if req.Transport() == "TCP" {
		c = u.tcpClient
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		u.t.Fatalf("%s %s: %v\nkamailio log:\n%s", req.Method, req.Recipient.String(), err, k.Log())
	}
	return res
}

// next waits for the next request of method the user receives.
func (u *sipUser) next(k *Kamailio, method sip.RequestMethod, what string) *sip.Request {
	u.t.Helper()
	select {
	case req := <-u.got[method]:
		return req
	case <-time.After(10 * time.Second):
		u.t.Fatalf("no %s reached %s (%s)\nkamailio log:\n%s", method, u.addr, what, k.Log())
		return nil
	}
}

// nextNotifyWith waits for a NOTIFY whose body or Subscription-State
// contains want, skipping others: Kamailio may repeat an earlier state, for
// example when a PUBLISH it has just answered still notifies a watcher that
// subscribed meanwhile.
func (u *sipUser) nextNotifyWith(k *Kamailio, want string) *sip.Request {
	u.t.Helper()
	var seen []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case req := <-u.got[sip.NOTIFY]:
			state := ""
			if h := req.GetHeader("Subscription-State"); h != nil {
				state = h.Value()
			}
			if strings.Contains(string(req.Body()), want) || strings.Contains(state, want) {
				return req
			}
			seen = append(seen, state+"\n"+string(req.Body()))
		case <-timeout:
			u.t.Fatalf("no NOTIFY with %s reached %s; got %d others:\n%s\nkamailio log:\n%s",
				want, u.addr, len(seen), strings.Join(seen, "\n---\n"), k.Log())
			return nil
		}
	}
}

// alicePIDF is the presence document alice publishes.
func alicePIDF(basic, note string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@verona.example.org">
  <tuple id="t1">
    <status><basic>` + basic + `</basic></status>
    <note>` + note + `</note>
  </tuple>
</presence>
`)
}

// checkNotify checks what a watcher sees in a NOTIFY.
func checkNotify(t *testing.T, notify *sip.Request, callID, state string, body ...string) {
	t.Helper()
	if notify.CallID().Value() != callID {
		t.Errorf("NOTIFY Call-ID %s, SUBSCRIBE's %s", notify.CallID().Value(), callID)
	}
	if ss := notify.GetHeader("Subscription-State"); ss == nil || !strings.HasPrefix(ss.Value(), state) {
		t.Errorf("NOTIFY Subscription-State = %v, want %s", ss, state)
	}
	if ev := notify.GetHeader("Event"); ev == nil || ev.Value() != "presence" {
		t.Errorf("NOTIFY Event = %v, want presence", ev)
	}
	if len(body) == 0 {
		return
	}
	if ct := notify.ContentType(); ct == nil || ct.Value() != "application/pidf+xml" {
		t.Errorf("NOTIFY Content-Type = %v, want application/pidf+xml", ct)
	}
	for _, want := range body {
		if !strings.Contains(string(notify.Body()), want) {
			t.Errorf("NOTIFY body lacks %s:\n%s", want, notify.Body())
		}
	}
}

func TestKamailio(t *testing.T) {
	t.Parallel()
	montague := startSIPUser(t, "127.0.0.8") // the other domain's SIP server
	k := StartKamailio(t, KamailioOptions{
		Domain: "verona.example.org",
		IP:     "127.0.0.7",
		Peers:  map[string]string{"montague.example.net": montague.addr},
	})
	if host, _, _ := net.SplitHostPort(k.Addr); host != "127.0.0.7" {
		t.Errorf("Addr = %q, want 127.0.0.7:port", k.Addr)
	}
	alice := startSIPUser(t, "127.0.0.9")
	defer func() {
		if t.Failed() {
			t.Logf("kamailio log:\n%s", k.Log())
		}
	}()

	// alice registers with her own address as contact.
	reg := alice.request(sip.REGISTER, "sip:alice@verona.example.org", "sip:verona.example.org", k.Addr)
	reg.To().Address = sip.Uri{Scheme: "sip", User: "alice", Host: "verona.example.org"}
	reg.AppendHeader(sip.NewHeader("Expires", "300"))
	if res := alice.do(k, reg); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %s\n%s", res.StartLine(), k.Log())
	}

	// She publishes that she is available.
	pub := alice.request(sip.PUBLISH, "sip:alice@verona.example.org", "sip:alice@verona.example.org", k.Addr)
	pub.AppendHeader(sip.NewHeader("Event", "presence"))
	pub.AppendHeader(sip.NewHeader("Expires", "300"))
	pub.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
	pub.SetBody(alicePIDF("open", "at the balcony"))
	res := alice.do(k, pub)
	etag := res.GetHeader("SIP-ETag")
	if res.StatusCode != 200 || etag == nil {
		t.Fatalf("PUBLISH: %s, SIP-ETag %v\n%s", res.StartLine(), etag, k.Log())
	}

	t.Run("watcher from a peer domain sees her presence", func(t *testing.T) {
		sub := montague.request(sip.SUBSCRIBE, "sip:romeo@montague.example.net", "sip:alice@verona.example.org", k.Addr)
		sub.AppendHeader(sip.NewHeader("Event", "presence"))
		sub.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
		sub.AppendHeader(sip.NewHeader("Expires", "600"))
		res := montague.do(k, sub)
		if res.StatusCode != 200 && res.StatusCode != 202 {
			t.Fatalf("SUBSCRIBE: %s\n%s", res.StartLine(), k.Log())
		}
		callID := sub.CallID().Value()
		checkNotify(t, montague.nextNotifyWith(k, "<basic>open</basic>"), callID, "active",
			"<basic>open</basic>", "at the balcony", `entity="sip:alice@verona.example.org"`)

		// alice changes her status: the watcher hears of it.
		pub := alice.request(sip.PUBLISH, "sip:alice@verona.example.org", "sip:alice@verona.example.org", k.Addr)
		pub.AppendHeader(sip.NewHeader("Event", "presence"))
		pub.AppendHeader(sip.NewHeader("Expires", "300"))
		pub.AppendHeader(sip.NewHeader("SIP-If-Match", etag.Value()))
		pub.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
		pub.SetBody(alicePIDF("closed", "gone to Mantua"))
		if res := alice.do(k, pub); res.StatusCode != 200 {
			t.Fatalf("PUBLISH update: %s\n%s", res.StartLine(), k.Log())
		}
		checkNotify(t, montague.nextNotifyWith(k, "<basic>closed</basic>"), callID, "active",
			"<basic>closed</basic>", "gone to Mantua")

		// The watcher unsubscribes, in the dialog, at Kamailio's Contact.
		contact := res.Contact()
		if contact == nil {
			t.Fatalf("SUBSCRIBE response has no Contact:\n%s", res)
		}
		unsub := montague.request(sip.SUBSCRIBE, "sip:romeo@montague.example.net", contact.Address.String(), k.Addr)
		unsub.From().Params = sub.From().Params
		unsub.To().Address = sub.To().Address
		unsub.To().Params = res.To().Params
		cid := sip.CallIDHeader(callID)
		unsub.AppendHeader(&cid)
		unsub.AppendHeader(&sip.CSeqHeader{SeqNo: sub.CSeq().SeqNo + 1, MethodName: sip.SUBSCRIBE})
		unsub.AppendHeader(sip.NewHeader("Event", "presence"))
		unsub.AppendHeader(sip.NewHeader("Expires", "0"))
		if res := montague.do(k, unsub); res.StatusCode != 200 && res.StatusCode != 202 {
			t.Fatalf("unSUBSCRIBE: %s\n%s", res.StartLine(), k.Log())
		}
		checkNotify(t, montague.nextNotifyWith(k, "terminated"), callID, "terminated")
	})

	t.Run("message from a peer domain reaches her contact", func(t *testing.T) {
		msg := montague.request(sip.MESSAGE, "sip:romeo@montague.example.net", "sip:alice@verona.example.org", k.Addr)
		msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		msg.SetBody([]byte("Wherefore art thou?"))
		if res := montague.do(k, msg); res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %s\n%s", res.StartLine(), k.Log())
		}
		got := alice.next(k, sip.MESSAGE, "MESSAGE to alice")
		if string(got.Body()) != "Wherefore art thou?" || got.From().Address.User != "romeo" {
			t.Errorf("alice got %q from %s", got.Body(), got.From().Address.String())
		}
	})

	t.Run("message to a peer domain reaches the peer", func(t *testing.T) {
		msg := alice.request(sip.MESSAGE, "sip:alice@verona.example.org", "sip:bob@montague.example.net", k.Addr)
		msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		msg.SetBody([]byte("Good night, good night!"))
		if res := alice.do(k, msg); res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %s\n%s", res.StartLine(), k.Log())
		}
		got := montague.next(k, sip.MESSAGE, "MESSAGE to bob")
		if string(got.Body()) != "Good night, good night!" || got.Recipient.User != "bob" ||
			got.Recipient.Host != "montague.example.net" {
			t.Errorf("montague got %q for %s", got.Body(), got.Recipient.String())
		}
	})

	t.Run("message over TCP to a peer domain goes over TCP", func(t *testing.T) {
		msg := alice.request(sip.MESSAGE, "sip:alice@verona.example.org", "sip:bob@montague.example.net", k.Addr)
		msg.SetTransport("TCP")
		msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		msg.SetBody([]byte("Parting is such sweet sorrow"))
		if res := alice.do(k, msg); res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %s\n%s", res.StartLine(), k.Log())
		}
		got := montague.next(k, sip.MESSAGE, "MESSAGE to bob over TCP")
		if string(got.Body()) != "Parting is such sweet sorrow" || got.Transport() != "TCP" {
			t.Errorf("montague got %q over %s", got.Body(), got.Transport())
		}
	})

	t.Run("message to an unregistered user", func(t *testing.T) {
		msg := montague.request(sip.MESSAGE, "sip:romeo@montague.example.net", "sip:tybalt@verona.example.org", k.Addr)
		msg.SetBody([]byte("hello?"))
		if res := montague.do(k, msg); res.StatusCode != 404 {
			t.Errorf("MESSAGE: %s, want 404", res.StartLine())
		}
	})

	t.Run("message to an unknown domain", func(t *testing.T) {
		msg := alice.request(sip.MESSAGE, "sip:alice@verona.example.org", "sip:paris@elsewhere.example", k.Addr)
		msg.SetBody([]byte("hello?"))
		if res := alice.do(k, msg); res.StatusCode != 403 {
			t.Errorf("MESSAGE: %s, want 403", res.StartLine())
		}
	})

	log := k.Log()
	if !strings.Contains(log, "request PUBLISH sip:alice@verona.example.org from 127.0.0.9:") {
		t.Errorf("Log() does not show the PUBLISH:\n%s", log)
	}
	for _, bad := range []string{" ERROR: ", " CRITICAL: ", " WARNING: "} {
		if strings.Contains(log, bad) {
			t.Errorf("kamailio logged%s:\n%s", bad, log)
		}
	}
	k.Stop()
	k.Stop() // idempotent
}

// Kamailio cannot parse im: and pres: URIs (RFC 3860, 3859) and answers 400;
// with AcceptIMPres it takes them as sip: URIs.
func TestKamailioIMPres(t *testing.T) {
	t.Parallel()
	montague := startSIPUser(t, "127.0.0.8")
	alice := startSIPUser(t, "127.0.0.9")
	for _, accept := range []bool{false, true} {
		t.Run("AcceptIMPres="+strconv.FormatBool(accept), func(t *testing.T) {
			k := StartKamailio(t, KamailioOptions{
				Domain:       "verona.example.org",
				IP:           "127.0.0.7",
				Peers:        map[string]string{"montague.example.net": montague.addr},
				AcceptIMPres: accept,
			})
			reg := alice.request(sip.REGISTER, "sip:alice@verona.example.org", "sip:verona.example.org", k.Addr)
			reg.To().Address = sip.Uri{Scheme: "sip", User: "alice", Host: "verona.example.org"}
			if res := alice.do(k, reg); res.StatusCode != 200 {
				t.Fatalf("REGISTER: %s\n%s", res.StartLine(), k.Log())
			}

			msg := montague.request(sip.MESSAGE, "im:romeo@montague.example.net", "im:alice@verona.example.org", k.Addr)
			msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
			msg.SetBody([]byte("By a name I know not how to tell thee who I am"))
			res := montague.do(k, msg)
			if !accept {
				if res.StatusCode != 400 {
					t.Errorf("MESSAGE im:: %s, want 400", res.StartLine())
				}
			} else {
				if res.StatusCode != 200 {
					t.Fatalf("MESSAGE im:: %s\n%s", res.StartLine(), k.Log())
				}
				got := alice.next(k, sip.MESSAGE, "MESSAGE to im:alice")
				if string(got.Body()) != string(msg.Body()) ||
					got.To().Address.String() != "sip:alice@verona.example.org" ||
					got.From().Address.String() != "sip:romeo@montague.example.net" {
					t.Errorf("alice got %q from %s to %s", got.Body(), got.From().Address.String(), got.To().Address.String())
				}
			}

			sub := montague.request(sip.SUBSCRIBE, "pres:romeo@montague.example.net", "pres:alice@verona.example.org", k.Addr)
			sub.AppendHeader(sip.NewHeader("Event", "presence"))
			sub.AppendHeader(sip.NewHeader("Expires", "60"))
			res = montague.do(k, sub)
			if !accept {
				if res.StatusCode != 400 {
					t.Errorf("SUBSCRIBE pres:: %s, want 400", res.StartLine())
				}
				return
			}
			if res.StatusCode != 200 && res.StatusCode != 202 {
				t.Fatalf("SUBSCRIBE pres:: %s\n%s", res.StartLine(), k.Log())
			}
			checkNotify(t, montague.next(k, sip.NOTIFY, "NOTIFY for pres:alice"), sub.CallID().Value(), "active")
		})
	}
}

func TestKamailioOptions(t *testing.T) {
	t.Parallel()
	bad := []KamailioOptions{
		{Domain: ""},
		{Domain: `verona"; evil`},
		{Domain: "verona.example.org", Port: 70000},
		{Domain: "verona.example.org", Peers: map[string]string{"verona.example.org": "127.0.0.1:5060"}},
		{Domain: "verona.example.org", Peers: map[string]string{"montague.example.net": "192.0.2.1:5060"}},
		{Domain: "verona.example.org", Peers: map[string]string{"montague.example.net": "montague:5060"}},
		{Domain: "verona.example.org", Peers: map[string]string{"montague.example.net": "127.0.0.1"}},
	}
	for _, o := range bad {
		if err := checkKamailioOptions(o); err == nil {
			t.Errorf("checkKamailioOptions(%+v) = nil, want an error", o)
		}
	}
	good := KamailioOptions{Domain: "verona.example.org", IP: "127.0.0.7",
		Peers: map[string]string{"b.example": "127.0.0.8:5062", "a.example": "[::1]:5060"}}
	if err := checkKamailioOptions(good); err != nil {
		t.Fatal(err)
	}
	cfg, err := kamailioConfig(good, 5070)
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	for _, want := range []string{
		"listen=udp:127.0.0.7:5070\n",
		"listen=tcp:127.0.0.7:5070\n",
		"tcp_source_ipv4=127.0.0.7\n",
		`alias="verona.example.org"`,
		`modparam("presence", "publ_cache", 2)`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %s", want)
		}
	}
	a := strings.Index(s, `$du = "sip:[::1]:5060;transport=" + $pr;`)
	b := strings.Index(s, `$du = "sip:127.0.0.8:5062;transport=" + $pr;`)
	if a < 0 || b < 0 || a > b {
		t.Errorf("peers not routed in order a, b:\n%s", s)
	}
}
