package xmppside

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/xmppside/dialback"
	"github.com/umpp/umpp/xmppside/saslext"
)

type connectMode int

const (
	connectAuth   connectMode = iota // authenticate for sending stanzas
	connectVerify                    // stop after TLS: for db:verify
)

// errExternalFailed: the peer refused SASL EXTERNAL; try dialback on a new
// connection.
var errExternalFailed = errors.New("SASL EXTERNAL refused")

// s2sOut is an outbound stream ready for stanzas (or for db:verify).
type s2sOut struct {
	wire  *s2sWire
	auth  string        // "external" or "dialback"
	dead  chan struct{} // closed when the reader sees the stream end
	since time.Time     // when it was authenticated
}

// hostResolver resolves SRV target names with the DNS servers of the
// Resolver when it tells them (Servers, as *addressing.Resolver does),
// so that targets and their addresses come from the same DNS; nil (the
// system resolver) otherwise.
func (m *s2sManager) hostResolver() *net.Resolver {
	sv, ok := m.srv.opts.Resolver.(interface{ Servers() []string })
	if !ok {
		return nil
	}
	servers := sv.Servers()
	if len(servers) == 0 {
		return nil
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		var last error
		for _, s := range servers {
			c, err := d.DialContext(ctx, network, s)
			if err == nil {
				return c, nil
			}
			last = err
		}
		return nil, last
	}}
}

// connect resolves p.remote and opens an authenticated stream to the
// first target that works (RFC 6120 §3.2, §5, §6; XEP-0220).
func (m *s2sManager) connect(ctx context.Context, p s2sPair, mode connectMode) (*s2sOut, error) {
	ctx, cancel := context.WithTimeout(ctx, m.srv.opts.S2SConnectTimeout)
	defer cancel()
	if m.srv.opts.Resolver == nil {
		return nil, &s2sError{cond: "remote-server-not-found", err: errors.New("no resolver configured")}
	}
	targets, err := m.srv.opts.Resolver.ResolveXMPP(ctx, p.remote)
	if err != nil {
		// Whatever went wrong in DNS, for the sender the server was not
		// found.
		return nil, &s2sError{cond: "remote-server-not-found", err: fmt.Errorf("resolve %s: %w", p.remote, err)}
	}
	if len(targets) == 0 {
		return nil, &s2sError{cond: "remote-server-not-found", err: fmt.Errorf("%s has no XMPP service", p.remote)}
	}
	var last error
	for _, t := range targets {
		o, err := m.connectTarget(ctx, p, t, mode, false)
		if errors.Is(err, errExternalFailed) {
			m.log.Info("s2s EXTERNAL refused; retrying with dialback", "domain", p.local, "peer", p.remote, "addr", t.String())
			o, err = m.connectTarget(ctx, p, t, mode, true)
		}
		if err == nil {
			return o, nil
		}
		m.log.Info("s2s connection failed", "domain", p.local, "peer", p.remote, "addr", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), "err", err)
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, classify(fmt.Errorf("connect %s: %w", p.remote, context.DeadlineExceeded))
	}
	return nil, classify(fmt.Errorf("connect %s: %w", p.remote, last))
}

