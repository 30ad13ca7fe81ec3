package saslext_test

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
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/xmppside/dialback"
	"github.com/umpp/umpp/xmppside/saslext"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

type result struct {
	s   *xmpp.Session
	err error
}

// exchange connects a mellium s2s session from a.example (127.0.0.2,
// presenting clientCert) to a receiving session of b.example (127.0.0.3)
// that lists features, and returns both outcomes.
func exchange(t *testing.T, ctx context.Context, serverCert tls.Certificate, clientCert []tls.Certificate, roots *x509.CertPool,
	serverFeatures func(*xmpp.Session) []xmpp.StreamFeature, clientFeatures ...xmpp.StreamFeature) (client, server result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.3 (loopback alias missing?): %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		tc := tls.Server(c, &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			// Ask for a certificate; saslext verifies it.
			ClientAuth: tls.RequestClientCert,
			MinVersion: tls.VersionTLS12,
		})
		// Mellium v0.23.0's ReceiveSession refuses an s2s stream header with
		// a from, so the expected origin is given.
		s, err := xmpp.NewSession(ctx, jid.MustParse("b.example"), jid.MustParse("a.example"), tc,
			xmpp.Received|xmpp.S2S, xmpp.NewNegotiator(func(s *xmpp.Session, _ *xmpp.StreamConfig) xmpp.StreamConfig {
				if s == nil {
					return xmpp.StreamConfig{}
				}
				return xmpp.StreamConfig{Features: serverFeatures(s)}
			}))
		if err != nil {
			c.Close()
		} else {
			t.Cleanup(func() { s.Close(); c.Close() })
		}
		got <- result{s, err}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := tls.Client(c, &tls.Config{ServerName: "b.example", RootCAs: roots, Certificates: clientCert, MinVersion: tls.VersionTLS12})
	cs, cerr := xmpp.NewServerSession(ctx, jid.MustParse("b.example"), jid.MustParse("a.example"), tc, clientFeatures...)
	if cerr == nil {
		t.Cleanup(func() { cs.Close() })
	} else {
		// The receiving side waits for more; hang up as a failing peer would.
		c.Close()
	}
	select {
	case server = <-got:
	case <-ctx.Done():
		t.Fatal("receiving session did not finish")
	}
	return result{cs, cerr}, server
}

// rawServer accepts one connection on ln as b.example and runs the raw
// EXTERNAL driver on it; on success it restarts the stream and sends an
// empty feature list, as a receiving server does.
func rawServer(t *testing.T, ln net.Listener, cert tls.Certificate, roots *x509.CertPool) <-chan error {
	return rawServerAfterAuth(t, ln, cert, roots, "<stream:features/>")
}

// rawServerAfterAuth is rawServer with the given feature list after
// authentication.
func rawServerAfterAuth(t *testing.T, ln net.Listener, cert tls.Certificate, roots *x509.CertPool, after string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})
			s := &rawStream{dec: xml.NewDecoder(tc), enc: xml.NewEncoder(tc), w: tc}
			from, err := s.header()
			if err != nil {
				return err
			}
			if err := s.open("b.example", from, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>"); err != nil {
				return err
			}
			if err := saslext.Negotiate(s, tc.ConnectionState(), from, roots); err != nil {
				return err
			}
			// Restart: a new decoder for the new stream.
			s.dec = xml.NewDecoder(tc)
			if _, err := s.header(); err != nil {
				return err
			}
			if err := s.open("b.example", from, after); err != nil {
				return err
			}
			_, _ = s.dec.Token() // until the peer hangs up
			return nil
		}()
	}()
	return done
}

type rawStream struct {
	dec *xml.Decoder
	enc *xml.Encoder
	w   io.Writer
}

func (s *rawStream) Token() (xml.Token, error)     { return s.dec.Token() }
func (s *rawStream) EncodeToken(t xml.Token) error { return s.enc.EncodeToken(t) }
func (s *rawStream) Flush() error                  { return s.enc.Flush() }

func (s *rawStream) open(from, to, features string) error {
	_, err := fmt.Fprintf(s.w, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "+
		"xmlns:stream='http://etherx.jabber.org/streams' from='%s' to='%s' version='1.0' id='%s'>%s",
		from, to, rand.Text(), features)
	return err
}

func (s *rawStream) header() (from string, err error) {
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return "", err
		}
		if st, ok := tok.(xml.StartElement); ok {
			for _, a := range st.Attr {
				if a.Name.Local == "from" {
					return a.Value, nil
				}
			}
			return "", nil
		}
	}
}

