package xmppside

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/umpp/umpp/internal/certs"
	"github.com/umpp/umpp/internal/testenv"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

const testDomain = "example.test"

// testEnv is a running server on loopback with a SQLite file and a
// self-signed certificate.
type testEnv struct {
	t         testing.TB
	db        *sqlite.DB
	serverTLS *tls.Config
	clientTLS *tls.Config
	srv       *Server
	c2s       string
	direct    string
	stop      func()
}

func newTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{testDomain}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatalf("generate certificate: %v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("key pair: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("certificate not added to pool")
	}
	server = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }}
	client = &tls.Config{RootCAs: pool, ServerName: testDomain}
	return server, client
}

// newEnv opens a fresh database and starts a server. tweak may change the
// options before New.
func newEnv(t testing.TB, tweak func(*Options)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, db: openStore(t, filepath.Join(t.TempDir(), "umpp.db"))}
	e.serverTLS, e.clientTLS = newTLS(t)
	e.start(tweak)
	return e
}

// openStore opens the SQLite store at path until the test ends.
func openStore(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func (e *testEnv) start(tweak func(*Options)) {
	t := e.t
	t.Helper()
	opts := Options{
		Domains:          []string{testDomain},
		Users:            e.db,
		Rosters:          e.db,
		Offline:          e.db,
		TLS:              e.serverTLS,
		HandshakeTimeout: 10 * time.Second,
		Logger:           slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Listen([]string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	c2s, direct := srv.Addrs()
	e.srv, e.c2s, e.direct = srv, c2s[0].String(), direct[0].String()
	e.stop = serve(t, srv)
}

// serve runs srv until the returned stop is called, at the latest when
// the test ends; stop reports Serve's error, and may be called again.
func serve(t testing.TB, srv *Server) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// testWriter sends server logs to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *testEnv) addUser(local, password string) {
	e.t.Helper()
	cr, err := store.DeriveCredentials(local, testDomain, password)
	if err != nil {
		e.t.Fatalf("derive credentials: %v", err)
	}
	err = e.db.CreateUser(context.Background(), store.User{JID: local + "@" + testDomain, Credentials: cr, Created: time.Now()})
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
}

// node is any XML element, decoded generically for assertions.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []node     `xml:",any"`
}

func (n node) attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local && (a.Name.Space == "" || local == "lang") {
			return a.Value
		}
	}
	return ""
}

func (n node) child(local string) (node, bool) {
	for _, c := range n.Children {
		if c.XMLName.Local == local {
			return c, true
		}
	}
	return node{}, false
}

// errorCondition returns the stanza error condition of an error stanza.
func (n node) errorCondition() string {
	e, ok := n.child("error")
	if !ok {
		return ""
	}
	for _, c := range e.Children {
		if c.XMLName.Space == nsStanzas && c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return ""
}

// client is a mellium XMPP client logged in to the test server.
type client struct {
	t    testing.TB
	jid  string // bound full JID
	s    *xmpp.Session
	in   chan node
	done chan error
}

type loginOpts struct {
	direct   bool
	mech     sasl.Mechanism
	resource string
}

// login connects with mellium's client side (STARTTLS unless direct),
// authenticates and binds.
func (e *testEnv) login(user, password string, lo loginOpts) (*client, error) {
	if lo.mech.Name == "" {
		lo.mech = sasl.ScramSha256
	}
	origin, err := jid.New(user, testDomain, lo.resource)
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	feats := []xmpp.StreamFeature{}
	if lo.direct {
		nc, err = tls.Dial("tcp", e.direct, e.clientTLS)
	} else {
		nc, err = net.Dial("tcp", e.c2s)
		feats = append(feats, xmpp.StartTLS(e.clientTLS))
	}
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	feats = append(feats, xmpp.SASL("", password, lo.mech), bindResource(lo.resource))
	s, err := testenv.XMPPClientSession(nc, origin, 10*time.Second, feats...)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return serveClient(e.t, s), nil
}

// serveClient reads the logged-in session s until it ends: it answers
// iq get and set (roster pushes, server queries) with an empty result
// and queues every stanza for next and nextWhere. The session is closed
// when the test ends.
func serveClient(t testing.TB, s *xmpp.Session) *client {
	c := &client{t: t, jid: s.LocalAddr().String(), s: s, in: make(chan node, 1000), done: make(chan error, 1)}
	go func() {
		c.done <- s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var n node
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
			if err := d.Decode(&n); err != nil {
				return err
			}
			if start.Name.Local == "iq" && (n.attr("type") == "get" || n.attr("type") == "set") {
				reply := fmt.Sprintf("<iq type='result' id='%s' to='%s'/>", n.attr("id"), n.attr("from"))
				if n.attr("from") == "" {
					reply = fmt.Sprintf("<iq type='result' id='%s'/>", n.attr("id"))
				}
				// mellium serializes the handler's writes with Send.
				if _, err := xmlstream.Copy(r, xml.NewDecoder(strings.NewReader(reply))); err != nil {
					return err
				}
			}
			select {
			case c.in <- n:
			default:
				c.t.Errorf("%s: inbound buffer full", c.jid)
			}
			return nil
		}))
		close(c.in)
	}()
	t.Cleanup(c.close)
	return c
}

