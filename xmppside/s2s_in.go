package xmppside

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/umpp/umpp/xmppside/dialback"
	"github.com/umpp/umpp/xmppside/saslext"
)

// s2sIn is one inbound server-to-server stream (RFC 6120 §4, §5, §6 and
// XEP-0220 as the receiving and authoritative server).
type s2sIn struct {
	srv  *Server
	mgr  *s2sManager
	log  *slog.Logger
	wire *s2sWire

	ourDomain  string // the 'to' of the first header
	id         string // our current stream ID
	headerSent bool
	saslDone   bool
	// authed[their][ours]: domain pairs authorized on this stream.
	authed map[string]map[string]bool
	how    atomic.Pointer[string] // how the last pair was authenticated
	// stats describes the stream for Server.Stats once a pair is
	// authorized; other goroutines read it.
	stats    atomic.Pointer[S2SStats]
	killCond atomic.Value // string
}

func (s *Server) newS2SIn(nc net.Conn) *s2sIn {
	return &s2sIn{
		srv:    s,
		mgr:    s.s2s,
		log:    s.s2s.log.With("addr", nc.RemoteAddr().String(), "dir", "in"),
		wire:   newS2SWire(nc, s.opts.MaxStanzaBytes, s.opts.WriteTimeout),
		authed: map[string]map[string]bool{},
	}
}

// closeStream ends the stream with cond from another goroutine.
func (c *s2sIn) closeStream(cond string) {
	c.killCond.CompareAndSwap(nil, cond)
	_ = c.wire.raw.SetReadDeadline(time.Unix(1, 0))
}

func (c *s2sIn) authenticated() bool { return len(c.authed) > 0 }

func (c *s2sIn) authorize(their, ours, how string) {
	m := c.authed[their]
	if m == nil {
		m = map[string]bool{}
		c.authed[their] = m
	}
	m[ours] = true
	c.how.Store(&how)
	c.stats.Store(&S2SStats{
		Domain:     their,
		Local:      ours,
		Direction:  "in",
		Auth:       statsAuth(how),
		TLSVersion: tlsVersion(c.wire.secure, c.wire.tlsState),
		Remote:     c.wire.raw.RemoteAddr().String(),
		Since:      time.Now(),
	})
	c.log.Info("s2s inbound authenticated", "peer", their, "domain", ours, "auth", how)
}

// errRestart asks serve to read a new stream header (after TLS or SASL).
var errRestart = errors.New("stream restart")

func (c *s2sIn) serve(ctx context.Context) {
	c.log.Debug("s2s connected")
	err := c.run(ctx)
	cond := ""
	var se *streamError
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, errStreamEnd):
	case errors.As(err, &se):
		cond = se.cond
	case errors.As(err, &ne) && ne.Timeout():
		if k, ok := c.killCond.Load().(string); ok {
			cond = k
		} else if !c.authenticated() {
			cond = "connection-timeout"
		}
		// Idle authenticated streams close without an error.
	case errors.Is(err, errPeerGone), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		cond = "-"
	default:
		cond = "internal-server-error"
	}
	if cond != "" && cond != "-" {
		c.log.Info("s2s stream error", "condition", cond, "peer", c.wire.peerFrom, "err", err)
	}
	if cond == "-" {
		_ = c.wire.nc.Close()
		_ = c.wire.raw.Close()
	} else {
		if !c.headerSent {
			_ = c.wire.writeString(s2sHeader(c.ourDomain, c.wire.peerFrom, newStreamID()))
		}
		c.wire.close(cond)
	}
	c.log.Debug("s2s disconnected", "peer", c.wire.peerFrom)
}

func (c *s2sIn) run(ctx context.Context) error {
	o := &c.srv.opts
	for {
		_ = c.wire.raw.SetReadDeadline(time.Now().Add(o.HandshakeTimeout))
		c.headerSent = false
		if err := c.openStream(); err != nil {
			return err
		}
		err := c.loop(ctx)
		if !errors.Is(err, errRestart) {
			return err
		}
		c.wire.sr.restart()
	}
}

