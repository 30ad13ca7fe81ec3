package sipside

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestFrameMessage(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		keep     int
		head     int
		body     int
		complete bool
		noLength bool
		err      bool
	}{
		{name: "empty", in: ""},
		{name: "partial header", in: "OPTIONS sip:a SIP/2.0\r\nVia: x\r\n"},
		{name: "no body", in: "OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n", head: 31, complete: true},
		{name: "keepalive first", in: "\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n", keep: 4, head: 31, complete: true},
		{name: "body waiting", in: "MESSAGE sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nab", head: 44, body: 5},
		{name: "body complete", in: "MESSAGE sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nabcdeX", head: 44, body: 5, complete: true},
		{name: "bare LF", in: "OPTIONS sip:a SIP/2.0\nl: 0\n\n", head: 28, complete: true},
		{name: "missing length", in: "OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n", head: 33, complete: true, noLength: true},
		{name: "negative length", in: "OPTIONS sip:a SIP/2.0\r\nl: -1\r\n\r\n", head: 33, err: true},
		{name: "two lengths", in: "OPTIONS sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n", head: 51, err: true},
		{name: "same length twice", in: "OPTIONS sip:a SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n", head: 50, complete: true},
		{name: "header too long", in: "OPTIONS sip:a SIP/2.0\r\nX: " + strings.Repeat("a", maxStreamHeader) + "\r\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, err := frameMessage([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if err != nil {
				if !errors.Is(err, errFraming) {
					t.Errorf("error %v is not errFraming", err)
				}
				return
			}
			want := frameResult{keepalive: tt.keep, headLen: tt.head, bodyLen: tt.body, complete: tt.complete, noLength: tt.noLength}
			if fr != want {
				t.Errorf("got %+v, want %+v", fr, want)
			}
		})
	}
}

// discardConn is a net.Conn whose writes vanish, for driving framedConn
// without a peer.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
func (discardConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
}

// fuzzServer is the part of a Server that framedConn uses.
func fuzzServer() *Server {
	return &Server{
		opts:   Options{MaxMessageBytes: 4096, UserAgent: "umppd"},
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		parser: sip.NewParser(),
	}
}

// FuzzStreamFraming feeds arbitrary octets, split in two reads, through
// the stream framer and checks its promise to sipgo: whatever it passes
// on is a sequence of whole messages that sipgo's stream parser accepts
// without error (an error there would close the connection).
func FuzzStreamFraming(f *testing.F) {
	addTortureSeeds(f)
	f.Add([]byte("\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := fuzzServer()
		c := &framedConn{Conn: discardConn{}, s: s, transport: "tcp"}
		cut := len(b) / 3
		c.feed(b[:cut])
		c.feed(b[cut:])
		if len(c.out) == 0 {
			return
		}
		p := sip.NewParser().NewSIPStream()
		err := p.ParseSIPStream(c.out, func(sip.Message) {})
		if err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
			t.Fatalf("sipgo refuses what the framer passed on: %v\n%q", err, c.out)
		}
	})
}

// TestStreamKeepsServing sends, on one TCP connection, a message sipgo
// cannot parse, a folded From tag and a keep-alive ping, and checks each
// gets its answer and the connection stays usable.
func TestStreamKeepsServing(t *testing.T) {
	ts := startServer(t, newUsers(t), tortureDomains, nil)
	conn, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	r := bufio.NewReader(conn)
	send := func(s string) {
		t.Helper()
		if _, err := conn.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Unparseable by sipgo: <> around the Request-URI.
	send("OPTIONS <sip:example.com> SIP/2.0\r\nVia: SIP/2.0/TCP " + local + ";branch=z9hG4bKa1\r\n" +
		"From: <sip:x@example.net>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: a1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	if m, err := readStreamMessage(r); err != nil || statusOf(m) != 400 {
		t.Fatalf("unparseable request: %q, %v; want 400", m, err)
	}
	// A ping between messages gets a pong.
	send("\r\n\r\n")
	if line, err := r.ReadString('\n'); err != nil || line != "\r\n" {
		t.Fatalf("pong: %q, %v", line, err)
	}
	// Folded From tag, split over two writes.
	msg := "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP " + local + ";branch=z9hG4bKa2\r\n" +
		"From: <sip:x@example.net>\r\n  ;\r\n  tag = 98asjd8\r\nTo: <sip:example.com>\r\nCall-ID: a2\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	send(msg[:40])
	time.Sleep(10 * time.Millisecond)
	send(msg[40:])
	if m, err := readStreamMessage(r); err != nil || statusOf(m) != 200 {
		t.Fatalf("folded From tag: %q, %v; want 200", m, err)
	}
}
