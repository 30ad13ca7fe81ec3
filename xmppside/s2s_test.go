package xmppside

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/internal/certs"
	"github.com/umpp/umpp/internal/testenv"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
	"github.com/umpp/umpp/xmppside/dialback"
)

const (
	montague = "montague.example.net"
	capulets = "capulets.example.com"
)

// tlsIdentity is a self-signed certificate for a domain.
type tlsIdentity struct {
	pem, key []byte
	pair     tls.Certificate
}

func newIdentity(t testing.TB, domain string, ip net.IP) tlsIdentity {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{domain}, []net.IP{ip}, time.Hour)
	if err != nil {
		t.Fatalf("generate certificate: %v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("key pair: %v", err)
	}
	return tlsIdentity{pem: certPEM, key: keyPEM, pair: pair}
}

func tlsConfigFor(id tlsIdentity) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{id.pair}}
}

// s2sHost is one XMPP host (c2s and s2s) on its own loopback address.
type s2sHost struct {
	t        testing.TB
	domain   string
	ip       string
	id       tlsIdentity
	db       *sqlite.DB
	srv      *Server
	c2s      string
	s2sAddr  string
	trusted  *x509.CertPool
	stop     func()
	clientTC *tls.Config
}

type hostConfig struct {
	domain, ip string
	s2sPort    int
	peers      []addressing.StaticPeer
	resolver   Resolver // overrides peers
	trust      []tlsIdentity
	tweak      func(*Options)
	quiet      bool // log at info level (benchmarks)
}

func startHost(t testing.TB, hc hostConfig) *s2sHost {
	t.Helper()
	ip := net.ParseIP(hc.ip)
	h := &s2sHost{t: t, domain: hc.domain, ip: hc.ip, id: newIdentity(t, hc.domain, ip)}
	h.trusted = x509.NewCertPool()
	for _, id := range hc.trust {
		h.trusted.AppendCertsFromPEM(id.pem)
	}
	self := x509.NewCertPool()
	self.AppendCertsFromPEM(h.id.pem)
	h.clientTC = &tls.Config{RootCAs: self, ServerName: hc.domain}

	db := openStore(t, filepath.Join(t.TempDir(), "umpp.db"))
	h.db = db
	res := hc.resolver
	if res == nil {
		r, err := addressing.NewResolver(addressing.ResolverConfig{Peers: hc.peers, Server: "127.0.0.1:9", Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatalf("resolver: %v", err)
		}
		res = r
	}
	level := slog.LevelDebug
	if hc.quiet {
		level = slog.LevelWarn
	}
	secret := make([]byte, 32)
	copy(secret, hc.domain)
	pair := h.id.pair
	opts := Options{
		Domains:          []string{hc.domain},
		Users:            db,
		Rosters:          db,
		Offline:          db,
		TLS:              &tls.Config{Certificates: []tls.Certificate{pair}},
		HandshakeTimeout: 10 * time.Second,
		Resolver:         res,
		ClientTLS: func(name string) *tls.Config {
			return &tls.Config{ServerName: name, RootCAs: h.trusted, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
		},
		RootCAs:           func() *x509.CertPool { return h.trusted },
		DialbackSecret:    secret,
		S2SConnectTimeout: 5 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})).With("host", hc.domain),
	}
	if hc.tweak != nil {
		hc.tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Listen([]string{hc.ip + ":0"}, nil); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if err := srv.ListenS2S([]string{net.JoinHostPort(hc.ip, strconv.Itoa(hc.s2sPort))}); err != nil {
		_ = srv.Close()
		t.Fatalf("ListenS2S: %v", err)
	}
	c2s, _ := srv.Addrs()
	h.srv, h.c2s, h.s2sAddr = srv, c2s[0].String(), srv.S2SAddrs()[0].String()
	h.stop = serve(t, srv)
	return h
}

