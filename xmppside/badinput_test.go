package xmppside

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stream"
)

// checkStillServing proves the server works for others after a bad client.
func checkStillServing(t *testing.T, e *testEnv) {
	t.Helper()
	a := e.mustLogin("alice", "pw", "ok")
	a.send(`<message to='alice@example.test/ok' id='still-here'><body>x</body></message>`)
	if got := a.next(true); got.attr("id") != "still-here" {
		t.Fatalf("server stopped working: got %+v", got)
	}
}

func TestBadInputStreamErrors(t *testing.T) {
	bomb := `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>`
	for _, tc := range []struct {
		name string
		// before TLS (raw bytes as the first thing on the connection) or
		// after a full login
		preTLS bool
		send   string
		want   string
	}{
		{"entity bomb before the stream", true, bomb + strings.TrimPrefix(clientHeader, "<?xml version='1.0'?>"), "restricted-xml"},
		{"wrong domain", true, strings.Replace(clientHeader, testDomain, "other.example", 1), "host-unknown"},
		{"wrong stream namespace", true, strings.Replace(clientHeader, "jabber:client", "jabber:server", 1), "invalid-namespace"},
		{"no version", true, strings.Replace(clientHeader, "' version='1.0'>", "'>", 1), "unsupported-version"},
		{"auth before STARTTLS", true, clientHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>", "policy-violation"},
		{"malformed XML", false, "<message to='alice@example.test'><body>x</message>", "not-well-formed"},
		{"undefined entity", false, "<message to='alice@example.test'><body>&lol3;</body></message>", "not-well-formed"},
		{"DTD inside the stream", false, "<!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"},
		{"comment", false, "<!-- hi -->", "restricted-xml"},
		{"processing instruction", false, "<?php echo 1; ?>", "restricted-xml"},
		{"unknown top-level element", false, "<r xmlns='urn:xmpp:sm:3'/>", "unsupported-stanza-type"},
		{"text at stream level", false, "hello<message/>", "not-well-formed"},
		{"oversize stanza", false, "<message to='alice@example.test'><body>" + strings.Repeat("A", 10000) + "</body></message>", "policy-violation"},
		{"oversize unfinished element", false, "<message to='alice@example.test'><body>" + strings.Repeat("A", 10000), "policy-violation"},
		{"too deep", false, strings.Repeat("<a>", 100), "policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.MaxStanzaBytes = 4096 })
			e.addUser("alice", "pw")
			var r *rawConn
			if tc.preTLS {
				r = e.dialRaw()
			} else {
				r = e.rawSession("alice", "pw", "bad")
			}
			// The server may stop reading midway: a write error is fine.
			_ = r.write(tc.send)
			if tc.preTLS {
				r.readHeader()
			}
			if got := r.streamError(); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
			checkStillServing(t, e)
		})
	}
}

func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HandshakeTimeout = 3 * time.Second })
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	bob := e.mustLogin("bob", "pw", "b")

	stuck := e.dialRaw()
	stuck.mustWrite(clientHeader) // and then nothing
	stuck.readHeader()
	if got := stuck.streamError(); got != "connection-timeout" {
		t.Fatalf("stream error %q, want connection-timeout", got)
	}
	// A logged-in user is not subject to the handshake timer.
	alice := e.mustLogin("alice", "pw", "a")
	alice.send(`<message to='bob@example.test/b' id='after'><body>still fine</body></message>`)
	if got := bob.next(true); got.attr("id") != "after" {
		t.Fatalf("bob got %+v", got)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "pw")
	alice := e.mustLogin("alice", "pw", "a")
	half := e.dialRaw()
	half.mustWrite(clientHeader)
	half.readHeader()
	half.mustRead("features")

	e.stop()
	var se stream.Error
	if err := alice.streamEnd(); !errors.As(err, &se) || se.Err != "system-shutdown" {
		t.Errorf("logged-in client: %v, want system-shutdown", err)
	}
	if got := half.streamError(); got != "system-shutdown" {
		t.Errorf("negotiating client: %q, want system-shutdown", got)
	}
}

func TestFullQueueBouncesResourceConstraint(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.QueueLen = 1
		o.SendTimeout = 20 * time.Millisecond
		o.Logger = nil
	})
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	bob := e.rawSession("bob", "pw", "b") // never reads
	_ = bob
	alice := e.rawSession("alice", "pw", "a")
	big := "<message to='bob@example.test/b' id='flood'><body>" + strings.Repeat("x", 16<<10) + "</body></message>"
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if alice.write(big) != nil {
				return
			}
		}
	}()
	for {
		n, err := alice.readElement()
		if err != nil {
			t.Fatalf("no bounce: %v", err)
		}
		if n.attr("type") == "error" && n.attr("id") == "flood" {
			e, _ := n.child("error")
			if n.errorCondition() != "resource-constraint" || e.attr("type") != "wait" {
				t.Fatalf("bounce %+v, want resource-constraint of type wait", n)
			}
			return
		}
	}
}

func TestWhitespaceKeepalive(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.KeepAlive = 20 * time.Millisecond })
	e.addUser("alice", "pw")
	r := e.rawSession("alice", "pw", "a")
	// Read the TLS stream directly: a keepalive is a lone space.
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, err := r.nc.Read(buf)
	if err != nil || strings.TrimLeft(string(buf[:n]), " ") != "" || n == 0 {
		t.Fatalf("read %q, %v; want whitespace keepalives", buf[:n], err)
	}
}