func (e *testEnv) mustLogin(user, password, resource string) *client {
	e.t.Helper()
	c, err := e.login(user, password, loginOpts{resource: resource})
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func (c *client) close() {
	_ = c.s.Close()
	_ = c.s.Conn().Close()
}

// send writes raw XML through mellium's encoder.
func (c *client) send(raw string) {
	c.t.Helper()
	if err := testenv.XMPPSend(c.s, raw, 5*time.Second); err != nil {
		c.t.Fatalf("%s: send: %v", c.jid, err)
	}
}

// next returns the next stanza the client received, skipping presence
// when skipPresence is set.
func (c *client) next(skipPresence bool) node {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n, ok := <-c.in:
			if !ok {
				c.t.Fatalf("%s: stream ended: %v", c.jid, <-c.done)
			}
			if skipPresence && n.XMLName.Local == "presence" {
				continue
			}
			return n
		case <-timeout:
			c.t.Fatalf("%s: nothing received in 10s", c.jid)
			return node{}
		}
	}
}

// nextWhere returns the next stanza matching f, discarding others.
func (c *client) nextWhere(what string, f func(node) bool) node {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n, ok := <-c.in:
			if !ok {
				c.t.Fatalf("%s: stream ended waiting for %s: %v", c.jid, what, <-c.done)
			}
			if f(n) {
				return n
			}
		case <-timeout:
			c.t.Fatalf("%s: no %s in 10s", c.jid, what)
			return node{}
		}
	}
}

// streamEnd waits for the client's stream to end and returns the error.
func (c *client) streamEnd() error {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.in:
			if !ok {
				return <-c.done
			}
		case <-time.After(10 * time.Second):
			c.t.Fatalf("%s: stream did not end", c.jid)
		}
	}
}

// rawConn is a hand-driven client for the bad-input tests: it speaks
// bytes, so it can send what no library would.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	d  *xml.Decoder
}

func (e *testEnv) dialRaw() *rawConn {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.c2s)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { _ = nc.Close() })
	r := &rawConn{t: e.t, nc: nc}
	r.d = xml.NewDecoder(bufio.NewReader(nc))
	return r
}

func (r *rawConn) write(s string) error {
	_ = r.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(r.nc, s)
	return err
}