func (h *s2sHost) addUser(local, password string) {
	h.t.Helper()
	cr, err := store.DeriveCredentials(local, h.domain, password)
	if err != nil {
		h.t.Fatalf("derive credentials: %v", err)
	}
	if err := h.db.CreateUser(context.Background(), store.User{JID: local + "@" + h.domain, Credentials: cr, Created: time.Now()}); err != nil {
		h.t.Fatalf("create user: %v", err)
	}
}

// login connects a mellium client over STARTTLS with SCRAM-SHA-256.
func (h *s2sHost) login(user, password, resource string) *client {
	h.t.Helper()
	return loginAt(h.t, h.c2s, user+"@"+h.domain+"/"+resource, password, sasl.ScramSha256, h.clientTC)
}

// loginAt logs a mellium client in at a c2s address (ours or Prosody's).
func loginAt(t testing.TB, addr, full, password string, mech sasl.Mechanism, cfg *tls.Config) *client {
	t.Helper()
	origin, err := jid.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	// Prosody refuses bindResource's duplicated xmlns attributes: without
	// a resource, use mellium's own (the server picks the resource).
	bind := xmpp.BindResource()
	if origin.Resourcepart() != "" {
		bind = bindResource(origin.Resourcepart())
	}
	s, err := testenv.XMPPClientSession(nc, origin, 10*time.Second, xmpp.StartTLS(cfg), xmpp.SASL("", password, mech), bind)
	if err != nil {
		_ = nc.Close()
		t.Fatalf("login %s: %v", origin, err)
	}
	return serveClient(t, s)
}

// linkAuth returns how the outbound link from local to remote
// authenticated, or "" when it is not connected.
func (h *s2sHost) linkAuth(remote string) string {
	h.srv.s2s.mu.Lock()
	l := h.srv.s2s.links[s2sPair{local: h.domain, remote: remote}]
	h.srv.s2s.mu.Unlock()
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out == nil {
		return ""
	}
	return l.out.auth
}

// federation starts montague on 127.0.0.2 and capulets on 127.0.0.3,
// each finding the other as a static peer; trusted makes each trust the
// other's certificate (SASL EXTERNAL), otherwise they use dialback.
func federation(t testing.TB, trusted bool, tweak ...func(*hostConfig)) (a, b *s2sHost) {
	t.Helper()
	pa := testenv.FreePort(t, "tcp", "127.0.0.2")
	pb := testenv.FreePort(t, "tcp", "127.0.0.3")
	peers := []addressing.StaticPeer{
		{Domain: montague, XMPP: "127.0.0.2:" + strconv.Itoa(pa), Mode: "xmpp"},
		{Domain: capulets, XMPP: "127.0.0.3:" + strconv.Itoa(pb), Mode: "xmpp"},
	}
	idA := newIdentity(t, montague, net.ParseIP("127.0.0.2"))
	idB := newIdentity(t, capulets, net.ParseIP("127.0.0.3"))
	var trustA, trustB []tlsIdentity
	if trusted {
		trustA, trustB = []tlsIdentity{idB}, []tlsIdentity{idA}
	}
	hcA := hostConfig{domain: montague, ip: "127.0.0.2", s2sPort: pa, peers: peers, trust: trustA}
	hcB := hostConfig{domain: capulets, ip: "127.0.0.3", s2sPort: pb, peers: peers, trust: trustB}
	for _, f := range tweak {
		f(&hcA)
		f(&hcB)
	}
	a = startHostWithID(t, hcA, idA)
	b = startHostWithID(t, hcB, idB)
	a.addUser("romeo", "r-pw")
	b.addUser("juliet", "j-pw")
	return a, b
}

