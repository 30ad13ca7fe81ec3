package sipside

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
)

// OutMessage is a pager-mode MESSAGE the gateway sends.
type OutMessage struct {
	From, To    addressing.Address // From: a user of one of our domains (bare), or of any domain when To is local; To: a local user or a user of another domain
	ContentType string             // e.g. "text/plain;charset=UTF-8", "message/cpim", "application/im-iscomposing+xml"
	Body        []byte
}

// SendMessage sends a pager-mode MESSAGE (RFC 3428), as the gateway does
// for XMPP messages to SIP users. From and To are sent as sip: URIs of
// their bare addresses. From must be a user of ours, except toward a
// local user: then it may be any user whose message the gateway relays
// (an XMPP user of another domain, say).
//
// To a user of one of our domains, it is forked to every registered
// contact, as a received MESSAGE is: nil when one answers 2xx;
// ErrNoSuchUser for an unknown account, ErrOffline when the user has no
// registered contact; else a *StatusError with the best final answer
// (RFC 3261 §16.7), or 480 when none answered.
//
// To a user of another domain, it goes to that domain's SIP servers
// (Options.Resolver, RFC 3263), tried in order while sending fails:
// nil on 2xx, a *StatusError with the final status otherwise. Failures
// without an answer are StatusErrors too: 404 when the domain publishes
// no SIP server (as Invite), 503 when its servers cannot be resolved or
// none can be reached, 408 when the time ran out (ctx, and at most
// Options.ForwardTimeout in all). Errors wrap the *StatusError (use
// errors.As).
//
// Metrics: like the other requests this server originates (Invite,
// NOTIFY), a sent MESSAGE is not counted here; the caller counts the
// delivery by its path (e.g. xmpp->sip).
func (s *Server) SendMessage(ctx context.Context, m OutMessage) error {
	if s.client == nil {
		return errors.New("sipside: send message: not listening")
	}
	// Toward another domain the sender must be ours; to a local user the
	// gateway also relays messages from other domains' users (their
	// sessions' XMPP stanzas), with the sender as From.
	if m.From.Local == "" || (!s.domains[m.From.Domain] && !s.domains[m.To.Domain]) {
		return fmt.Errorf("sipside: send message: %s is not a user of ours", m.From.BareJID())
	}
	if m.To.Local == "" || m.To.Domain == "" {
		return errors.New("sipside: send message: no recipient")
	}
	var fromURI, toURI sip.Uri
	if err := sip.ParseUri(m.From.Bare().SIP(), &fromURI); err != nil {
		return fmt.Errorf("sipside: send message: from: %w", err)
	}
	if err := sip.ParseUri(m.To.Bare().SIP(), &toURI); err != nil {
		return fmt.Errorf("sipside: send message: to: %w", err)
	}
	if len(m.Body) > s.opts.MaxMessageBytes {
		return fmt.Errorf("sipside: send message %s: %w", m.To.BareJID(), &StatusError{Code: 413, Reason: "Request Entity Too Large"})
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	var err error
	if s.domains[m.To.Domain] {
		err = s.sendLocal(ctx, m, fromURI, toURI)
	} else {
		err = s.sendRemote(ctx, m, fromURI, toURI)
	}
	if err != nil {
		return fmt.Errorf("sipside: send message %s: %w", m.To.BareJID(), err)
	}
	return nil
}

// sendLocal forks m to the registered contacts of a local user.
func (s *Server) sendLocal(ctx context.Context, m OutMessage, fromURI, toURI sip.Uri) error {
	target := m.To.BareJID()
	exists, err := s.userExists(ctx, target)
	if err != nil {
		return err
	}
	if !exists {
		return ErrNoSuchUser
	}
	bindings, err := s.regs.Bindings(ctx, target)
	if err != nil {
		return fmt.Errorf("bindings: %w", err)
	}
	if len(bindings) == 0 {
		return ErrOffline
	}
	pr := pagerRequest{from: fromURI, to: toURI, maxForwards: 70, body: m.Body}
	if m.ContentType != "" {
		pr.headers = append(pr.headers, sip.NewHeader("Content-Type", m.ContentType))
	}
	r := s.fork(ctx, pr, bindings)
	switch {
	case r.ok:
		return nil
	case r.code == 0:
		return &StatusError{Code: 480, Reason: "Temporarily Unavailable"}
	}
	return &StatusError{Code: r.code, Reason: r.reason}
}

// sendRemote sends m to the SIP servers of another domain.
func (s *Server) sendRemote(ctx context.Context, m OutMessage, fromURI, toURI sip.Uri) error {
	if s.opts.Resolver == nil {
		return errors.New("no resolver")
	}
	targets, err := s.opts.Resolver.ResolveSIP(ctx, m.To.Domain)
	if err != nil {
		if ctx.Err() != nil {
			return &StatusError{Code: 408, Reason: "Request Timeout"}
		}
		return fmt.Errorf("resolve %s: %w: %w", m.To.Domain, &StatusError{Code: 503, Reason: "Service Unavailable"}, err)
	}
	callID := newTag() + newTag() + "@" + s.sdpHost(m.From.Domain)
	tag := newTag()
	var last error
	tried := 0
	for _, t := range targets {
		if t.Protocol != "" && t.Protocol != addressing.ProtocolSIP {
			continue
		}
		tried++
		res, err := s.sendOne(ctx, m, fromURI, toURI, callID, tag, t)
		if err == nil {
			if res.StatusCode >= 200 && res.StatusCode < 300 {
				return nil
			}
			return &StatusError{Code: res.StatusCode, Reason: res.Reason}
		}
		last = err
		if ctx.Err() != nil {
			break
		}
		s.log.Debug("message target failed", "target", t.String(), "error", err)
	}
	switch {
	case tried == 0:
		return &StatusError{Code: 404, Reason: "No SIP server for " + m.To.Domain}
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return ctx.Err() //nolint:wrapcheck // wrapped by SendMessage
	case ctx.Err() != nil || errors.Is(last, sip.ErrTransactionTimeout):
		return fmt.Errorf("%w: %w", &StatusError{Code: 408, Reason: "Request Timeout"}, last)
	}
	return fmt.Errorf("%w: %w", &StatusError{Code: 503, Reason: "Service Unavailable"}, last)
}

// sendOne sends the MESSAGE to one server; every attempt is a new
// transaction of the same request (same Call-ID, From tag and CSeq,
// RFC 3263 §4.3).
func (s *Server) sendOne(ctx context.Context, m OutMessage, fromURI, toURI sip.Uri, callID, tag string, t addressing.Target) (*sip.Response, error) {
	req := sip.NewRequest(sip.MESSAGE, toURI)
	from := &sip.FromHeader{Address: fromURI, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: toURI, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	if m.ContentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", m.ContentType))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", s.opts.UserAgent))
	req.SetBody(m.Body)
	tp := strings.ToLower(t.Transport)
	if tp == "" {
		tp = "udp"
	}
	req.SetTransport(strings.ToUpper(tp))
	req.SetDestination(net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("to %s: %w", t.String(), err)
	}
	return res, nil
}