// openStream reads the peer's header, answers with ours and lists the
// features of this stage.
func (c *s2sIn) openStream() error {
	w := c.wire
	if err := w.readHeader(); err != nil {
		return err
	}
	to, err := parseAddr(w.peerTo)
	if err != nil || to.local != "" || to.resource != "" || !c.srv.isLocal(to.domain) {
		return streamErr("host-unknown", fmt.Errorf("stream to %q", w.peerTo))
	}
	if c.ourDomain != "" && to.domain != c.ourDomain {
		return streamErr("host-unknown", fmt.Errorf("stream restarted to %q after %q", to.domain, c.ourDomain))
	}
	c.ourDomain = to.domain
	if w.peerFrom != "" {
		from, err := parseAddr(w.peerFrom)
		if err != nil || from.local != "" || from.resource != "" || c.srv.isLocal(from.domain) {
			return streamErr("invalid-from", fmt.Errorf("stream from %q", w.peerFrom))
		}
		if !c.mgr.allowed(from.domain) {
			return streamErr("policy-violation", fmt.Errorf("federation with %s not allowed", from.domain))
		}
	}
	c.id = newStreamID()
	if err := w.writeString(s2sHeader(c.ourDomain, w.peerFrom, c.id)); err != nil {
		return fmt.Errorf("%w: %w", errPeerGone, err)
	}
	c.headerSent = true
	var f strings.Builder
	f.WriteString("<stream:features>")
	switch {
	case !w.secure:
		f.WriteString("<starttls xmlns='" + nsTLS + "'>")
		if !c.srv.opts.S2SAllowPlain {
			f.WriteString("<required/>")
		}
		f.WriteString("</starttls>")
		if c.srv.opts.S2SAllowPlain {
			f.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
		}
	case !c.saslDone && !c.authenticated():
		if w.peerFrom != "" && saslext.VerifyPeerCertificate(w.tlsState, w.peerFrom, c.mgr.roots()) == nil {
			f.WriteString("<mechanisms xmlns='" + nsSASL + "'><mechanism>EXTERNAL</mechanism></mechanisms>")
		}
		f.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
	default:
		// Authenticated: more domain pairs may still use dialback.
		f.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
	}
	f.WriteString("</stream:features>")
	if err := w.writeString(f.String()); err != nil {
		return fmt.Errorf("%w: %w", errPeerGone, err)
	}
	return nil
}

// loop handles the elements of one stream until a restart or its end.
func (c *s2sIn) loop(ctx context.Context) error {
	w := c.wire
	o := &c.srv.opts
	var el element
	for {
		if c.authenticated() {
			_ = w.raw.SetReadDeadline(time.Now().Add(o.S2SIdleTimeout))
		}
		if k, ok := c.killCond.Load().(string); ok {
			return streamErr(k, errors.New("closed by server"))
		}
		if err := w.sr.next(&el); err != nil {
			return err
		}
		ns := w.ns(&el)
		var err error
		switch {
		case ns == nsStream && el.name.Local == "error":
			c.log.Info("s2s peer sent stream error", "peer", w.peerFrom, "error", string(el.raw))
			return errStreamEnd
		case ns == nsTLS && el.name.Local == "starttls":
			if w.secure {
				return streamErr("policy-violation", errors.New("STARTTLS twice"))
			}
			return c.startTLS(ctx)
		case !w.secure && !o.S2SAllowPlain:
			return streamErr("policy-violation", fmt.Errorf("%s before STARTTLS", el.name.Local))
		case ns == nsSASL && el.name.Local == "auth":
			err = c.external(&el)
		case ns == nsDialback && el.name.Local == "result":
			err = c.dialbackResult(ctx, &el)
		case ns == nsDialback && el.name.Local == "verify":
			err = c.dialbackVerify(&el)
		case (ns == nsServer || ns == nsClient) && (el.name.Local == "message" || el.name.Local == "presence" || el.name.Local == "iq"):
			err = c.stanza(ctx, &el)
		default:
			return streamErr("unsupported-stanza-type", fmt.Errorf("element {%s}%s", ns, el.name.Local))
		}
		w.sr.release()
		if err != nil {
			return err
		}
	}
}