// startHostWithID is startHost with a given certificate.
func startHostWithID(t testing.TB, hc hostConfig, id tlsIdentity) *s2sHost {
	t.Helper()
	prev := hc.tweak
	hc.tweak = func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{id.pair}}
		if prev != nil {
			prev(o)
		}
	}
	h := startHost(t, hc)
	// ClientTLS and the c2s client trust follow the host's identity.
	h.id = id
	self := x509.NewCertPool()
	self.AppendCertsFromPEM(id.pem)
	h.clientTC.RootCAs = self
	pair := id.pair
	h.srv.opts.ClientTLS = func(name string) *tls.Config {
		return &tls.Config{ServerName: name, RootCAs: h.trusted, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
	}
	return h
}

func isMessage(id string) func(node) bool {
	return func(n node) bool { return n.XMLName.Local == "message" && n.attr("id") == id }
}

func isPresence(from, typ string) func(node) bool {
	return func(n node) bool {
		return n.XMLName.Local == "presence" && strings.HasPrefix(n.attr("from"), from) && n.attr("type") == typ
	}
}

func TestS2SFederation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted bool
		auth    string
	}{
		{"certificates/EXTERNAL", true, "external"},
		{"untrusted/dialback", false, "dialback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := federation(t, tc.trusted)
			romeo := a.login("romeo", "r-pw", "orchard")
			juliet := b.login("juliet", "j-pw", "balcony")
			converse(t, romeo, juliet)
			if auth := a.linkAuth(capulets); auth != tc.auth {
				t.Errorf("montague -> capulets authenticated with %q, want %q", auth, tc.auth)
			}
			if auth := b.linkAuth(montague); auth != tc.auth {
				t.Errorf("capulets -> montague authenticated with %q, want %q", auth, tc.auth)
			}
			// What an operator sees (umppd peers): montague has an
			// outbound and an inbound stream with capulets, both
			// authenticated the same way, over TLS.
			st := a.srv.Stats().S2S
			if len(st) != 2 {
				t.Fatalf("montague's s2s stats: %+v, want one stream each way", st)
			}
			wantAuth := map[string]string{"external": "sasl-external", "dialback": "dialback"}[tc.auth]
			for i, dir := range []string{"in", "out"} {
				s := st[i]
				if s.Domain != capulets || s.Local != montague || s.Direction != dir || s.Auth != wantAuth || !strings.HasPrefix(s.TLSVersion, "TLS 1.") || s.Remote == "" || s.Since.IsZero() {
					t.Errorf("montague's s2s stream %d: %+v, want %s from %s with %s over TLS", i, s, dir, capulets, wantAuth)
				}
			}
			// Unavailable reaches the subscriber when romeo leaves.
			romeo.close()
			juliet.nextWhere("romeo unavailable", isPresence("romeo@montague.example.net/orchard", "unavailable"))
		})
	}
}

