package dialback_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umpp/umpp/internal/certs"
	"github.com/umpp/umpp/xmppside/dialback"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// rawStream is an XML stream over a TLS connection, written and read by
// hand: it stands for the s2s code that will use the drivers.
type rawStream struct {
	conn *tls.Conn
	dec  *xml.Decoder
	enc  *xml.Encoder
}

func newRawStream(c *tls.Conn) *rawStream {
	return &rawStream{conn: c, dec: xml.NewDecoder(c), enc: xml.NewEncoder(c)}
}

func (s *rawStream) Token() (xml.Token, error)         { return s.dec.Token() }
func (s *rawStream) EncodeToken(t xml.Token) error     { return s.enc.EncodeToken(t) }
func (s *rawStream) Flush() error                      { return s.enc.Flush() }
func (s *rawStream) SetReadDeadline(t time.Time) error { return s.conn.SetReadDeadline(t) }

func (s *rawStream) open(from, to, id string) error {
	idAttr := ""
	if id != "" {
		idAttr = fmt.Sprintf(" id='%s'", id)
	}
	_, err := fmt.Fprintf(s.conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "+
		"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "+
		"from='%s' to='%s' version='1.0'%s>", from, to, idAttr)
	return err
}

// readHeader returns the from and id attributes of the peer's stream header.
func (s *rawStream) readHeader() (from, id string, err error) {
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return "", "", err
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Local != "stream" || st.Name.Space != stream.NS {
				return "", "", fmt.Errorf("got <%s> instead of a stream header", st.Name.Local)
			}
			for _, a := range st.Attr {
				switch a.Name.Local {
				case "from":
					from = a.Value
				case "id":
					id = a.Value
				}
			}
			return from, id, nil
		}
	}
}

func (s *rawStream) streamError(cond string) {
	fmt.Fprintf(s.conn, "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>", cond)
}

type tlsWorld struct {
	pool  *x509.CertPool
	certs map[string]tls.Certificate
}

func newTLSWorld(t *testing.T, domains ...string) *tlsWorld {
	t.Helper()
	w := &tlsWorld{pool: x509.NewCertPool(), certs: map[string]tls.Certificate{}}
	for _, d := range domains {
		certPEM, keyPEM, err := certs.Generate([]string{d}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if !w.pool.AppendCertsFromPEM(certPEM) {
			t.Fatal("bad PEM")
		}
		w.certs[d] = c
	}
	return w
}

// server is a listening XMPP server of the test: it answers stream headers,
// advertises the dialback feature and hands each stream to handle.
type server struct {
	domain string
	addr   string
	wg     sync.WaitGroup
}

func startServer(t *testing.T, ctx context.Context, w *tlsWorld, domain, ip string,
	handle func(ctx context.Context, s *rawStream, peerFrom, id string)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s (loopback alias missing?): %v", ip, err)
	}
	srv := &server{domain: domain, addr: ln.Addr().String()}
	cfg := &tls.Config{Certificates: []tls.Certificate{w.certs[domain]}, MinVersion: tls.VersionTLS12}
	var conns sync.Map
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			srv.wg.Add(1)
			go func() {
				defer srv.wg.Done()
				defer c.Close()
				tc := tls.Server(c, cfg)
				s := newRawStream(tc)
				from, _, err := s.readHeader()
				if err != nil {
					return
				}
				id := rand.Text()
				if err := s.open(domain, from, id); err != nil {
					return
				}
				if _, err := io.WriteString(tc, "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"); err != nil {
					return
				}
				handle(ctx, s, from, id)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		srv.wg.Wait()
	})
	return srv
}

// dialStream connects from localIP to addr, checks the server certificate
// for tlsName, opens a stream and reads the dialback feature.
func dialStream(t *testing.T, ctx context.Context, w *tlsWorld, localIP, addr, tlsName, from, to string) (*rawStream, string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(func() { c.Close() })
	tc := tls.Client(c, &tls.Config{ServerName: tlsName, RootCAs: w.pool, MinVersion: tls.VersionTLS12})
	s := newRawStream(tc)
	if err := s.open(from, to, ""); err != nil {
		return nil, "", err
	}
	_, id, err := s.readHeader()
	if err != nil {
		return nil, "", err
	}
	start, err := dialback.NextElement(s)
	if err != nil {
		return nil, "", err
	}
	if start.Name.Local != "features" {
		return nil, "", fmt.Errorf("got <%s>, want features", start.Name.Local)
	}
	feat, err := dialback.NextElement(s)
	if err != nil {
		return nil, "", err
	}
	info, err := dialback.DecodeFeature(s, feat)
	if err != nil {
		return nil, "", err
	}
	if !info.Errors {
		return nil, "", errors.New("server did not advertise dialback errors")
	}
	if _, err := s.Token(); err != nil { // </stream:features>
		return nil, "", err
	}
	return s, id, nil
}

