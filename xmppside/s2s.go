// Server-to-server streams (RFC 6120 with XEP-0220 dialback and
// XEP-0178 SASL EXTERNAL), on the package's own stream scanner.
//
// Inbound (s2s_in.go, listener from Server.ListenS2S): the header's to
// must be one of our domains (host-unknown), its from a domain that
// AllowDomain accepts (policy-violation); STARTTLS is required unless
// Options.S2SAllowPlain; then SASL EXTERNAL is listed only when the
// peer's certificate verifies for its header's from (RootCAs), and
// dialback (with <errors/>) always. A stream carries stanzas only for
// the (their, our) domain pairs authenticated on it: EXTERNAL authorizes
// (from, to) of the header; each valid db:result authorizes its pair,
// which we verify by calling the authoritative server of the claimed
// domain back through the Resolver, never the source address. A stanza
// is refused with a stream error when it comes before authentication
// (not-authorized), lacks from or to (improper-addressing), has a from
// whose domain or pair is not authorized (invalid-from), or a to not
// hosted here (host-unknown); accepted stanzas go to Server.Receive.
// db:verify is answered on any stream, before or after authentication
// (Prosody sends it on streams it has just authenticated). Size limits,
// restricted XML and well-formedness are the c2s scanner's. Streams with
// no stanza for S2SIdleTimeout are closed.
//
// Outbound (s2s_out.go, the Remote returned by Server.S2S, and the
// default Remote when Options.Remote is nil and a Resolver is set): one
// link per (our domain, their domain) with a FIFO queue of at most
// S2SQueueLen stanzas (a full queue makes the sender wait up to
// SendTimeout, then resource-constraint). The first stanza starts a
// goroutine that resolves the domain, tries the targets in order
// (STARTTLS or XEP-0368 direct TLS), authenticates with EXTERNAL when the
// peer lists it (falling back to dialback on a new connection if it is
// refused) or with dialback, then writes the queue in order. Peer
// certificates are not required to verify on outbound streams: dialback
// and EXTERNAL authenticate us to them, and the stream is encrypted
// either way. If no target works within S2SConnectTimeout, every queued
// stanza is bounced to its sender through the router:
// remote-server-timeout for timeouts, remote-server-not-found otherwise.
// Then the link backs off (2s, doubling up to 5m): during the backoff new
// stanzas fail at once with the same condition rather than wait (a
// sender learns at once that the domain is down; nothing is held that
// the user believes sent). A stream that the peer closes or that fails
// while stanzas wait is reopened at once; an idle one (S2SIdleTimeout)
// is closed and reopened by the next stanza. Without stream management
// (XEP-0198), a stanza written just before a peer's connection dies can
// be lost; the link notices a peer's close as soon as it is read.
//
// Not implemented: XEP-0288 bidirectional streams, XEP-0198 on s2s,
// piggybacking several domain pairs on one outbound stream, DANE/POSH,
// a direct-TLS s2s listener (outbound direct TLS is supported), and
// forgetting links of domains not used for a long time (one small struct
// per remote domain stays).

package xmppside

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/xmppside/dialback"
)

// Resolver finds the s2s endpoints of a domain (RFC 6120 §3.2:
// _xmpp-server._tcp SRV, then the domain's A/AAAA records; static peers
// first). *addressing.Resolver implements it.
type Resolver interface {
	ResolveXMPP(ctx context.Context, domain string) ([]addressing.Target, error)
}

// Defaults of the s2s options.
const (
	DefaultS2SIdleTimeout    = 10 * time.Minute
	DefaultS2SConnectTimeout = 20 * time.Second
	DefaultS2SQueueLen       = 1000
	s2sBackoffMin            = 2 * time.Second
	s2sBackoffMax            = 5 * time.Minute
)

// s2sError is a failure of the s2s layer with the stanza error condition
// the router bounces with.
type s2sError struct {
	cond string
	err  error
}

func (e *s2sError) Error() string     { return "xmppside: s2s: " + e.cond + ": " + e.err.Error() }
func (e *s2sError) Unwrap() error     { return e.err }
func (e *s2sError) Condition() string { return e.cond }

// classify gives the bounce condition for a connection failure: timeouts
// are remote-server-timeout, everything else remote-server-not-found.
func classify(err error) *s2sError {
	var se *s2sError
	if errors.As(err, &se) {
		return se
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &s2sError{cond: "remote-server-timeout", err: err}
	}
	return &s2sError{cond: "remote-server-not-found", err: err}
}

type s2sPair struct{ local, remote string }

// s2sManager owns the outbound s2s links (one per domain pair) and the
// dialback roles. It implements Remote.
type s2sManager struct {
	srv       *Server
	log       *slog.Logger
	receiver  dialback.Receiver
	authority dialback.Authority
	serverTLS *tls.Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	links  map[s2sPair]*s2sLink
	closed bool
}