// TestS2SPeerDown: a peer that refuses connections makes the sender get
// remote-server-not-found, at once during the backoff too.
func TestS2SPeerDown(t *testing.T) {
	dead := testenv.FreePort(t, "tcp", "127.0.0.3")
	a := startHost(t, hostConfig{domain: montague, ip: "127.0.0.2", peers: []addressing.StaticPeer{{Domain: capulets, XMPP: "127.0.0.3:" + strconv.Itoa(dead), Mode: "xmpp"}}})
	a.addUser("romeo", "r-pw")
	romeo := a.login("romeo", "r-pw", "orchard")
	start := time.Now()
	for _, id := range []string{"d1", "d2"} {
		romeo.send(`<message to='juliet@capulets.example.com' type='chat' id='` + id + `'><body>hello?</body></message>`)
		got := romeo.nextWhere("bounce "+id, isMessage(id))
		if got.attr("type") != "error" || got.errorCondition() != "remote-server-not-found" || got.attr("from") != "juliet@capulets.example.com" {
			t.Fatalf("got %+v, want a remote-server-not-found bounce", got)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("bounces took %v", d)
	}

	// The peer comes up: after the backoff (2s after the first failure)
	// the next message is delivered.
	b := startHost(t, hostConfig{domain: capulets, ip: "127.0.0.3", s2sPort: dead, peers: []addressing.StaticPeer{{Domain: montague, XMPP: a.s2sAddr, Mode: "xmpp"}}})
	b.addUser("juliet", "j-pw")
	juliet := b.login("juliet", "j-pw", "balcony")
	juliet.send(`<presence/>`)
	juliet.sync()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		id := "u" + strconv.Itoa(i)
		romeo.send(`<message to='juliet@capulets.example.com/balcony' type='chat' id='` + id + `'><body>again</body></message>`)
		select {
		case n := <-juliet.in:
			if n.attr("id") == id {
				return
			}
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the peer came up")
		}
		got := romeo.nextWhere("bounce "+id, isMessage(id))
		if got.errorCondition() != "remote-server-not-found" {
			t.Fatalf("got %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestS2SPeerTimeout: a peer that accepts TCP but never answers makes
// the sender get remote-server-timeout.
func TestS2SPeerTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	a := startHost(t, hostConfig{domain: montague, ip: "127.0.0.2", peers: []addressing.StaticPeer{{Domain: capulets, XMPP: ln.Addr().String(), Mode: "xmpp"}},
		tweak: func(o *Options) { o.S2SConnectTimeout = time.Second }})
	a.addUser("romeo", "r-pw")
	romeo := a.login("romeo", "r-pw", "orchard")
	romeo.send(`<message to='juliet@capulets.example.com' id='t1'><body>hello?</body></message>`)
	got := romeo.nextWhere("bounce", isMessage("t1"))
	if got.errorCondition() != "remote-server-timeout" {
		t.Fatalf("got %+v, want remote-server-timeout", got)
	}
}

// TestS2SReconnect: when the s2s stream drops mid-conversation, later
// messages go out on a new stream, in order, none lost.
func TestS2SReconnect(t *testing.T) {
	a, b := federation(t, false)
	romeo := a.login("romeo", "r-pw", "orchard")
	juliet := b.login("juliet", "j-pw", "balcony")
	juliet.send(`<presence/>`)
	juliet.sync()
	romeo.send(`<message to='juliet@capulets.example.com/balcony' type='chat' id='r0'><body>first</body></message>`)
	juliet.nextWhere("r0", isMessage("r0"))

	// Drop capulets' inbound s2s TCP connections without a goodbye.
	b.srv.mu.Lock()
	n := len(b.srv.s2sConns)
	for c := range b.srv.s2sConns {
		_ = c.wire.raw.Close()
	}
	b.srv.mu.Unlock()
	if n == 0 {
		t.Fatal("no inbound s2s stream at capulets")
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.linkAuth(capulets) != "" {
		if time.Now().After(deadline) {
			t.Fatal("montague did not notice the dropped stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 1; i <= 5; i++ {
		romeo.send(fmt.Sprintf(`<message to='juliet@capulets.example.com/balcony' type='chat' id='r%d'><body>after %d</body></message>`, i, i))
	}
	for i := 1; i <= 5; i++ {
		got := juliet.nextWhere("message", func(n node) bool { return n.XMLName.Local == "message" })
		if got.attr("id") != fmt.Sprintf("r%d", i) || got.attr("type") == "error" {
			t.Fatalf("message %d: got %+v", i, got)
		}
	}
}

// rawS2S is a hand-driven s2s peer.
type rawS2S struct {
	t  testing.TB
	nc net.Conn
	d  *xml.Decoder
}

func (r *rawS2S) write(s string) {
	r.t.Helper()
	_ = r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.nc, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawS2S) header() {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := r.d.Token()
		if err != nil {
			r.t.Fatalf("header: %v", err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			return
		}
	}
}

func (r *rawS2S) read() node {
	r.t.Helper()
	rc := rawConn{t: r.t, nc: r.nc, d: r.d}
	n, err := rc.readElement()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return n
}

// streamError reads up to a stream error (past a stream header if one
// comes first) and returns its condition.
func (r *rawS2S) streamError() string {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := r.d.Token()
		if err != nil {
			r.t.Fatalf("no stream error before %v", err)
		}
		st, ok := tok.(xml.StartElement)
		if !ok || st.Name.Local == "stream" {
			continue
		}
		var n node
		if err := r.d.DecodeElement(&n, &st); err != nil {
			r.t.Fatalf("decode: %v", err)
		}
		if n.XMLName.Space == nsStream && n.XMLName.Local == "error" {
			for _, c := range n.Children {
				if c.XMLName.Space == nsStreams {
					return c.XMLName.Local
				}
			}
			return ""
		}
	}
}

// dialS2S opens a stream from 'from' to 'to' at addr with STARTTLS,
// presenting id.
func dialS2S(t *testing.T, addr, from, to string, id tlsIdentity) *rawS2S {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	r := &rawS2S{t: t, nc: nc, d: xml.NewDecoder(bufio.NewReader(nc))}
	hdr := s2sHeader(from, to, "")
	r.write(hdr)
	r.header()
	r.read() // features
	r.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if n := r.read(); n.XMLName.Local != "proceed" {
		t.Fatalf("got %v", n.XMLName)
	}
	pair := id.pair
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r.nc, r.d = tc, xml.NewDecoder(bufio.NewReader(tc))
	r.write(hdr)
	r.header()
	return r
}

// TestS2SSpoofing: a peer authenticated as evil.example may not send
// stanzas from other domains (invalid-from), nor break the XML rules
// (the c2s scanner's limits apply on s2s streams too).
func TestS2SSpoofing(t *testing.T) {
	evil := newIdentity(t, "evil.example", net.ParseIP("127.0.0.4"))
	b := startHost(t, hostConfig{domain: capulets, ip: "127.0.0.3", trust: []tlsIdentity{evil}})
	b.addUser("juliet", "j-pw")
	juliet := b.login("juliet", "j-pw", "balcony")
	juliet.send(`<presence/>`)
	juliet.sync()

	for _, tc := range []struct {
		name, stanza, want string
	}{
		{"other domain", `<message from='romeo@montague.example.net/x' to='juliet@capulets.example.com' id='s1'><body>spoof</body></message>`, "invalid-from"},
		{"our own domain", `<message from='nurse@capulets.example.com' to='juliet@capulets.example.com' id='s2'><body>spoof</body></message>`, "invalid-from"},
		{"not our domain", `<message from='iago@evil.example' to='juliet@montague.example.net' id='s3'><body>x</body></message>`, "host-unknown"},
		{"no from", `<message to='juliet@capulets.example.com' id='s4'><body>x</body></message>`, "improper-addressing"},
		{"malformed XML", `<message from='iago@evil.example' to='juliet@capulets.example.com'><body>x</message>`, "not-well-formed"},
		{"entity bomb", `<!DOCTYPE lol [<!ENTITY lol "lol">]><message/>`, "restricted-xml"},
		{"oversized", `<message from='iago@evil.example' to='juliet@capulets.example.com'><body>` + strings.Repeat("x", 300<<10) + `</body></message>`, "policy-violation"},
		{"unknown element", `<foo xmlns='urn:example:foo'/>`, "unsupported-stanza-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialS2S(t, b.s2sAddr, "evil.example", capulets, evil)
			feats := r.read()
			mechs, ok := feats.child("mechanisms")
			if !ok || len(mechs.Children) == 0 || mechs.Children[0].Text != "EXTERNAL" {
				t.Fatalf("EXTERNAL not offered: %+v", feats)
			}
			r.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte("evil.example")) + "</auth>")
			if n := r.read(); n.XMLName.Local != "success" {
				t.Fatalf("EXTERNAL: %+v", n)
			}
			r.write(s2sHeader("evil.example", capulets, ""))
			r.header()
			r.read() // features
			r.write(tc.stanza)
			if got := r.streamError(); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
		})
	}
	// A legitimate message from evil.example still gets through, and
	// none of the spoofed ones did.
	r := dialS2S(t, b.s2sAddr, "evil.example", capulets, evil)
	r.read()
	r.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
	if n := r.read(); n.XMLName.Local != "success" {
		t.Fatalf("EXTERNAL: %+v", n)
	}
	r.write(s2sHeader("evil.example", capulets, ""))
	r.header()
	r.read()
	r.write(`<message from='iago@evil.example' to='juliet@capulets.example.com' id='ok'><body>honest</body></message>`)
	got := juliet.nextWhere("a message", func(n node) bool { return n.XMLName.Local == "message" })
	if got.attr("id") != "ok" {
		t.Fatalf("juliet got %+v", got)
	}
}

// TestS2SInboundRefusals: the stream-level refusals of the listener.
func TestS2SInboundRefusals(t *testing.T) {
	stranger := newIdentity(t, "stranger.example", net.ParseIP("127.0.0.4"))
	b := startHost(t, hostConfig{domain: capulets, ip: "127.0.0.3", tweak: func(o *Options) {
		o.AllowDomain = func(d string) bool { return d != "banned.example" }
	}})
	dial := func() *rawS2S {
		nc, err := net.Dial("tcp", b.s2sAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		return &rawS2S{t: t, nc: nc, d: xml.NewDecoder(bufio.NewReader(nc))}
	}
	for _, tc := range []struct {
		name  string
		steps func(r *rawS2S)
		want  string
	}{
		{"unknown host", func(r *rawS2S) { r.write(s2sHeader("a.example", "nobody.example", "")) }, "host-unknown"},
		{"banned domain", func(r *rawS2S) { r.write(s2sHeader("banned.example", capulets, "")) }, "policy-violation"},
		{"stanza before TLS", func(r *rawS2S) {
			r.write(s2sHeader("a.example", capulets, ""))
			r.header()
			r.read()
			r.write(`<message from='x@a.example' to='juliet@capulets.example.com'/>`)
		}, "policy-violation"},
		{"wrong namespace", func(r *rawS2S) {
			r.write(strings.Replace(s2sHeader("a.example", capulets, ""), "jabber:server'", "jabber:client'", 1))
		}, "invalid-namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dial()
			tc.steps(r)
			if got := r.streamError(); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("stanza before authentication", func(t *testing.T) {
		r := dialS2S(t, b.s2sAddr, "stranger.example", capulets, stranger)
		feats := r.read()
		if _, ok := feats.child("mechanisms"); ok {
			t.Fatalf("EXTERNAL offered for an untrusted certificate: %+v", feats)
		}
		if _, ok := feats.child("dialback"); !ok {
			t.Fatalf("dialback not offered: %+v", feats)
		}
		r.write(`<message from='x@stranger.example' to='juliet@capulets.example.com'/>`)
		if got := r.streamError(); got != "not-authorized" {
			t.Fatalf("stream error %q", got)
		}
	})
	t.Run("dialback from unreachable domain", func(t *testing.T) {
		r := dialS2S(t, b.s2sAddr, "stranger.example", capulets, stranger)
		r.read()
		r.write(`<db:result from='stranger.example' to='capulets.example.com'>0123abcd</db:result>`)
		n := r.read()
		if n.XMLName.Local != "result" || n.attr("type") == "valid" {
			t.Fatalf("got %+v", n)
		}
		r.write(`<message from='x@stranger.example' to='juliet@capulets.example.com'/>`)
		if got := r.streamError(); got != "not-authorized" {
			t.Fatalf("stream error %q", got)
		}
	})
	t.Run("db:verify answered", func(t *testing.T) {
		r := dialS2S(t, b.s2sAddr, "stranger.example", capulets, stranger)
		r.read()
		key := dialback.Key(b.srv.opts.DialbackSecret, "stranger.example", capulets, "sid-1")
		r.write(`<db:verify from='stranger.example' to='capulets.example.com' id='sid-1'>` + key + `</db:verify>`)
		if n := r.read(); n.XMLName.Local != "verify" || n.attr("type") != "valid" {
			t.Fatalf("got %+v", n)
		}
		r.write(`<db:verify from='stranger.example' to='capulets.example.com' id='sid-1'>bad</db:verify>`)
		if n := r.read(); n.attr("type") != "invalid" {
			t.Fatalf("got %+v", n)
		}
	})
}

// converse exchanges threaded messages both ways and sets up presence
// subscriptions both ways between romeo and juliet (any two accounts on
// two federated servers), as their users would see it.
func converse(t *testing.T, romeo, juliet *client) {
	t.Helper()
	rBare, jBare := bareOf(romeo.jid), bareOf(juliet.jid)
	// Like real clients: fetch the roster (which makes a resource
	// "interested" in subscription approvals, RFC 6121 §2.1.6), then
	// send initial presence.
	for _, c := range []*client{romeo, juliet} {
		c.send(`<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>`)
		c.nextWhere("roster", func(n node) bool { return n.attr("id") == "roster-1" })
		c.send(`<presence/>`)
	}
	romeo.send(`<message to='` + jBare + `' type='chat' id='m1'><body>But soft!</body><thread>t-42</thread></message>`)
	got := juliet.nextWhere("message m1", isMessage("m1"))
	if got.attr("from") != romeo.jid || got.attr("type") != "chat" {
		t.Fatalf("juliet got %+v", got)
	}
	if th, _ := got.child("thread"); th.Text != "t-42" {
		t.Fatalf("thread %q", th.Text)
	}
	if body, _ := got.child("body"); body.Text != "But soft!" {
		t.Fatalf("body %q", body.Text)
	}
	juliet.send(`<message to='` + romeo.jid + `' type='chat' id='m2'><body>Wherefore</body><thread>t-42</thread></message>`)
	got = romeo.nextWhere("message m2", isMessage("m2"))
	if th, _ := got.child("thread"); got.attr("from") != juliet.jid || th.Text != "t-42" {
		t.Fatalf("romeo got %+v", got)
	}

	romeo.send(`<presence to='` + jBare + `' type='subscribe'/>`)
	juliet.nextWhere("subscribe from romeo", isPresence(rBare, "subscribe"))
	juliet.send(`<presence to='` + rBare + `' type='subscribed'/>`)
	romeo.nextWhere("subscribed from juliet", isPresence(jBare, "subscribed"))
	romeo.nextWhere("juliet's presence", isPresence(juliet.jid, ""))

	juliet.send(`<presence to='` + rBare + `' type='subscribe'/>`)
	romeo.nextWhere("subscribe from juliet", isPresence(jBare, "subscribe"))
	romeo.send(`<presence to='` + jBare + `' type='subscribed'/>`)
	juliet.nextWhere("subscribed from romeo", isPresence(rBare, "subscribed"))
	juliet.nextWhere("romeo's presence", isPresence(romeo.jid, ""))
}

// TestS2SIdle: idle s2s streams close after S2SIdleTimeout, both ways,
// and the next stanza opens a new one.
func TestS2SIdle(t *testing.T) {
	a, b := federation(t, false, func(hc *hostConfig) {
		hc.tweak = func(o *Options) { o.S2SIdleTimeout = 300 * time.Millisecond }
	})
	romeo := a.login("romeo", "r-pw", "orchard")
	juliet := b.login("juliet", "j-pw", "balcony")
	juliet.send(`<presence/>`)
	juliet.sync()
	for i, id := range []string{"i1", "i2"} {
		romeo.send(`<message to='juliet@capulets.example.com/balcony' type='chat' id='` + id + `'><body>x</body></message>`)
		if got := juliet.nextWhere(id, isMessage(id)); got.attr("type") == "error" {
			t.Fatalf("got %+v", got)
		}
		if i > 0 {
			break
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			b.srv.mu.Lock()
			in := len(b.srv.s2sConns)
			b.srv.mu.Unlock()
			if in == 0 && a.linkAuth(capulets) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("s2s streams still open after idle timeout: %d inbound at capulets, outbound %q", in, a.linkAuth(capulets))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestS2SUnresolvable: domains DNS knows nothing about, or whose s2s
// service is disabled, bounce with remote-server-not-found; domains the
// federation policy refuses bounce with not-allowed without any traffic.
func TestS2SUnresolvable(t *testing.T) {
	dns := testenv.DNSMasq(t, "127.0.0.7",
		"srv-host=_xmpp-server._tcp.none.example.com", // target ".": no service
		"local=/example.com/",
	)
	res, err := addressing.NewResolver(addressing.ResolverConfig{Server: dns.Addr})
	if err != nil {
		t.Fatal(err)
	}
	a := startHost(t, hostConfig{domain: montague, ip: "127.0.0.2", resolver: res, tweak: func(o *Options) {
		o.AllowDomain = func(d string) bool { return d != "banned.example.com" }
	}})
	a.addUser("romeo", "r-pw")
	romeo := a.login("romeo", "r-pw", "orchard")
	for _, tc := range []struct{ domain, want string }{
		{"nxdomain.example.com", "remote-server-not-found"},
		{"none.example.com", "remote-server-not-found"},
		{"banned.example.com", "not-allowed"},
	} {
		id := "x-" + tc.domain
		romeo.send(`<message to='someone@` + tc.domain + `' type='chat' id='` + id + `'><body>hello?</body></message>`)
		got := romeo.nextWhere("bounce", isMessage(id))
		if got.attr("type") != "error" || got.errorCondition() != tc.want {
			t.Errorf("%s: got %+v, want %s", tc.domain, got, tc.want)
		}
	}
	if n := dns.QueryCount(t, "SRV", "_xmpp-server._tcp.nxdomain.example.com"); n == 0 {
		t.Errorf("nxdomain.example.com was never looked up")
	}
	if n := dns.QueryCount(t, "SRV", "_xmpp-server._tcp.banned.example.com"); n != 0 {
		t.Errorf("banned domain was looked up %d times", n)
	}
}

func TestToServerNS(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<message to='a@b'><body>x</body></message>`, `<message to='a@b'><body>x</body></message>`},
		{`<message xmlns='jabber:client' to='a@b'/>`, `<message xmlns='jabber:server' to='a@b'/>`},
		{`<iq xmlns="jabber:client" id='1'><q xmlns='jabber:client'/></iq>`, `<iq xmlns='jabber:server' id='1'><q xmlns='jabber:client'/></iq>`},
		{`<message><body>xmlns='jabber:client'</body></message>`, `<message><body>xmlns='jabber:client'</body></message>`},
	} {
		if got := string(toServerNS([]byte(tc.in))); got != tc.want {
			t.Errorf("toServerNS(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestS2SFeaturesDecode(t *testing.T) {
	for _, tc := range []struct {
		raw                string
		tls, ext, dialback bool
	}{
		// Prosody 0.12.3 before TLS, after TLS with a trusted certificate,
		// and with an untrusted one.
		{`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`, true, false, true},
		{`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`, false, true, true},
		{`<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`, false, false, true},
		{`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`, false, false, false},
		{`<stream:features/>`, false, false, false},
	} {
		var f s2sFeatures
		if err := decodeElement([]byte(tc.raw), &f); err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if (f.StartTLS != nil) != tc.tls || f.external() != tc.ext || (f.Dialback != nil) != tc.dialback {
			t.Errorf("%s: starttls %v external %v dialback %v", tc.raw, f.StartTLS != nil, f.external(), f.Dialback != nil)
		}
	}
}