// TestExternalNegotiation: a mellium initiating session with ClientFeature
// against the raw receiving driver, over TLS on loopback.
func TestExternalNegotiation(t *testing.T) {
	root := newCA(t, "federation root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	_, bCert := root.issue(t, leafOpts{dns: []string{"b.example"}})
	_, aCert := root.issue(t, leafOpts{xmpp: []string{"a.example"}})
	_, mCert := root.issue(t, leafOpts{dns: []string{"m.example"}})

	const prosodyAfterAuth = "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>" +
		"<c xmlns='http://jabber.org/protocol/caps' ver='x' node='http://prosody.im' hash='sha-1'/></stream:features>"
	tests := []struct {
		name       string
		clientCert []tls.Certificate
		authzid    string
		after      string // features after authentication
		wantErr    error  // from the receiving side
		wantFail   string // failure condition the initiating side sees
	}{
		{"certificate for a.example", []tls.Certificate{aCert}, "a.example", "<stream:features/>", nil, ""},
		// What Prosody 0.12 lists after EXTERNAL; dialback.ReadyFeature
		// lets mellium finish.
		{"Prosody's features after authentication", []tls.Certificate{aCert}, "a.example", prosodyAfterAuth, nil, ""},
		{"certificate for another domain", []tls.Certificate{mCert}, "a.example", "", saslext.ErrRefused, "not-authorized"},
		{"no client certificate", nil, "a.example", "", saslext.ErrNoCertificate, "not-authorized"},
		{"authzid of another domain", []tls.Certificate{aCert}, "b.example", "", saslext.ErrInvalidAuthzid, "invalid-authzid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ln, err := net.Listen("tcp", "127.0.0.3:0")
			if err != nil {
				t.Skipf("cannot listen on 127.0.0.3 (loopback alias missing?): %v", err)
			}
			defer ln.Close()
			done := rawServerAfterAuth(t, ln, bCert, roots, tc.after)

			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tlsC := tls.Client(c, &tls.Config{ServerName: "b.example", RootCAs: roots, Certificates: tc.clientCert})
			cs, cerr := xmpp.NewServerSession(ctx, jid.MustParse("b.example"), jid.MustParse("a.example"), tlsC,
				xmpp.SASL(tc.authzid, "", saslext.External()), dialback.ReadyFeature())
			if cerr == nil {
				if st := cs.State(); st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
					t.Errorf("initiating session state %v, want Authn and Ready", st)
				}
				cs.Close()
			}
			c.Close()
			var serr error
			select {
			case serr = <-done:
			case <-ctx.Done():
				t.Fatal("receiving side did not finish")
			}
			if tc.wantFail == "" {
				if cerr != nil || serr != nil {
					t.Fatalf("initiating side: %v; receiving side: %v", cerr, serr)
				}
				return
			}
			if cerr == nil || !strings.Contains(cerr.Error(), tc.wantFail) {
				t.Errorf("initiating side error = %v, want %s", cerr, tc.wantFail)
			}
			if !errors.Is(serr, saslext.ErrRefused) || !errors.Is(serr, tc.wantErr) {
				t.Errorf("receiving side error = %v, want ErrRefused and %v", serr, tc.wantErr)
			}
		})
	}
}

// TestRawAuthenticate: the raw initiating driver against the raw receiving
// driver.
func TestRawAuthenticate(t *testing.T) {
	root := newCA(t, "federation root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	_, bCert := root.issue(t, leafOpts{dns: []string{"b.example"}})
	_, aCert := root.issue(t, leafOpts{srv: []string{"_xmpp-server.a.example"}})
	_, mCert := root.issue(t, leafOpts{dns: []string{"m.example"}})
	for _, tc := range []struct {
		name     string
		cert     tls.Certificate
		wantFail string
	}{
		{"valid", aCert, ""},
		{"wrong domain", mCert, "not-authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.3:0")
			if err != nil {
				t.Skipf("cannot listen on 127.0.0.3: %v", err)
			}
			defer ln.Close()
			done := rawServer(t, ln, bCert, roots)
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tlsC := tls.Client(c, &tls.Config{ServerName: "b.example", RootCAs: roots, Certificates: []tls.Certificate{tc.cert}})
			s := &rawStream{dec: xml.NewDecoder(tlsC), enc: xml.NewEncoder(tlsC), w: tlsC}
			if err := s.open("a.example", "b.example", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := s.header(); err != nil {
				t.Fatal(err)
			}
			// Skip <stream:features> and <mechanisms>, up to <mechanism>EXTERNAL</mechanism>.
			for {
				tok, err := s.Token()
				if err != nil {
					t.Fatal(err)
				}
				if end, ok := tok.(xml.EndElement); ok && end.Name.Local == "features" {
					break
				}
			}
			err = saslext.Authenticate(s, "a.example")
			var f *saslext.Failure
			switch {
			case tc.wantFail == "" && err != nil:
				t.Fatalf("Authenticate: %v", err)
			case tc.wantFail != "" && (!errors.As(err, &f) || f.Condition != tc.wantFail):
				t.Fatalf("Authenticate = %v, want failure %s", err, tc.wantFail)
			}
			if err == nil {
				// Restart the stream, as RFC 6120 §6.4.6 requires.
				s.dec = xml.NewDecoder(tlsC)
				if err := s.open("a.example", "b.example", ""); err != nil {
					t.Fatal(err)
				}
				if _, err := s.header(); err != nil {
					t.Fatalf("restarted stream: %v", err)
				}
			}
			c.Close()
			serr := <-done
			if (serr == nil) != (tc.wantFail == "") {
				t.Errorf("receiving side: %v", serr)
			}
		})
	}
}

