package xmppside

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// fuzzConn feeds fixed input and discards output.
type fuzzConn struct{ r *bytes.Reader }

func (c fuzzConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c fuzzConn) Close() error                     { return nil }
func (c fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)} }
func (c fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 1} }
func (c fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzS2SInbound runs what a peer sends on an authenticated inbound s2s
// stream (montague.example.net -> capulets.example.com) through the
// stream's element handling: it must never panic, and must end with an
// error or the end of input.
func FuzzS2SInbound(f *testing.F) {
	for _, s := range []string{
		`<message from='romeo@montague.example.net/x' to='juliet@capulets.example.com' type='chat' id='1'><body>hi</body><thread>t</thread></message>`,
		`<message from='romeo@evil.example' to='juliet@capulets.example.com'/>`,
		`<presence from='romeo@montague.example.net' to='juliet@capulets.example.com' type='subscribe'/>`,
		`<iq from='montague.example.net' to='capulets.example.com' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`,
		`<db:verify from='montague.example.net' to='capulets.example.com' id='abc'>0123</db:verify>`,
		`<db:result from='other.example' to='capulets.example.com'>0123</db:result>`,
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`,
		`<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
		`</stream:stream>`,
		`<message from='a@montague.example.net' to='b@capulets.example.com' xmlns='jabber:client'><body>&amp;&#x41;</body></message>`,
	} {
		f.Add([]byte(s))
	}
	db := openStore(f, filepath.Join(f.TempDir(), "fuzz.db"))
	id := newIdentity(f, capulets, net.ParseIP("127.0.0.3"))
	srv, err := New(Options{Domains: []string{capulets}, Users: db, Rosters: db, Offline: db,
		TLS: tlsConfigFor(id), DialbackSecret: []byte("fuzz secret"), S2SConnectTimeout: 50 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := srv.newS2SIn(fuzzConn{bytes.NewReader(in)})
		c.wire.secure = true
		c.wire.prefixes = map[string]string{"stream": nsStream, "db": nsDialback}
		c.wire.sr.header = true
		c.wire.sr.streamPrefix = "stream"
		c.wire.sr.arm()
		c.ourDomain = capulets
		c.authorize(montague, capulets, "test")
		if err := c.loop(context.Background()); err == nil {
			t.Fatal("loop ended without an error")
		}
	})
}