func (c *s2sIn) startTLS(ctx context.Context) error {
	if err := c.wire.writeString("<proceed xmlns='" + nsTLS + "'/>"); err != nil {
		return fmt.Errorf("%w: %w", errPeerGone, err)
	}
	tc := tls.Server(c.wire.raw, c.mgr.serverTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w: %w", errPeerGone, err)
	}
	c.wire.useTLS(tc)
	return errRestart
}

// external runs the receiving side of SASL EXTERNAL (RFC 6120 §6.4,
// §13.7.2; XEP-0178).
func (c *s2sIn) external(el *element) error {
	w := c.wire
	fail := func(cond, why string) error {
		c.log.Info("s2s EXTERNAL refused", "peer", w.peerFrom, "condition", cond, "reason", why, "auth", "external")
		return w.writeString("<failure xmlns='" + nsSASL + "'><" + cond + "/></failure>")
	}
	if c.saslDone || c.authenticated() {
		return streamErr("policy-violation", errors.New("SASL after authentication"))
	}
	var auth saslPayload
	if err := decodeElement(el.raw, &auth); err != nil {
		return streamErr("bad-format", err)
	}
	if auth.Mechanism != "EXTERNAL" {
		return fail("invalid-mechanism", "mechanism "+auth.Mechanism)
	}
	payload := strings.TrimSpace(auth.Payload)
	if payload == "" {
		if err := w.writeString("<challenge xmlns='" + nsSASL + "'/>"); err != nil {
			return fmt.Errorf("%w: %w", errPeerGone, err)
		}
		w.sr.release()
		if err := w.sr.next(el); err != nil {
			return err
		}
		var resp saslPayload
		if err := decodeElement(el.raw, &resp); err != nil {
			return streamErr("bad-format", err)
		}
		switch resp.XMLName.Local {
		case "response":
			payload = strings.TrimSpace(resp.Payload)
		case "abort":
			return fail("aborted", "peer aborted")
		default:
			return streamErr("policy-violation", fmt.Errorf("%s during SASL", resp.XMLName.Local))
		}
	}
	if w.peerFrom == "" {
		return fail("not-authorized", "stream header without from")
	}
	authzid, err := saslext.DecodeAuthzid([]byte(payload))
	if err != nil {
		return fail("incorrect-encoding", err.Error())
	}
	if err := saslext.CheckAuthzid(authzid, w.peerFrom); err != nil {
		return fail("invalid-authzid", err.Error())
	}
	if !c.mgr.allowed(w.peerFrom) {
		return fail("not-authorized", "federation policy")
	}
	if err := saslext.VerifyPeerCertificate(w.tlsState, w.peerFrom, c.mgr.roots()); err != nil {
		return fail("not-authorized", err.Error())
	}
	if err := w.writeString("<success xmlns='" + nsSASL + "'/>"); err != nil {
		return fmt.Errorf("%w: %w", errPeerGone, err)
	}
	c.saslDone = true
	c.authorize(w.peerFrom, c.ourDomain, "external")
	return errRestart
}

// dialbackErr maps a dialback decoding error to a stream error.
func dialbackErr(err error) error {
	switch {
	case errors.Is(err, dialback.ErrImproperAddressing):
		return streamErr("improper-addressing", err)
	case errors.Is(err, dialback.ErrInvalidFrom):
		return streamErr("invalid-from", err)
	default:
		return streamErr("invalid-xml", err)
	}
}