func (m *s2sManager) connectTarget(ctx context.Context, p s2sPair, t addressing.Target, mode connectMode, noExternal bool) (*s2sOut, error) {
	o := &m.srv.opts
	d := net.Dialer{Resolver: m.hostResolver()}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	w := newS2SWire(nc, o.MaxStanzaBytes, o.WriteTimeout)
	out, err := m.negotiateOut(ctx, w, p, t, mode, noExternal)
	if !stop() || err != nil {
		_ = nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return out, nil
}

func (m *s2sManager) negotiateOut(ctx context.Context, w *s2sWire, p s2sPair, t addressing.Target, mode connectMode, noExternal bool) (*s2sOut, error) {
	if t.Transport == "tls" {
		cfg := m.clientTLS(p.remote)
		cfg.NextProtos = []string{"xmpp-server"}
		tc := tls.Client(w.raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		w.useTLS(tc)
	}
	sasl := false
	for {
		if err := w.writeString(s2sHeader(p.local, p.remote, "")); err != nil {
			return nil, err
		}
		if err := w.readHeader(); err != nil {
			return nil, fmt.Errorf("stream header: %w", err)
		}
		var el element
		if err := w.sr.next(&el); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		if !w.isStream(&el, "features") {
			return nil, fmt.Errorf("expected features, got %s", el.raw)
		}
		var f s2sFeatures
		if err := decodeElement(el.raw, &f); err != nil {
			return nil, err
		}
		w.sr.release()
		switch {
		case !w.secure && f.StartTLS != nil:
			if err := w.writeString("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
				return nil, err
			}
			if err := w.sr.next(&el); err != nil {
				return nil, fmt.Errorf("starttls: %w", err)
			}
			if el.name.Local != "proceed" {
				return nil, fmt.Errorf("starttls refused: %s", el.raw)
			}
			tc := tls.Client(w.raw, m.clientTLS(p.remote))
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			w.useTLS(tc)
			continue
		case !w.secure && !m.srv.opts.S2SAllowPlain:
			return nil, errors.New("peer does not offer STARTTLS")
		}
		if mode == connectVerify {
			return &s2sOut{wire: w}, nil
		}
		if sasl {
			return m.ready(w, p, "external"), nil
		}
		if w.secure && f.external() && !noExternal {
			if err := m.externalOut(w, p); err != nil {
				return nil, err
			}
			sasl = true
			w.sr.restart()
			continue
		}
		if err := m.dialbackOut(w, p); err != nil {
			return nil, err
		}
		return m.ready(w, p, "dialback"), nil
	}
}

// externalOut is the initiating side of SASL EXTERNAL with our domain as
// authorization identity (XEP-0178 §3).
func (m *s2sManager) externalOut(w *s2sWire, p s2sPair) error {
	if err := w.writeString("<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>" + string(saslext.EncodeAuthzid(p.local)) + "</auth>"); err != nil {
		return err
	}
	for {
		var el element
		if err := w.sr.next(&el); err != nil {
			return fmt.Errorf("EXTERNAL: %w", err)
		}
		name := el.name.Local
		raw := string(el.raw)
		w.sr.release()
		switch name {
		case "success":
			return nil
		case "challenge":
			if err := w.writeString("<response xmlns='" + nsSASL + "'>=</response>"); err != nil {
				return err
			}
		case "failure":
			return fmt.Errorf("%w: %s", errExternalFailed, raw)
		default:
			return fmt.Errorf("EXTERNAL: unexpected %s", raw)
		}
	}
}

// dialbackOut is the originating server's part (XEP-0220 §2.1.1).
func (m *s2sManager) dialbackOut(w *s2sWire, p s2sPair) error {
	if w.peerID == "" {
		return errors.New("dialback: peer sent no stream id")
	}
	req := dialback.Element{Kind: dialback.Result, From: p.local, To: p.remote, Key: dialback.Key(m.srv.opts.DialbackSecret, p.remote, p.local, w.peerID)}
	b, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("dialback: %w", err)
	}
	if err := w.write(b); err != nil {
		return err
	}
	for {
		var el element
		if err := w.sr.next(&el); err != nil {
			return fmt.Errorf("dialback answer: %w", err)
		}
		ns := w.ns(&el)
		switch {
		case ns == nsDialback:
			e, err := dialback.Parse(el.raw)
			if err != nil {
				return fmt.Errorf("dialback answer: %w", err)
			}
			if e.Kind == dialback.Verify && e.Type == dialback.TypeRequest {
				if err := m.answerVerify(w, e); err != nil {
					return err
				}
				break
			}
			if e.Kind == dialback.Result && e.Answers(req) {
				switch e.Type {
				case dialback.TypeValid:
					w.sr.release()
					return nil
				case dialback.TypeInvalid:
					return &s2sError{cond: "remote-server-not-found", err: dialback.ErrInvalid}
				default:
					return &s2sError{cond: "remote-server-not-found", err: e.Err}
				}
			}
		case ns == nsStream && el.name.Local == "error":
			return fmt.Errorf("dialback: stream error %s", el.raw)
		}
		w.sr.release()
	}
}

func (m *s2sManager) answerVerify(w *s2sWire, req dialback.Element) error {
	b, err := m.authority.Answer(req).Marshal()
	if err != nil {
		return fmt.Errorf("dialback: %w", err)
	}
	return w.write(b)
}

// ready starts the reader of an authenticated outbound stream: it answers
// db:verify requests and notices when the peer ends the stream.
func (m *s2sManager) ready(w *s2sWire, p s2sPair, how string) *s2sOut {
	o := &s2sOut{wire: w, auth: how, dead: make(chan struct{}), since: time.Now()}
	log := m.log.With("domain", p.local, "peer", p.remote, "auth", how)
	go func() {
		defer close(o.dead)
		var el element
		for {
			if err := w.sr.next(&el); err != nil {
				log.Debug("s2s outbound stream ended", "err", err)
				return
			}
			switch {
			case w.ns(&el) == nsDialback && el.name.Local == "verify":
				if e, err := dialback.Parse(el.raw); err == nil && e.Type == dialback.TypeRequest {
					if err := m.answerVerify(w, e); err != nil {
						return
					}
				}
			case w.isStream(&el, "error"):
				log.Info("s2s peer sent stream error", "error", string(el.raw))
				return
			}
			w.sr.release()
		}
	}()
	return o
}

// s2sLink is the outbound link for one domain pair: a queue, and a
// goroutine that connects, sends the queue in order, and closes after
// S2SIdleTimeout without stanzas.
type s2sLink struct {
	m     *s2sManager
	pair  s2sPair
	log   *slog.Logger
	wake  chan struct{}
	space chan struct{} // signaled when the queue shrinks

	mu        sync.Mutex
	queue     [][]byte
	running   bool
	failUntil time.Time
	failErr   *s2sError
	backoff   time.Duration
	out       *s2sOut
}

// enqueue adds st to the queue. When the queue is full it waits up to
// Options.SendTimeout for room (back-pressure on the sender's stream, as
// for local recipients), then fails with resource-constraint.
func (l *s2sLink) enqueue(ctx context.Context, st Stanza) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.failUntil) {
		return l.failErr
	}
	if len(l.queue) >= l.m.srv.opts.S2SQueueLen {
		t := time.NewTimer(l.m.srv.opts.SendTimeout)
		defer t.Stop()
		for len(l.queue) >= l.m.srv.opts.S2SQueueLen {
			l.mu.Unlock()
			select {
			case <-l.space:
			case <-t.C:
				l.mu.Lock()
				return &s2sError{cond: "resource-constraint", err: fmt.Errorf("s2s queue to %s full", l.pair.remote)}
			case <-ctx.Done():
				l.mu.Lock()
				return &s2sError{cond: "resource-constraint", err: ctx.Err()}
			}
			l.mu.Lock()
			if time.Now().Before(l.failUntil) {
				return l.failErr
			}
		}
	}
	if !l.running {
		// Register the goroutine under the manager's lock, so that
		// shutdown never races with a new link starting.
		l.m.mu.Lock()
		closed := l.m.closed
		if !closed {
			l.m.wg.Add(1)
		}
		l.m.mu.Unlock()
		if closed {
			return &s2sError{cond: "remote-server-timeout", err: errors.New("shutting down")}
		}
		l.queue = append(l.queue, toServerNS(append([]byte(nil), st.Raw...)))
		l.running = true
		go l.run()
		return nil
	}
	l.queue = append(l.queue, toServerNS(append([]byte(nil), st.Raw...)))
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

