package sipside

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// This file frames SIP messages on stream transports (TCP, TLS) before
// sipgo sees them, so that a stream gets the same cleanup, fallback
// parsing and stateless answers as a datagram (RFC 3261 §18.3: on a
// stream, Content-Length delimits the message).

// maxStreamHeader bounds the header section we buffer while looking for
// its end; a peer sending more without an empty line is closed.
const maxStreamHeader = 64 << 10

// maxStreamSkip bounds the body of an oversize message that is answered
// 413 and then read past to stay in step; anything larger closes the
// connection.
const maxStreamSkip = 16 << 20

// errFraming reports a stream whose message boundaries are lost: a
// missing, negative, malformed or repeated Content-Length, or a header
// section without end. The connection is closed after any answer.
var errFraming = errors.New("sipside: stream framing error")

// frameResult is what frameMessage found at the start of a buffer.
type frameResult struct {
	keepalive int  // leading CR/LF octets between messages
	headLen   int  // octets of start line and headers, with the empty line
	bodyLen   int  // Content-Length
	noLength  bool // no Content-Length header: the body is taken as empty
	complete  bool
}

// frameMessage finds the first message in b. It returns complete=false
// when more octets are needed, and errFraming when the message cannot be
// delimited (the octets past its header section are then meaningless).
// keepalive counts CR and LF octets before the message (RFC 5626 §3.5.1
// keep-alives, or the empty lines RFC 3261 §7.5 lets a receiver ignore).
func frameMessage(b []byte) (frameResult, error) {
	var fr frameResult
	for fr.keepalive < len(b) && (b[fr.keepalive] == '\r' || b[fr.keepalive] == '\n') {
		fr.keepalive++
	}
	rest := b[fr.keepalive:]
	end := headerEnd(rest)
	if end < 0 {
		if len(rest) > maxStreamHeader {
			return fr, fmt.Errorf("header section over %d octets: %w", maxStreamHeader, errFraming)
		}
		return fr, nil
	}
	if end > maxStreamHeader {
		return fr, fmt.Errorf("header section over %d octets: %w", maxStreamHeader, errFraming)
	}
	fr.headLen = end
	n, present, err := streamContentLength(rest[:end])
	if err != nil {
		return fr, err
	}
	fr.bodyLen, fr.noLength = n, !present
	fr.complete = len(rest)-end >= n
	return fr, nil
}

// headerEnd returns the length of the header section of b including the
// empty line that ends it (CRLF CRLF, or bare LFs), or -1.
func headerEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		k := i + j + 1 // start of the next line
		if k < len(b) && b[k] == '\n' {
			return k + 1
		}
		if k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n' {
			return k + 2
		}
		i = k
	}
}

// streamContentLength reads Content-Length (or "l") from a header
// section. RFC 3261 §18.3 makes it mandatory on streams; when absent the
// body is taken as empty, which is what a peer that omits it means.
func streamContentLength(head []byte) (n int, present bool, err error) {
	m, err := parseRaw(head)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", errFraming, err)
	}
	vals := m.values("content-length")
	if len(vals) == 0 {
		return 0, false, nil
	}
	n = -1
	for _, v := range vals {
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || x < 0 || strings.HasPrefix(strings.TrimSpace(v), "+") {
			return 0, true, fmt.Errorf("Content-Length %q: %w", v, errFraming)
		}
		if n >= 0 && x != n {
			return 0, true, fmt.Errorf("several Content-Length values: %w", errFraming)
		}
		n = x
	}
	return n, true, nil
}

// streamListener wraps an accepted-connection listener so that every
// connection is framed by framedConn.
type framedListener struct {
	net.Listener
	s         *Server
	transport string
}

func (l *framedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err //nolint:wrapcheck // returned to sipgo's accept loop as is
	}
	return &framedConn{Conn: c, s: l.s, transport: l.transport}, nil
}

// framedConn is an accepted stream connection as sipgo reads it: each
// Read returns octets of whole, cleaned messages. Requests that must be
// answered without sipgo (unparseable, refused by validate) are answered
// on the connection here and not passed on.
type framedConn struct {
	net.Conn
	s         *Server
	transport string

	buf  []byte // read buffer
	in   []byte // received, not yet framed
	out  []byte // cleaned, not yet read by sipgo
	skip int    // body octets of an oversize message still to discard
	err  error  // sticky: framing lost; returned once out is drained
	sp   *sip.ParserStream

	tlsChecked bool // the TLS client certificate was looked at (read side only)
}