type outcome struct {
	authorized bool
	err        error
}

// federation is A (a.example, 127.0.0.2) and B (b.example, 127.0.0.3): A's
// listener is its authoritative server, B's listener is a receiving server
// that calls A back from 127.0.0.3.
type federation struct {
	w        *tlsWorld
	a, b     *server
	secretA  []byte
	verifies atomic.Int64 // db:verify requests A's authority answered
	results  chan outcome // what B decided about each db:result
	receiver *dialback.Receiver
}

func newFederation(t *testing.T) *federation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &federation{
		w:       newTLSWorld(t, "a.example", "b.example"),
		secretA: []byte("secret of a.example, 32 bytes.."),
		results: make(chan outcome, 8),
	}
	auth := &dialback.Authority{Secret: f.secretA, Hosts: func(d string) bool { return d == "a.example" }}
	f.a = startServer(t, ctx, f.w, "a.example", "127.0.0.2", func(ctx context.Context, s *rawStream, _, _ string) {
		for {
			start, err := dialback.NextElement(s)
			if err != nil {
				return
			}
			el, err := dialback.Decode(s, start)
			if err != nil || el.Kind != dialback.Verify {
				s.streamError("not-authorized")
				return
			}
			f.verifies.Add(1)
			if err := auth.HandleVerify(s, el); err != nil {
				return
			}
		}
	})
	f.receiver = &dialback.Receiver{
		Hosts:   func(d string) bool { return d == "b.example" },
		Timeout: 5 * time.Second,
		Logger:  slog.New(slog.DiscardHandler),
		Dial: func(ctx context.Context, domain string) (dialback.Verifier, error) {
			// The test's DNS: only a.example resolves.
			if domain != "a.example" {
				return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
			}
			s, _, err := dialStream(t, ctx, f.w, "127.0.0.3", f.a.addr, "a.example", "b.example", "a.example")
			if err != nil {
				return nil, err
			}
			return dialback.NewStreamVerifier(s), nil
		},
	}
	f.b = startServer(t, ctx, f.w, "b.example", "127.0.0.3", func(ctx context.Context, s *rawStream, peerFrom, id string) {
		start, err := dialback.NextElement(s)
		if err != nil {
			f.results <- outcome{err: err}
			return
		}
		el, err := dialback.Decode(s, start)
		if err != nil {
			f.results <- outcome{err: err}
			s.streamError("invalid-xml")
			return
		}
		ok, err := f.receiver.HandleResult(ctx, s, el, id, peerFrom)
		f.results <- outcome{authorized: ok, err: err}
		if errors.Is(err, dialback.ErrInvalidFrom) {
			s.streamError("invalid-from")
			return
		}
		// Keep the stream open until the peer closes it.
		_, _ = s.Token()
	})
	return f
}

func TestDialbackExchange(t *testing.T) {
	f := newFederation(t)
	tests := []struct {
		name         string
		localIP      string // where the originating connection comes from
		streamFrom   string // from of its stream header
		from, to     string // of its db:result
		secret       []byte // what it computes its key with
		wantErr      error  // what Originate returns
		wantAuth     bool   // what B decided
		wantBErr     error
		wantVerifies int64 // callbacks to A's authority
	}{
		{name: "valid", localIP: "127.0.0.2", streamFrom: "a.example", from: "a.example", to: "b.example",
			secret: f.secretA, wantAuth: true, wantVerifies: 1},
		{name: "wrong secret", localIP: "127.0.0.2", streamFrom: "a.example", from: "a.example", to: "b.example",
			secret: []byte("secret a.example had before restart"), wantErr: dialback.ErrInvalid, wantVerifies: 1},
		// An attacker at another address claims to be a.example; B calls the
		// real a.example back, which does not know the key.
		{name: "spoofed from", localIP: "127.0.0.4", streamFrom: "a.example", from: "a.example", to: "b.example",
			secret: []byte("attacker's guess"), wantErr: dialback.ErrInvalid, wantVerifies: 1},
		// db:result for a domain other than the stream's: refused without a
		// callback, the stream is closed with <invalid-from/>.
		{name: "from differs from stream header", localIP: "127.0.0.4", streamFrom: "m.example", from: "a.example", to: "b.example",
			secret: f.secretA, wantErr: stream.InvalidFrom, wantBErr: dialback.ErrInvalidFrom},
		{name: "originating domain does not resolve", localIP: "127.0.0.4", streamFrom: "nowhere.example", from: "nowhere.example", to: "b.example",
			secret: f.secretA, wantErr: &dialback.Error{Condition: dialback.ConditionRemoteServerNotFound}},
		{name: "target not hosted", localIP: "127.0.0.2", streamFrom: "a.example", from: "a.example", to: "c.example",
			secret: f.secretA, wantErr: &dialback.Error{Condition: dialback.ConditionItemNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before := f.verifies.Load()
			s, id, err := dialStream(t, ctx, f.w, tc.localIP, f.b.addr, "b.example", tc.streamFrom, tc.to)
			if err != nil {
				t.Fatalf("connect to B: %v", err)
			}
			key := dialback.Key(tc.secret, tc.to, tc.from, id)
			err = dialback.Originate(ctx, s, dialback.Element{From: tc.from, To: tc.to, Key: key})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Originate: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Originate error %v, want %v", err, tc.wantErr)
			}
			var got outcome
			select {
			case got = <-f.results:
			case <-ctx.Done():
				t.Fatal("B decided nothing")
			}
			if got.authorized != tc.wantAuth {
				t.Errorf("B authorized = %v, want %v", got.authorized, tc.wantAuth)
			}
			if tc.wantBErr != nil && !errors.Is(got.err, tc.wantBErr) || tc.wantBErr == nil && got.err != nil {
				t.Errorf("B error %v, want %v", got.err, tc.wantBErr)
			}
			if n := f.verifies.Load() - before; n != tc.wantVerifies {
				t.Errorf("A's authority answered %d db:verify, want %d", n, tc.wantVerifies)
			}
		})
	}
}