func (l *s2sLink) run() {
	defer l.m.wg.Done()
	for {
		o, err := l.m.connect(l.m.ctx, l.pair, connectAuth)
		if err != nil {
			se := classify(err)
			l.mu.Lock()
			q := l.queue
			l.queue = nil
			l.backoff = min(max(2*l.backoff, s2sBackoffMin), s2sBackoffMax)
			l.failUntil = time.Now().Add(l.backoff)
			l.failErr = se
			l.running = false
			backoff := l.backoff
			l.mu.Unlock()
			l.log.Info("s2s outbound failed; bouncing queued stanzas", "condition", se.cond, "bounced", len(q), "retry_after", backoff, "err", err)
			for _, raw := range q {
				l.m.bounce(raw, se.cond)
			}
			return
		}
		l.mu.Lock()
		l.backoff, l.failErr, l.failUntil, l.out = 0, nil, time.Time{}, o
		l.mu.Unlock()
		l.log.Info("s2s outbound ready", "auth", o.auth)
		if !l.pump(o) {
			return
		}
	}
}

// again reports whether to reconnect after a stream ended: only when
// stanzas are waiting; otherwise the link stops until the next one.
func (l *s2sLink) again() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = nil
	if len(l.queue) == 0 {
		l.running = false
		return false
	}
	return true
}

// pump sends queued stanzas on o until the stream ends (true: reconnect)
// or the link stops (false).
func (l *s2sLink) pump(o *s2sOut) bool {
	idleAfter := l.m.srv.opts.S2SIdleTimeout
	idle := time.NewTimer(idleAfter)
	defer idle.Stop()
	for {
		for {
			l.mu.Lock()
			if len(l.queue) == 0 {
				l.mu.Unlock()
				break
			}
			raw := l.queue[0]
			l.mu.Unlock()
			select {
			case <-o.dead:
				o.wire.close("")
				return l.again()
			default:
			}
			if err := o.wire.write(raw); err != nil {
				l.log.Info("s2s outbound write failed; reconnecting", "err", err)
				o.wire.close("")
				return l.again()
			}
			l.mu.Lock()
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			select {
			case l.space <- struct{}{}:
			default:
			}
			idle.Reset(idleAfter)
		}
		select {
		case <-l.wake:
		case <-o.dead:
			l.log.Info("s2s outbound stream closed by peer")
			o.wire.close("")
			return l.again()
		case <-idle.C:
			l.mu.Lock()
			if len(l.queue) == 0 {
				l.running = false
				l.out = nil
				l.mu.Unlock()
				l.log.Debug("s2s outbound idle; closing")
				o.wire.close("")
				return false
			}
			l.mu.Unlock()
		case <-l.m.ctx.Done():
			o.wire.close("")
			l.mu.Lock()
			q := l.queue
			l.queue = nil
			l.out = nil
			l.mu.Unlock()
			for _, raw := range q {
				l.m.bounce(raw, "remote-server-timeout")
			}
			return false
		}
	}
}