// noteTLSPeer records the client certificate of a TLS connection once
// its handshake is done (the first read returned data), for peer
// authentication (peer.go). It runs before the first message is passed
// on, so every request of the connection finds it.
func (c *framedConn) noteTLSPeer() {
	if c.tlsChecked || c.transport != "tls" {
		return
	}
	c.tlsChecked = true
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete || len(st.PeerCertificates) == 0 {
		return
	}
	c.s.peers.addConn(c.RemoteAddr().String(), &tlsPeer{certs: st.PeerCertificates, owner: c})
}

// Close closes the connection and forgets its TLS client certificate.
func (c *framedConn) Close() error {
	if c.transport == "tls" {
		c.s.peers.removeConn(c.RemoteAddr().String(), c)
	}
	return c.Conn.Close() //nolint:wrapcheck // sipgo compares with net.ErrClosed
}

// parseOne parses b, one whole message, as sipgo's stream transport
// would: it fails unless b is exactly one message.
func (c *framedConn) parseOne(b []byte) (sip.Message, error) {
	if c.sp == nil {
		c.sp = c.s.parser.NewSIPStream()
	}
	var got sip.Message
	n := 0
	err := c.sp.ParseSIPStream(b, func(m sip.Message) { got = m; n++ })
	if err != nil || n != 1 {
		c.sp.Reset()
		if err == nil {
			err = fmt.Errorf("%d messages in one frame: %w", n, errFraming)
		}
		return nil, fmt.Errorf("sipside: stream parse: %w", err)
	}
	return got, nil
}

// Unwrap returns the accepted connection (a *tls.Conn on TLS listeners),
// for code that needs its state.
func (c *framedConn) Unwrap() net.Conn { return c.Conn }

func (c *framedConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.buf == nil {
			c.buf = make([]byte, 32<<10)
		}
		n, err := c.Conn.Read(c.buf)
		if n > 0 {
			c.noteTLSPeer()
			c.feed(c.buf[:n])
		}
		if err != nil && len(c.out) == 0 {
			return 0, err //nolint:wrapcheck // io.EOF and net errors must reach sipgo unchanged
		}
		if err != nil {
			c.err = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return n, nil
}

// feed takes received octets and frames as many messages as are complete.
func (c *framedConn) feed(b []byte) {
	if c.skip > 0 {
		k := min(c.skip, len(b))
		c.skip -= k
		b = b[k:]
	}
	c.in = append(c.in, b...)
	for c.err == nil && len(c.in) > 0 {
		fr, err := frameMessage(c.in)
		if err != nil {
			c.fail(fr, err)
			return
		}
		if fr.keepalive > 0 {
			if bytes.Contains(c.in[:fr.keepalive], []byte("\r\n\r\n")) {
				// RFC 5626 §3.5.1 ping: answer with a pong.
				c.write([]byte("\r\n"))
			}
			c.in = c.in[fr.keepalive:]
			fr.keepalive = 0
		}
		if fr.headLen == 0 {
			return // the header section is not complete yet
		}
		if fr.bodyLen > c.s.opts.MaxMessageBytes || fr.headLen+fr.bodyLen > sip.ParseMaxMessageLength {
			c.tooLarge(fr)
			continue
		}
		if !fr.complete {
			return
		}
		n := fr.headLen + fr.bodyLen
		msg := c.in[:n:n]
		c.in = c.in[n:]
		if len(c.in) == 0 {
			c.in = nil
		}
		if fr.noLength {
			// sipgo's stream parser needs the header RFC 3261 §18.3
			// makes mandatory on streams; the body is empty.
			msg = withContentLength0(msg)
		}
		clean, resp := c.s.filterWith(c.transport, c.RemoteAddr(), msg, c.parseOne)
		if resp != nil {
			c.write(resp)
		}
		if clean != nil {
			c.out = append(c.out, clean...)
		}
	}
}

// tooLarge answers a message whose body exceeds MaxMessageBytes with 413
// (or drops a response) and discards its body as it arrives.
func (c *framedConn) tooLarge(fr frameResult) {
	if fr.bodyLen > maxStreamSkip {
		c.fail(fr, fmt.Errorf("body of %d octets: %w", fr.bodyLen, errFraming))
		return
	}
	head := c.in[:fr.headLen]
	if raw, err := parseRaw(head); err == nil {
		if _, _, ok := rejectStatus(raw); ok {
			c.write(rawResponse(raw, 413, "Request Entity Too Large", newTag(), remoteHost(c.RemoteAddr()), c.s.opts.UserAgent))
		}
	}
	avail := len(c.in) - fr.headLen
	k := min(avail, fr.bodyLen)
	c.skip = fr.bodyLen - k
	c.in = c.in[fr.headLen+k:]
	if len(c.in) == 0 {
		c.in = nil
	}
	c.s.log.Debug("discarded oversize stream message", "peer", c.RemoteAddr().String(), "length", fr.bodyLen)
}

// fail answers a request whose framing is lost with 400 when its Via can
// be read, then ends the stream: nothing after it can be delimited.
func (c *framedConn) fail(fr frameResult, err error) {
	if fr.headLen > 0 {
		if raw, rerr := parseRaw(c.in[:fr.headLen]); rerr == nil {
			if _, _, ok := rejectStatus(raw); ok {
				c.write(rawResponse(raw, 400, "Bad Request - Content-Length", newTag(), remoteHost(c.RemoteAddr()), c.s.opts.UserAgent))
			}
		}
	}
	c.s.log.Debug("closing stream", "peer", c.RemoteAddr().String(), "transport", c.transport, "error", err)
	c.in = nil
	// sipgo logs read errors other than EOF at error level; a peer's bad
	// framing is logged above at debug, as any per-request event.
	c.err = io.EOF
}

func (c *framedConn) write(b []byte) {
	// net.Conn writes are safe for concurrent use, and TCP and TLS
	// connections write one call's octets contiguously.
	if _, err := c.Conn.Write(b); err != nil {
		c.s.log.Debug("stateless stream response not sent", "peer", c.RemoteAddr().String(), "error", err)
	}
}

func remoteHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return h
}