// TestServerFeatureRefuses: the mellium receiving feature refuses a
// certificate for another domain.
func TestServerFeatureRefuses(t *testing.T) {
	root := newCA(t, "federation root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	_, bCert := root.issue(t, leafOpts{dns: []string{"b.example"}})
	_, mCert := root.issue(t, leafOpts{dns: []string{"m.example"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, server := exchange(t, ctx, bCert, []tls.Certificate{mCert}, roots,
		func(*xmpp.Session) []xmpp.StreamFeature {
			return []xmpp.StreamFeature{saslext.ServerFeature(saslext.ServerConfig{Roots: roots, Logger: slog.New(slog.DiscardHandler)})}
		},
		saslext.ClientFeature("a.example"))
	if client.err == nil || !strings.Contains(client.err.Error(), "not-authorized") {
		t.Errorf("initiating side error = %v, want a not-authorized failure", client.err)
	}
	if !errors.Is(server.err, saslext.ErrRefused) {
		t.Errorf("receiving side error = %v, want ErrRefused", server.err)
	}
}

// TestOfferable: the receiving side lists EXTERNAL only when the peer's
// certificate verifies for its stream's from, and dialback always, so a
// peer with a bad certificate goes straight to dialback (what Prosody with
// s2s_secure_auth = false does).
func TestOfferable(t *testing.T) {
	root := newCA(t, "federation root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	_, bCert := root.issue(t, leafOpts{dns: []string{"b.example"}})
	_, aCert := root.issue(t, leafOpts{srv: []string{"_xmpp-server.a.example"}})
	_, mCert := root.issue(t, leafOpts{dns: []string{"m.example"}})
	quiet := slog.New(slog.DiscardHandler)
	secret := []byte("a.example's dialback secret.....")

	// a.example's authoritative server, answering in-process: the Verifier
	// is the Authority itself (dialback's own tests cover the network path).
	auth := &dialback.Authority{Secret: secret, Hosts: func(d string) bool { return d == "a.example" }}
	rc := &dialback.Receiver{
		Hosts:  func(d string) bool { return d == "b.example" },
		Logger: quiet,
		Dial: func(ctx context.Context, domain string) (dialback.Verifier, error) {
			if domain != "a.example" {
				return nil, errors.New("unknown domain")
			}
			return verifierFunc(func(_ context.Context, req dialback.Element) (dialback.Element, error) {
				return auth.Answer(req), nil
			}), nil
		},
	}
	features := func(s *xmpp.Session) []xmpp.StreamFeature {
		f := []xmpp.StreamFeature{dialback.ReceivingFeature(rc, nil)}
		if saslext.Offerable(s, roots) {
			f = append(f, saslext.ServerFeature(saslext.ServerConfig{Roots: roots, Logger: quiet}))
		}
		return f
	}
	for _, tc := range []struct {
		name         string
		cert         tls.Certificate
		wantExternal bool
	}{
		{"valid certificate", aCert, true},
		{"certificate for another domain", mCert, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The initiating side uses dialback: after a successful
			// EXTERNAL, mellium v0.23.0's receiving side would wait for a
			// feature selection that never comes (see ServerFeature).
			client, server := exchange(t, ctx, bCert, []tls.Certificate{tc.cert}, roots, features,
				dialback.OriginatingFeature(secret))
			if client.err != nil {
				t.Fatalf("initiating side: %v (receiving: %v)", client.err, server.err)
			}
			if server.err != nil {
				t.Fatalf("receiving side: %v", server.err)
			}
			if st := server.s.State(); st&xmpp.Authn == 0 || st&xmpp.Ready == 0 {
				t.Errorf("receiving session state %v, want Authn and Ready", st)
			}
			if _, listed := client.s.Feature(saslext.NS); listed != tc.wantExternal {
				t.Errorf("EXTERNAL listed = %v, want %v", listed, tc.wantExternal)
			}
		})
	}
}

type verifierFunc func(context.Context, dialback.Element) (dialback.Element, error)

func (f verifierFunc) Verify(ctx context.Context, req dialback.Element) (dialback.Element, error) {
	return f(ctx, req)
}
