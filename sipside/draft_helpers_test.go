package sipside

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/store"
)

// Helpers for the draft tests: the draft's messages as files, a raw SIP
// endpoint that sends them byte for byte, a SessionHandler and a static
// Resolver.

// readDraft returns a message of testdata/draft (CRLF line ends, as the
// draft prints it).
func readDraft(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "draft", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// completeDraft adds what the draft says its examples omit (§4): a Via
// and Max-Forwards after the start line, and a Content-Length with the
// real value (replacing the draft's placeholder line, or added). Nothing
// else changes.
func completeDraft(msg []byte, transport, local, branch string) []byte {
	head, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	out := []string{lines[0],
		fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport", strings.ToUpper(transport), local, branch),
		"Max-Forwards: 70"}
	cl := "Content-Length: " + strconv.Itoa(len(body))
	added := false
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "Content-Length:") {
			l, added = cl, true
		}
		out = append(out, l)
	}
	if !added {
		out = append(out, cl)
	}
	return []byte(strings.Join(out, "\r\n") + "\r\n\r\n" + string(body))
}

// setHeader replaces the value of a header in a raw message (the To tag
// of an ACK must be the one our server chose).
func setHeader(msg []byte, name, value string) []byte {
	lines := strings.Split(string(msg), "\r\n")
	for i, l := range lines {
		if l == "" {
			break
		}
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			lines[i] = name + ": " + value
		}
	}
	return []byte(strings.Join(lines, "\r\n"))
}

// wire is a raw SIP endpoint on 127.0.0.1 talking to one server over UDP
// or TCP.
type wire struct {
	t         *testing.T
	transport string
	pc        net.PacketConn
	dst       net.Addr
	conn      net.Conn
	r         *bufio.Reader
}

// dialWire opens a wire to server over transport (udp, tcp or tls) from
// 127.0.0.1.
func dialWire(t *testing.T, transport, server string) *wire {
	t.Helper()
	return dialWireFrom(t, transport, "127.0.0.1", server, nil)
}