func TestOriginateCanceled(t *testing.T) {
	w := newTLSWorld(t, "b.example")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// B never answers.
	srv := startServer(t, ctx, w, "b.example", "127.0.0.3", func(ctx context.Context, s *rawStream, _, _ string) {
		_, _ = io.Copy(io.Discard, s.conn)
	})
	s, _, err := dialStream(t, ctx, w, "127.0.0.2", srv.addr, "b.example", "a.example", "b.example")
	if err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer ocancel()
	start := time.Now()
	err = dialback.Originate(octx, s, dialback.Element{From: "a.example", To: "b.example", Key: "k"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Originate = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Originate returned after %v", d)
	}
}

// TestMelliumFeatures runs dialback as mellium stream features: A opens a
// mellium s2s session to B with OriginatingFeature, B receives it with
// ReceivingFeature and calls A's authority back.
func TestMelliumFeatures(t *testing.T) {
	f := newFederation(t)
	// A second B listener, this one speaking through mellium.
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.3: %v", err)
	}
	t.Cleanup(func() { ln.Close() })

	for _, tc := range []struct {
		name     string
		secret   []byte
		wantAuth bool
	}{
		{"valid", f.secretA, true},
		{"wrong secret", []byte("not a's secret"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			type recv struct {
				s   *xmpp.Session
				err error
			}
			got := make(chan recv, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- recv{err: err}
					return
				}
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{f.w.certs["b.example"]}})
				// Mellium v0.23.0's ReceiveSession refuses an s2s stream
				// header with a from ("stream origin a.example does not
				// match previously set origin"), so the origin is given.
				s, err := xmpp.NewSession(ctx, jid.MustParse("b.example"), jid.MustParse("a.example"), tc,
					xmpp.Received|xmpp.S2S, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
						return xmpp.StreamConfig{Features: []xmpp.StreamFeature{dialback.ReceivingFeature(f.receiver, nil)}}
					}))
				if err != nil {
					c.Close()
				}
				got <- recv{s, err}
			}()

			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tlsC := tls.Client(c, &tls.Config{ServerName: "b.example", RootCAs: f.w.pool})
			as, aerr := xmpp.NewServerSession(ctx, jid.MustParse("b.example"), jid.MustParse("a.example"), tlsC,
				dialback.OriginatingFeature(tc.secret))
			if aerr == nil {
				defer as.Close()
			}
			var r recv
			select {
			case r = <-got:
			case <-ctx.Done():
				t.Fatal("B's session did not finish negotiating")
			}
			if r.s != nil {
				defer r.s.Close()
			}
			if !tc.wantAuth {
				if aerr == nil || !errors.Is(aerr, dialback.ErrInvalid) {
					t.Errorf("A's session error = %v, want ErrInvalid", aerr)
				}
				if r.err == nil {
					t.Errorf("B accepted a session with a bad key")
				}
				return
			}
			if aerr != nil {
				t.Fatalf("A's session: %v (B: %v)", aerr, r.err)
			}
			if r.err != nil {
				t.Fatalf("B's session: %v", r.err)
			}
			if st := as.State(); st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
				t.Errorf("A's session state %v, want Authn|Ready", st)
			}
			if st := r.s.State(); st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
				t.Errorf("B's session state %v, want Authn|Ready", st)
			}
			if got := r.s.RemoteAddr().String(); got != "a.example" {
				t.Errorf("B sees the peer as %q, want a.example", got)
			}
		})
	}
}