func newS2SManager(s *Server, log *slog.Logger) *s2sManager {
	ctx, cancel := context.WithCancel(context.Background())
	m := &s2sManager{
		srv:    s,
		log:    log.With("component", "xmpp-s2s"),
		ctx:    ctx,
		cancel: cancel,
		links:  map[s2sPair]*s2sLink{},
	}
	m.receiver = dialback.Receiver{
		Hosts:   s.isLocal,
		Dial:    m.dialVerifier,
		Timeout: s.opts.S2SConnectTimeout,
		Logger:  m.log,
	}
	m.authority = dialback.Authority{Secret: s.opts.DialbackSecret, Hosts: s.isLocal}
	cfg := s.opts.TLS.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	// Ask for the peer's certificate without checking it in the
	// handshake: SASL EXTERNAL checks it for the claimed domain, and
	// peers without one use dialback.
	cfg.ClientAuth = tls.RequestClientCert
	cfg.NextProtos = append([]string{"xmpp-server"}, cfg.NextProtos...)
	m.serverTLS = cfg
	return m
}

func (m *s2sManager) roots() *x509.CertPool {
	if f := m.srv.opts.RootCAs; f != nil {
		return f()
	}
	return nil
}

func (m *s2sManager) allowed(domain string) bool {
	f := m.srv.opts.AllowDomain
	return f == nil || f(domain)
}

// clientTLS is the configuration for an outbound connection to domain.
// The peer's certificate is not required to verify: STARTTLS protects the
// stream, and the peer's identity rests on DNS as in dialback (RFC 6120
// §13.7.2.3 allows this "opportunistic" mode; XEP-0220 §2). Ours is
// presented for SASL EXTERNAL.
func (m *s2sManager) clientTLS(domain string) *tls.Config {
	var cfg *tls.Config
	if f := m.srv.opts.ClientTLS; f != nil {
		cfg = f(domain).Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = domain
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = nil
	cfg.VerifyPeerCertificate = nil
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// Deliver implements Remote: it queues st on the link to its domain,
// connecting it if needed. During the backoff after a failed connection
// it fails at once with that failure's condition.
func (m *s2sManager) Deliver(ctx context.Context, st Stanza) error {
	from, err := parseAddr(st.From)
	if err != nil {
		return &s2sError{cond: "jid-malformed", err: err}
	}
	to, err := parseAddr(st.To)
	if err != nil {
		return &s2sError{cond: "jid-malformed", err: err}
	}
	if !m.allowed(to.domain) {
		return &s2sError{cond: "not-allowed", err: fmt.Errorf("federation with %s not allowed", to.domain)}
	}
	if !m.srv.isLocal(from.domain) {
		return &s2sError{cond: "not-allowed", err: fmt.Errorf("from %s is not ours", from.domain)}
	}
	p := s2sPair{local: from.domain, remote: to.domain}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return &s2sError{cond: "remote-server-timeout", err: errors.New("shutting down")}
	}
	l := m.links[p]
	if l == nil {
		l = &s2sLink{m: m, pair: p, wake: make(chan struct{}, 1), space: make(chan struct{}, 1), log: m.log.With("domain", p.local, "peer", p.remote)}
		m.links[p] = l
	}
	m.mu.Unlock()
	return l.enqueue(ctx, st)
}

// shutdown closes the outbound links and waits for them.
func (m *s2sManager) shutdown() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// bounce sends an error reply for a stanza that could not be delivered
// back to its local sender, through the router.
func (m *s2sManager) bounce(raw []byte, cond string) {
	sr := newStreamReader(bytes.NewReader(raw), 0)
	var el element
	if err := sr.next(&el); err != nil {
		return
	}
	if el.attr("type") == "error" {
		return
	}
	if el.name.Local == "presence" {
		// RFC 6121 §4.4.3 allows dropping presence errors; subscription
		// requests get one so the user learns the contact is unreachable.
		switch el.attr("type") {
		case "subscribe", "unsubscribe", "subscribed", "unsubscribed":
		default:
			return
		}
	}
	b := appendErrorReply(nil, &el, el.attr("to"), el.attr("from"), cond, "")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 10*time.Second)
	defer cancel()
	if err := m.srv.Receive(ctx, b); err != nil {
		m.log.Debug("s2s bounce not routed", "err", err)
	}
}

// verifier asks an authoritative server about a dialback key over a new
// stream (XEP-0220 §2.1.3), reached through DNS.
type verifier struct{ m *s2sManager }

func (m *s2sManager) dialVerifier(_ context.Context, _ string) (dialback.Verifier, error) {
	return verifier{m}, nil
}

func (v verifier) Verify(ctx context.Context, req dialback.Element) (dialback.Element, error) {
	o, err := v.m.connect(ctx, s2sPair{local: req.From, remote: req.To}, connectVerify)
	if err != nil {
		return dialback.Element{}, err
	}
	defer o.wire.close("")
	b, err := req.Marshal()
	if err != nil {
		return dialback.Element{}, fmt.Errorf("db:verify: %w", err)
	}
	if err := o.wire.write(b); err != nil {
		return dialback.Element{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = o.wire.raw.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		var el element
		if err := o.wire.sr.next(&el); err != nil {
			return dialback.Element{}, fmt.Errorf("db:verify answer: %w", err)
		}
		if o.wire.ns(&el) == nsDialback && el.name.Local == "verify" {
			ans, err := dialback.Parse(el.raw)
			if err != nil {
				return dialback.Element{}, err
			}
			if ans.Answers(req) {
				return ans, nil
			}
		}
		if o.wire.isStream(&el, "error") {
			return dialback.Element{}, fmt.Errorf("db:verify: stream error %s", el.raw)
		}
		o.wire.sr.release()
	}
}