// filterMessage runs the checks every received message gets before sipgo
// sees it, whatever the transport: normalization, our fallback parser for
// what sipgo refuses, and validate. It returns the cleaned message to pass
// on (nil to drop it) and a stateless response to send back (nil for
// none).
func (s *Server) filterMessage(transport string, remote net.Addr, data []byte) (clean, resp []byte) {
	return s.filterWith(transport, remote, data, s.parser.ParseSIP)
}

// filterWith is filterMessage with the sipgo parse to apply: on streams,
// the stream parser sipgo's transport will use, so that nothing is passed
// on that it would refuse (and close the connection for).
func (s *Server) filterWith(transport string, remote net.Addr, data []byte, parse func([]byte) (sip.Message, error)) (clean, resp []byte) {
	peer := ""
	if remote != nil {
		peer = remote.String()
	}
	norm := normalizeDatagram(data)
	msg, perr := parse(norm)
	raw, rerr := parseRaw(norm)
	if perr != nil {
		if rerr != nil {
			s.log.Debug("dropped unparseable message", "transport", transport, "peer", peer, "error", perr)
			return nil, nil
		}
		code, reason, ok := rejectStatus(raw)
		if !ok {
			s.log.Debug("dropped unparseable message without usable Via", "transport", transport, "peer", peer, "error", perr)
			return nil, nil
		}
		s.log.Debug("answered unparseable request", "transport", transport, "peer", peer, "call_id", raw.first("call-id"),
			"method", raw.method, "status", code, "error", perr)
		s.countResponse(raw.method, code)
		return nil, rawResponse(raw, code, reason, newTag(), remoteHost(remote), s.opts.UserAgent)
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.IsAck() {
		return norm, nil
	}
	if rerr != nil {
		raw = nil
	}
	if rej := validate(req, raw, s.opts.MaxMessageBytes); rej != nil {
		req.SetSource(peer)
		res := s.response(req, rej.code, rej.reason, rej.headers...)
		s.log.Debug("rejected request", "transport", transport, "peer", peer, "call_id", callID(req),
			"method", string(req.Method), "status", rej.code, "reason", rej.reason)
		s.countResponse(string(req.Method), rej.code)
		return nil, []byte(res.String())
	}
	return norm, nil
}

// withContentLength0 inserts "Content-Length: 0" after the start line.
func withContentLength0(msg []byte) []byte {
	i := bytes.IndexByte(msg, '\n')
	if i < 0 {
		return msg
	}
	out := make([]byte, 0, len(msg)+19)
	out = append(out, msg[:i+1]...)
	out = append(out, "Content-Length: 0\r\n"...)
	return append(out, msg[i+1:]...)
}