func (r *rawConn) mustWrite(s string) {
	r.t.Helper()
	if err := r.write(s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readHeader reads the server's stream header.
func (r *rawConn) readHeader() xml.StartElement {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := r.d.Token()
		if err != nil {
			r.t.Fatalf("read stream header: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s
		}
	}
}

// readElement reads the next top-level element, or reports the error.
func (r *rawConn) readElement() (node, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := r.d.Token()
		if err != nil {
			return node{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var n node
			if err := r.d.DecodeElement(&n, &t); err != nil {
				return node{}, err
			}
			return n, nil
		case xml.EndElement:
			return node{}, io.EOF
		}
	}
}

func (r *rawConn) mustRead(local string) node {
	r.t.Helper()
	n, err := r.readElement()
	if err != nil {
		r.t.Fatalf("waiting for <%s>: %v", local, err)
	}
	if n.XMLName.Local != local {
		r.t.Fatalf("got <%s %v>, want <%s>", n.XMLName.Local, n.Children, local)
	}
	return n
}

// streamError reads until a stream error and returns its condition.
func (r *rawConn) streamError() string {
	r.t.Helper()
	for {
		n, err := r.readElement()
		if err != nil {
			r.t.Fatalf("no stream error before %v", err)
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

const clientHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + testDomain + "' version='1.0'>"

// startTLS runs the STARTTLS exchange.
func (r *rawConn) startTLS(cfg *tls.Config) {
	r.t.Helper()
	r.mustWrite(clientHeader)
	r.readHeader()
	r.mustRead("features")
	r.mustWrite("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.mustRead("proceed")
	tc := tls.Client(r.nc, cfg)
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("tls handshake: %v", err)
	}
	r.nc = tc
	r.d = xml.NewDecoder(bufio.NewReader(tc))
}

// authPlain authenticates with PLAIN and restarts the stream.
func (r *rawConn) authPlain(user, password string) error {
	r.mustWrite(clientHeader)
	r.readHeader()
	r.mustRead("features")
	r.mustWrite("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + "</auth>")
	n, err := r.readElement()
	if err != nil {
		return err
	}
	if n.XMLName.Local != "success" {
		for _, c := range n.Children {
			return errors.New(c.XMLName.Local)
		}
		return errors.New(n.XMLName.Local)
	}
	return nil
}

// bind restarts the stream after SASL and binds a resource.
func (r *rawConn) bind(resource string) string {
	r.t.Helper()
	r.mustWrite(clientHeader)
	r.readHeader()
	r.mustRead("features")
	r.mustWrite("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
	n := r.mustRead("iq")
	b, _ := n.child("bind")
	j, _ := b.child("jid")
	return j.Text
}

// session logs in completely over STARTTLS with PLAIN.
func (e *testEnv) rawSession(user, password, resource string) *rawConn {
	e.t.Helper()
	r := e.dialRaw()
	r.startTLS(e.clientTLS)
	if err := r.authPlain(user, password); err != nil {
		e.t.Fatalf("auth: %v", err)
	}
	if got := r.bind(resource); got != user+"@"+testDomain+"/"+resource {
		e.t.Fatalf("bound %q", got)
	}
	return r
}

// bindResource is the client side of resource binding that requests a
// resource (mellium v0.23.0's BindResource sends an empty <resource/>).
func bindResource(resource string) xmpp.StreamFeature {
	f := xmpp.BindResource()
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, _ interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		w := s.TokenWriter()
		defer w.Close()
		// Built from tokens: copying a decoded document would repeat the
		// xmlns of <bind> (once from its name, once as an attribute),
		// which is not well-formed.
		var inner xml.TokenReader = xmlstream.Token(xml.CharData(nil))
		if resource != "" {
			inner = xmlstream.Wrap(xmlstream.Token(xml.CharData(resource)), xml.StartElement{Name: xml.Name{Local: "resource"}})
		}
		req := xmlstream.Wrap(
			xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "bind"}}),
			xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "set"}, {Name: xml.Name{Local: "id"}, Value: "bind-1"}}},
		)
		if _, err := xmlstream.Copy(w, req); err != nil {
			return 0, nil, err
		}
		if err := w.Flush(); err != nil {
			return 0, nil, err
		}
		r := s.TokenReader()
		defer r.Close()
		d := xml.NewTokenDecoder(r)
		var resp struct {
			Type string `xml:"type,attr"`
			JID  string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
		}
		if err := d.Decode(&resp); err != nil {
			return 0, nil, err
		}
		if resp.Type != "result" {
			return 0, nil, fmt.Errorf("bind: %s", resp.Type)
		}
		j, err := jid.Parse(resp.JID)
		if err != nil {
			return 0, nil, err
		}
		s.UpdateAddr(j)
		return xmpp.Ready, nil, nil
	}
	return f
}

// sync waits until the server has processed everything this client sent
// before: a stream is handled in order, so a ping's answer marks it.
func (c *client) sync() {
	c.t.Helper()
	c.send(`<iq type='get' id='sync-ping'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.nextWhere("ping answer", func(n node) bool { return n.attr("id") == "sync-ping" })
}