// dialbackResult handles <db:result/> as the receiving server (XEP-0220
// §2.1.2): it calls the authoritative server of the claimed domain back
// (through DNS, never the source address) and answers.
func (c *s2sIn) dialbackResult(ctx context.Context, el *element) error {
	req, err := dialback.Parse(el.raw)
	if err != nil {
		return dialbackErr(err)
	}
	if req.Type != dialback.TypeRequest {
		return streamErr("unsupported-stanza-type", errors.New("dialback answer on an inbound stream"))
	}
	if c.wire.peerFrom != "" && req.From != c.wire.peerFrom {
		return streamErr("invalid-from", fmt.Errorf("db:result from %s on a stream from %s", req.From, c.wire.peerFrom))
	}
	if !c.srv.isLocal(req.To) {
		return streamErr("host-unknown", fmt.Errorf("db:result to %s", req.To))
	}
	if c.srv.isLocal(req.From) {
		return streamErr("invalid-from", fmt.Errorf("db:result from our own %s", req.From))
	}
	if !c.mgr.allowed(req.From) {
		return streamErr("policy-violation", fmt.Errorf("federation with %s not allowed", req.From))
	}
	ans := c.mgr.receiver.Check(ctx, req, c.id)
	b, err := ans.Marshal()
	if err != nil {
		return fmt.Errorf("dialback answer: %w", err)
	}
	if err := c.wire.write(b); err != nil {
		return fmt.Errorf("%w: %w", errPeerGone, err)
	}
	if ans.Type == dialback.TypeValid {
		c.authorize(req.From, req.To, "dialback")
	} else {
		c.log.Info("s2s dialback refused", "peer", req.From, "domain", req.To, "auth", "dialback", "type", string(ans.Type))
	}
	return nil
}

// dialbackVerify answers <db:verify/> as the authoritative server
// (XEP-0220 §2.1.3), on any stream, authenticated or not.
func (c *s2sIn) dialbackVerify(el *element) error {
	req, err := dialback.Parse(el.raw)
	if err != nil {
		return dialbackErr(err)
	}
	if req.Type != dialback.TypeRequest {
		return streamErr("unsupported-stanza-type", errors.New("db:verify answer on an inbound stream"))
	}
	ans := c.mgr.authority.Answer(req)
	b, err := ans.Marshal()
	if err != nil {
		return fmt.Errorf("dialback answer: %w", err)
	}
	c.log.Debug("s2s db:verify answered", "peer", req.To, "domain", req.From, "type", string(ans.Type))
	if err := c.wire.write(b); err != nil {
		return fmt.Errorf("%w: %w", errPeerGone, err)
	}
	return nil
}

// stanza checks the addresses of a stanza against the domain pairs
// authorized on this stream (RFC 6120 §4.9.3.10, §8.1.1.1, §13.7) and
// routes it.
func (c *s2sIn) stanza(ctx context.Context, el *element) error {
	if !c.authenticated() {
		return streamErr("not-authorized", fmt.Errorf("%s before authentication", el.name.Local))
	}
	fromS, toS := el.attr("from"), el.attr("to")
	if fromS == "" || toS == "" {
		return streamErr("improper-addressing", fmt.Errorf("%s without from or to", el.name.Local))
	}
	from, err := parseAddr(fromS)
	if err != nil {
		return streamErr("invalid-from", err)
	}
	to, err := parseAddr(toS)
	if err != nil {
		return streamErr("improper-addressing", err)
	}
	ours := c.authed[from.domain]
	if ours == nil {
		return streamErr("invalid-from", fmt.Errorf("from %s on a stream authenticated for %s", from.domain, c.authedList()))
	}
	if !c.srv.isLocal(to.domain) {
		return streamErr("host-unknown", fmt.Errorf("to %s", to.domain))
	}
	if !ours[to.domain] {
		return streamErr("invalid-from", fmt.Errorf("domain pair %s -> %s not authorized", from.domain, to.domain))
	}
	if err := c.srv.receive(ctx, el); err != nil {
		c.log.Debug("s2s stanza not routed", "peer", from.domain, "err", err)
	}
	return nil
}

func (c *s2sIn) authedList() string {
	var l []string
	for d := range c.authed {
		l = append(l, d)
	}
	return strings.Join(l, ",")
}