// dialWireFrom is dialWire from a given local IP (127.0.0.x); over TLS it
// presents cert, none when nil, and does not verify the server's
// (generated) certificate.
func dialWireFrom(t *testing.T, transport, localIP, server string, cert *tls.Certificate) *wire {
	t.Helper()
	w := &wire{t: t, transport: transport}
	if transport == "udp" {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(localIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		w.pc = pc
		w.dst, err = net.ResolveUDPAddr("udp", server)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	var c net.Conn
	var err error
	switch transport {
	case "tcp":
		c, err = d.Dial("tcp", server)
	case "tls":
		cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // generated test certificate
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c, err = tls.DialWithDialer(d, "tcp", server, cfg)
	default:
		t.Fatalf("dialWire: unknown transport %q", transport)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.conn, w.r = c, bufio.NewReader(c)
	return w
}

func (w *wire) local() string {
	if w.pc != nil {
		return w.pc.LocalAddr().String()
	}
	return w.conn.LocalAddr().String()
}

func (w *wire) send(msg []byte) {
	w.t.Helper()
	var err error
	if w.pc != nil {
		_, err = w.pc.WriteTo(msg, w.dst)
	} else {
		_, err = w.conn.Write(msg)
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next SIP message, or fails the test after 10 seconds.
func (w *wire) read() []byte {
	w.t.Helper()
	m, err := w.readTimeout(10 * time.Second)
	if err != nil {
		w.t.Fatalf("no message: %v", err)
	}
	return m
}

func (w *wire) readTimeout(d time.Duration) ([]byte, error) {
	if w.pc != nil {
		if err := w.pc.SetReadDeadline(time.Now().Add(d)); err != nil {
			return nil, err
		}
		buf := make([]byte, 65536)
		for {
			n, _, err := w.pc.ReadFrom(buf)
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(buf[:n])) == 0 {
				continue
			}
			return append([]byte(nil), buf[:n]...), nil
		}
	}
	if err := w.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	return readStreamMessage(w.r)
}

// final reads until a final response (skipping 1xx) and parses it.
func (w *wire) final() *sip.Response {
	w.t.Helper()
	for {
		m := w.read()
		if statusOf(m) == 0 {
			w.t.Fatalf("expected a response, got\n%s", m)
		}
		if statusOf(m) >= 200 {
			return parseResponse(w.t, m)
		}
	}
}

func parseResponse(t *testing.T, m []byte) *sip.Response {
	t.Helper()
	msg, err := sip.NewParser().ParseSIP(m)
	if err != nil {
		t.Fatalf("parse %q: %v", m, err)
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		t.Fatalf("not a response:\n%s", m)
	}
	return res
}

func parseRequest(t *testing.T, m []byte) *sip.Request {
	t.Helper()
	msg, err := sip.NewParser().ParseSIP(m)
	if err != nil {
		t.Fatalf("parse %q: %v", m, err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("not a request:\n%s", m)
	}
	return req
}

// answer200 answers a request read off the wire with 200 OK.
func (w *wire) answer200(req *sip.Request) {
	w.t.Helper()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	w.send([]byte(res.String()))
}

// staticResolver maps domains and hosts to SIP targets.
type staticResolver struct {
	mu sync.Mutex
	m  map[string][]addressing.Target
}

func (r *staticResolver) set(domain, transport, hostPort string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string][]addressing.Target)
	}
	h, p, _ := net.SplitHostPort(hostPort)
	port, _ := strconv.Atoi(p)
	r.m[domain] = append(r.m[domain], addressing.Target{Protocol: addressing.ProtocolSIP, Transport: transport, Host: h, Port: port, Source: addressing.SourceStaticPeer})
}

func (r *staticResolver) ResolveSIP(_ context.Context, domain string) ([]addressing.Target, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ts, ok := r.m[domain]; ok {
		return ts, nil
	}
	return nil, errors.New("no such host in the test resolver")
}

// testSessions is a SessionHandler: it answers with jid for users in
// online, ErrOffline for the others, and records what it saw.
type testSessions struct {
	jid    string
	host   string
	port   int
	online map[string]bool
	// err, when set, is returned for every offer; block makes Offer wait
	// for its context (for CANCEL).
	err   error
	block bool

	mu     sync.Mutex
	offers []InviteOffer
	ended  chan string // "callID reason"
}

func newTestSessions(jid string, online ...string) *testSessions {
	h := &testSessions{jid: jid, host: "impish.thecapulets.example.com", port: 5222, online: map[string]bool{}, ended: make(chan string, 16)}
	for _, u := range online {
		h.online[u] = true
	}
	return h
}

func (h *testSessions) Offer(ctx context.Context, o InviteOffer) (InviteAnswer, error) {
	h.mu.Lock()
	h.offers = append(h.offers, o)
	h.mu.Unlock()
	if h.block {
		<-ctx.Done()
		return InviteAnswer{}, ctx.Err()
	}
	if h.err != nil {
		return InviteAnswer{}, h.err
	}
	h.mu.Lock()
	online := h.online[o.RequestURI.BareJID()]
	h.mu.Unlock()
	if !online {
		return InviteAnswer{}, ErrOffline
	}
	return InviteAnswer{JID: h.jid, Host: h.host, Port: h.port}, nil
}

// setOnline sets whether user has a session endpoint.
func (h *testSessions) setOnline(user string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.online == nil {
		h.online = map[string]bool{}
	}
	h.online[user] = on
}

func (h *testSessions) Ended(_ context.Context, _, callID, reason string) {
	h.ended <- callID + " " + reason
}

func (h *testSessions) lastOffer(t *testing.T) InviteOffer {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.offers) == 0 {
		t.Fatal("no offer reached the SessionHandler")
	}
	return h.offers[len(h.offers)-1]
}

func (h *testSessions) waitEnded(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-h.ended:
		if got != want {
			t.Fatalf("Ended(%s), want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Ended not called (want %s)", want)
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// startServerCtx is startServer with a context of the test's: ending it
// stops the server (the shutdown path) before the test does.
func startServerCtx(t *testing.T, ctx context.Context, users store.Users, domains []string, mod func(*Options)) *testServer {
	t.Helper()
	opts := Options{
		Domains: domains,
		Users:   users,
		Listen: []config.Listen{
			{Transport: "udp", Host: "127.0.0.1"},
			{Transport: "tcp", Host: "127.0.0.1"},
		},
		Logger: testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	return serveTest(t, ctx, opts)
}

func mustAddr(t *testing.T, s string) addressing.Address {
	t.Helper()
	a, err := addressing.ParseJID(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
