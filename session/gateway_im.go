package session

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"strings"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/session/sdp"
	"github.com/umpp/umpp/store"
)

// Instant messages (draft §4.1, RFC 7572).

// Deliver takes a stanza a local user (an XMPP client, or a SIMPLE client
// through Submit) sends to another domain: the XMPP host's Remote. Errors
// with a Condition() method are bounced to the sender by the XMPP host.
func (g *Gateway) Deliver(ctx context.Context, st Stanza) error {
	to, err := stanzaJID(st.To)
	if err != nil {
		return &StanzaError{Cond: CondJIDMalformed, Err: err}
	}
	switch m := g.mode(ctx, to.Domain); m {
	case ModeXMPP:
		return g.opts.XMPP.SendRemote(ctx, st)
	case ModeUMPP:
		return g.deliverUMPP(ctx, st, to)
	case ModeSIP:
		return g.deliverSIPPeer(ctx, st, to)
	default:
		return &StanzaError{Cond: CondRemoteServerNotFound, Text: "no XMPP or SIP service for " + to.Domain}
	}
}

// deliverUMPP sends a stanza to a user of a UMPP peer: chat messages in an
// IM session, presence by SIP (the roster observer subscribes; NOTIFYs
// carry the state), everything else over s2s directly.
func (g *Gateway) deliverUMPP(ctx context.Context, st Stanza, to addressing.Address) error {
	switch st.Name {
	case "message":
		if to.Local != "" && (st.Type == "" || st.Type == MessageChat || st.Type == MessageNormal) {
			return g.sendInSession(ctx, st, to)
		}
	case "presence":
		// Availability travels in NOTIFYs, subscription requests and
		// answers as SUBSCRIBEs and authorizations (draft §4.2).
		g.presenceToPeer(ctx, st)
		return nil
	}
	return g.opts.XMPP.SendRemote(ctx, st)
}

// sendInSession sends a message in the session of its (sender, recipient)
// pair, setting one up first when there is none.
func (g *Gateway) sendInSession(ctx context.Context, st Stanza, to addressing.Address) error {
	local, err := stanzaJID(st.From)
	if err != nil || local.IsBare() || local.Local == "" {
		return g.opts.XMPP.SendRemote(ctx, st) // from the server itself
	}
	remote := to.Bare()
	if s, err := g.table.Outgoing(ctx, local, remote); err == nil && s.Ready() {
		return g.sendSession(ctx, s, st.Raw)
	}
	b, err := g.table.Begin(ctx, local, remote, bytes.Clone(st.Raw))
	switch {
	case errors.Is(err, ErrTooManySessions), errors.Is(err, ErrQueueFull):
		return &StanzaError{Cond: CondResourceConstraint, Err: err}
	case errors.Is(err, ErrTableClosed):
		return &StanzaError{Cond: CondServiceUnavailable, Err: err}
	case err != nil:
		return &StanzaError{Cond: CondInternalServerError, Err: err}
	}
	if b.Created {
		g.startSetup(b.Session)
	}
	if !b.Queued {
		return g.sendSession(ctx, b.Session, st.Raw)
	}
	return nil
}

// sendSession writes a message into an established session: to the
// remote full JID of the answer, with the session's thread.
func (g *Gateway) sendSession(ctx context.Context, s Session, raw []byte) error {
	from, to := s.Local.String(), s.Remote.String()
	out, ok := retarget(raw, from, to, s.Thread)
	if !ok {
		m, err := ParseXMPPMessage(inClientNS(raw))
		if err != nil {
			return &StanzaError{Cond: CondBadRequest, Err: err}
		}
		m.From, m.To, m.Thread = s.Local, s.Remote, s.Thread
		out = m.XMPP("")
	}
	_ = g.table.Touch(ctx, s.Thread)
	err := g.opts.XMPP.SendRemote(ctx, Stanza{Name: "message", From: from, To: to, Raw: out})
	if err == nil {
		g.countRouted(g.pathFrom(s.Local, "xmpp"))
	}
	return err
}

// pathFrom is the metrics path of a message from local to a side.
func (g *Gateway) pathFrom(local addressing.Address, to string) string {
	if local.Resource == g.opts.SIPResource {
		return "sip->" + to
	}
	return "xmpp->" + to
}

// startSetup sends the INVITE of a new outbound session in the background.
func (g *Gateway) startSetup(s Session) {
	su := &setup{done: make(chan struct{})}
	g.mu.Lock()
	g.setups[s.Thread] = su
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.runSetup(s, su)
	}()
}

// host is the XMPP host name for the SDP of a user of domain.
func (g *Gateway) host(domain string) string {
	if g.opts.Host != "" {
		return g.opts.Host
	}
	return domain
}

func (g *Gateway) runSetup(s Session, su *setup) {
	defer func() {
		g.mu.Lock()
		delete(g.setups, s.Thread)
		g.mu.Unlock()
		close(su.done)
	}()
	ctx, cancel := context.WithTimeout(g.ctx, g.opts.SetupTimeout)
	defer cancel()
	offer := sdp.XMPPSession{
		ConnAddr: g.host(s.Local.Domain), Port: g.opts.Port, Kind: "chat",
		JID: s.Local.String(), Thread: s.Thread, Direction: "both",
	}
	log := g.log.With("thread", s.Thread, "local", s.Local.String(), "remote", s.Remote.Bare().String())
	dlg, ans, err := g.opts.SIP.Invite(ctx, s.Local.Bare(), s.Remote.Bare(), offer)
	if err != nil {
		code, cond, reason := sipStatusOf(err), "", EndRejected
		switch {
		case code > 0:
			cond = ConditionForSIPStatus(code)
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			code, cond, reason = 408, CondRemoteServerTimeout, EndPeerFailure
		default:
			// No answer from any server (refused, unreachable): a
			// transport error, 503 (RFC 3261 §8.1.3.1).
			code, cond, reason = 503, CondRemoteServerNotFound, EndPeerFailure
		}
		log.Warn("session setup failed", "status", code, "condition", cond, "error", err)
		su.code, su.cond = code, cond
		g.end(g.ctx, s.Thread, reason, cond)
		return
	}
	remote, perr := addressing.ParseJID(ans.JID)
	if perr != nil || remote.IsBare() || remote.Bare() != s.Remote.Bare() {
		log.Warn("session answer names another user, hanging up", "jid", ans.JID)
		_ = g.opts.SIP.Hangup(ctx, dlg.ID)
		su.code, su.cond = 488, CondNotAcceptable
		g.end(g.ctx, s.Thread, EndRejected, CondNotAcceptable)
		return
	}
	msgs, err := g.table.Established(g.ctx, s.Thread, remote, dlg.ID, dlg.CallID)
	if err != nil {
		log.Info("session ended during setup", "error", err)
		_ = g.opts.SIP.Hangup(ctx, dlg.ID)
		g.bounceAll(msgs, CondServiceUnavailable)
		su.code, su.cond = 503, CondServiceUnavailable
		return
	}
	if g.opts.Metrics != nil {
		g.opts.Metrics.SessionStarted()
	}
	log.Info("session established", "remote_jid", remote.String(), "dialog", dlg.CallID)
	s.Remote, s.DialogID, s.CallID, s.State = remote, dlg.ID, dlg.CallID, StateEstablished
	for len(msgs) > 0 && err == nil {
		for _, m := range msgs {
			if serr := g.sendSession(g.ctx, s, m); serr != nil {
				g.bounce(m, conditionOr(serr, CondServiceUnavailable))
			}
		}
		msgs, err = g.table.Drain(g.ctx, s.Thread)
	}
	if len(msgs) > 0 {
		g.bounceAll(msgs, CondServiceUnavailable)
	}
}

func conditionOr(err error, def string) string {
	if c := conditionOf(err); c != "" {
		return c
	}
	return def
}

// end ends a session by thread and deals with what was still queued (see
// ended).
func (g *Gateway) end(ctx context.Context, thread string, reason EndReason, cond string) {
	s, left, err := g.table.End(ctx, thread, reason)
	if err != nil {
		return
	}
	g.ended(s, reason, left, cond)
}

// ended follows the end of a session: messages still queued bounce with
// cond, or the reason's condition when cond is "", or are sent again
// through a new session after bye and idle.
func (g *Gateway) ended(s Session, reason EndReason, left [][]byte, cond string) {
	if s.DialogID != "" && g.opts.Metrics != nil && (s.Direction == Inbound || reason != EndRejected) {
		g.opts.Metrics.SessionEnded(metricReason(reason))
	}
	g.log.Info("session ended", "thread", s.Thread, "local", s.Local.String(), "remote", s.Remote.String(), "reason", string(reason), "queued", len(left))
	c := cmp.Or(cond, reason.BounceCondition())
	if c != "" {
		g.bounceAll(left, c)
		return
	}
	for _, raw := range left { // never offered: open a new session
		m, err := ParseXMPPMessage(inClientNS(raw))
		if err != nil {
			continue
		}
		st := Stanza{Name: "message", From: m.From.String(), To: m.To.String(), Type: m.Type, ID: m.ID, Raw: raw}
		if err := g.sendInSession(g.ctx, st, m.To); err != nil {
			g.bounce(raw, conditionOr(err, CondServiceUnavailable))
		}
	}
}

func metricReason(r EndReason) string {
	switch r {
	case EndPeerFailure:
		return "error"
	default:
		return string(r)
	}
}

// bounceAll returns each message to its sender with an error.
func (g *Gateway) bounceAll(msgs [][]byte, cond string) {
	for _, m := range msgs {
		g.bounce(m, cond)
	}
}

// bounce returns a message its local sender sent to a remote user, as an
// error from that user (RFC 6120 §8.3).
func (g *Gateway) bounce(raw []byte, cond string) {
	m, err := ParseXMPPMessage(inClientNS(raw))
	if err != nil || m.Type == MessageError || m.To.Domain == "" || g.isLocal(m.To.Domain) {
		return
	}
	g.countFailed(cond)
	b := errorStanza("message", m.To.String(), m.From.String(), m.ID, cond)
	if err := g.opts.XMPP.Receive(g.ctx, b); err != nil {
		g.log.Debug("bounce failed", "to", m.From.String(), "error", err)
	}
}

// errorStanza writes an error reply (RFC 6120 §8.3.1).
func errorStanza(name, from, to, id, cond string) []byte {
	var w bytes.Buffer
	w.WriteString("<" + name)
	msgAttr(&w, "from", from)
	msgAttr(&w, "to", to)
	w.WriteString(` type="error"`)
	msgAttr(&w, "id", id)
	w.WriteString(`><error type="` + errorType(cond) + `"><` + cond + ` xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></` + name + ">")
	return w.Bytes()
}

// errorType is the error type RFC 6120 §8.3.3 gives a condition.
func errorType(cond string) string {
	switch cond {
	case CondBadRequest, CondJIDMalformed, CondNotAcceptable, CondPolicyViolation, CondRedirect:
		return "modify"
	case CondForbidden, CondNotAuthorized, CondRegistrationRequired, CondSubscriptionRequired:
		return "auth"
	case CondRecipientUnavailable, CondRemoteServerTimeout, CondResourceConstraint, CondUnexpectedRequest:
		return "wait"
	}
	return "cancel"
}

// Offer is an inbound INVITE offering an XMPP message session.
type Offer struct {
	DialogID, CallID string
	// From is the SIP From (the remote user); Target the local user of
	// the Request-URI.
	From, Target addressing.Address
	Session      sdp.XMPPSession
	ReInvite     bool
}

// Answer is the gateway's acceptance: our full JID and XMPP host.
type Answer struct {
	JID  string
	Host string
	Port int
}

// Offer answers an inbound session offer (draft §4.1, passive side): the
// session binds the offered thread to the local user's best resource.
// Errors carry the SIP status (SIPStatus()).
func (g *Gateway) Offer(ctx context.Context, o Offer) (Answer, error) {
	if o.Session.Kind == "groupchat" {
		return Answer{}, &SIPStatusError{488, "Not Acceptable Here - not a chat room"}
	}
	target := o.Target.Bare()
	if !g.isLocal(target.Domain) || target.Local == "" {
		return Answer{}, &SIPStatusError{404, "Not Found"}
	}
	remote, err := addressing.ParseJID(o.Session.JID)
	if err != nil || remote.IsBare() || remote.Local == "" {
		return Answer{}, &SIPStatusError{488, "Not Acceptable Here - a=jid is not a full JID"}
	}
	if remote.Domain != o.From.Domain || remote.Local != o.From.Local {
		return Answer{}, &SIPStatusError{403, "Forbidden - a=jid is not the sender"}
	}
	if o.Session.Thread == "" || len(o.Session.Thread) > MaxThreadLen {
		return Answer{}, &SIPStatusError{488, "Not Acceptable Here - no a=thread"}
	}
	if o.ReInvite {
		s, err := g.table.ByDialog(ctx, o.DialogID)
		if err != nil {
			return Answer{}, &SIPStatusError{481, "Call/Transaction Does Not Exist"}
		}
		return Answer{JID: s.Local.String(), Host: g.host(target.Domain), Port: g.opts.Port}, nil
	}
	if _, err := g.opts.Users.User(ctx, target.BareJID()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Answer{}, &SIPStatusError{404, "Not Found"}
		}
		return Answer{}, err
	}
	local, ok := g.pickResource(ctx, target)
	if !ok {
		return Answer{}, &SIPStatusError{480, "Temporarily Unavailable"}
	}
	_, err = g.table.Accept(ctx, InboundSetup{Thread: o.Session.Thread, Local: local, Remote: remote, DialogID: o.DialogID, CallID: o.CallID})
	switch {
	case errors.Is(err, ErrTooManySessions):
		return Answer{}, &SIPStatusError{503, "Service Unavailable - too many sessions"}
	case errors.Is(err, ErrSessionConflict):
		return Answer{}, &SIPStatusError{488, "Not Acceptable Here - thread in use"}
	case errors.Is(err, ErrTableClosed):
		return Answer{}, &SIPStatusError{503, "Service Unavailable"}
	case err != nil:
		return Answer{}, err
	}
	if _, err := g.table.Established(ctx, o.Session.Thread, remote, o.DialogID, o.CallID); err != nil {
		return Answer{}, err
	}
	if g.opts.Metrics != nil {
		g.opts.Metrics.SessionStarted()
	}
	g.log.Info("session accepted", "thread", o.Session.Thread, "local", local.String(), "remote", remote.String(), "dialog", o.CallID)
	return Answer{JID: local.String(), Host: g.host(target.Domain), Port: g.opts.Port}, nil
}

// pickResource chooses the local full JID of an inbound session: the
// available resource of highest priority (XMPP clients and the SIP
// resource alike).
func (g *Gateway) pickResource(ctx context.Context, user addressing.Address) (addressing.Address, bool) {
	best, bestPrio := "", -1
	for _, r := range g.opts.XMPP.Resources(user.BareJID()) {
		if r.Available && r.Priority > bestPrio {
			best, bestPrio = r.JID, r.Priority
		}
	}
	if best == "" && g.opts.SIP.Registered(ctx, user.BareJID()) {
		g.ensureEndpoint(user.BareJID())
		best = user.BareJID() + "/" + g.opts.SIPResource
	}
	if best == "" {
		return addressing.Address{}, false
	}
	a, err := addressing.ParseJID(best)
	return a, err == nil
}

// Ended reports the end of an INVITE dialog (the SIP server's
// SessionHandler.Ended): "bye" or "hangup", "shutdown", or a failure.
func (g *Gateway) Ended(ctx context.Context, dialogID, _ string, reason string) {
	r := EndPeerFailure
	switch reason {
	case "bye", "hangup":
		r = EndBye
	case "shutdown":
		r = EndShutdown
	}
	s, left, err := g.table.EndDialog(ctx, dialogID, r)
	if err != nil {
		return
	}
	g.ended(s, r, left, "")
}

// RemoteMessage keeps the session of a message that arrived over s2s
// alive (xmppside's MessageObserver).
func (g *Gateway) RemoteMessage(_, _ string, thread []byte) {
	if len(thread) > 0 {
		_ = g.table.Touch(g.ctx, string(thread))
	}
}

// SIPInbound is a SIP MESSAGE the SIP server hands the gateway: from a
// local SIMPLE user to another domain or to a local user with no SIP
// contact, or from a peer domain's user to a local user with no SIP
// contact (Peer).
type SIPInbound struct {
	// Sender is the authenticated sender (bare).
	Sender addressing.Address
	Peer   bool
	Msg    SIPMessage
}

// DeliverSIP delivers a SIP MESSAGE on the XMPP side (RFC 7572) and
// returns the SIP status for the sender: 200 when a local resource took
// it, 202 when it went to another domain (its delivery is not
// confirmed), or the mapped error.
func (g *Gateway) DeliverSIP(ctx context.Context, in SIPInbound) (int, string) {
	m, err := FromSIPMessage(in.Msg)
	if err != nil {
		code := SIPStatusForMessageError(err)
		return code, reasonPhrase(code)
	}
	target := in.Msg.To.Bare()
	m.To = target
	if in.Peer {
		if !g.isLocal(target.Domain) {
			return 403, "Forbidden - Relaying denied"
		}
		if _, err := g.opts.Users.User(ctx, target.BareJID()); err != nil {
			return 404, "Not Found"
		}
		m.From = in.Sender.Bare()
		if err := g.opts.XMPP.Receive(ctx, m.XMPP("")); err != nil {
			g.log.Warn("peer message refused", "from", in.Sender.BareJID(), "error", err)
			return 500, "Server Internal Error"
		}
		g.countRouted("sip->xmpp")
		return 200, "OK"
	}
	from := in.Sender.Bare()
	from.Resource = g.opts.SIPResource
	m.From = from
	if err := g.opts.XMPP.Submit(ctx, from.String(), m.XMPP("")); err != nil {
		return g.sipStatusFor(err)
	}
	if g.isLocal(target.Domain) {
		g.countRouted("sip->xmpp")
		return 200, "OK"
	}
	// A UMPP peer: wait for the session's setup so that a failure reaches
	// the sender as the INVITE's status.
	if s, err := g.table.Outgoing(ctx, from, target); err == nil && s.State == StateSettingUp {
		g.mu.Lock()
		su := g.setups[s.Thread]
		g.mu.Unlock()
		if su != nil {
			select {
			case <-su.done:
				if su.code != 0 {
					return su.code, reasonPhrase(su.code)
				}
			case <-ctx.Done():
				return 408, "Request Timeout"
			}
		}
	}
	return 202, "Accepted"
}

// sipStatusFor maps an XMPP-side delivery error to a SIP status
// (RFC 7247 §7).
func (g *Gateway) sipStatusFor(err error) (int, string) {
	if c := sipStatusOf(err); c != 0 {
		return c, reasonPhrase(c)
	}
	cond := conditionOf(err)
	if cond == "" {
		g.log.Warn("message delivery failed", "error", err)
		return 500, "Server Internal Error"
	}
	g.countFailed(cond)
	code := SIPStatusForCondition(cond, true)
	return code, reasonPhrase(code)
}

// deliverSIPPeer sends a stanza to a user of a SIMPLE-only domain: a
// message as SIP MESSAGE (in the order sent), presence is carried by the
// SUBSCRIBEs the roster observer starts; the rest has no SIP form.
func (g *Gateway) deliverSIPPeer(ctx context.Context, st Stanza, to addressing.Address) error {
	g.presenceToPeer(ctx, st)
	switch {
	case st.Name != "message" || st.Type == MessageError:
		return nil
	case st.Type == MessageGroupchat:
		return &StanzaError{Cond: CondServiceUnavailable}
	}
	m, err := ParseXMPPMessage(inClientNS(st.Raw))
	if err != nil {
		return &StanzaError{Cond: CondBadRequest, Err: err}
	}
	sm := m.SIP()
	if sm.ContentType == "" {
		return nil // a receipt or another thing SIP cannot carry
	}
	from := m.From
	send := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, g.opts.SetupTimeout)
		defer cancel()
		return g.opts.SIP.SendMessage(ctx, from.Bare(), to.Bare(), sm.ContentType, sm.Body)
	}
	if from.Resource == g.opts.SIPResource {
		// From a SIMPLE client: its MESSAGE transaction waits for this.
		if err := send(ctx); err != nil {
			return g.sipError(err)
		}
		g.countRouted("sip->sip")
		return nil
	}
	raw := bytes.Clone(st.Raw)
	return g.lane(to.BareJID(), func(ctx context.Context) {
		if err := send(ctx); err != nil {
			g.log.Info("message to SIP peer failed", "from", from.String(), "to", to.BareJID(), "error", err)
			g.bounce(raw, conditionOr(g.sipError(err), CondServiceUnavailable))
			return
		}
		g.countRouted("xmpp->sip")
	})
}

// sipError turns a SIP failure into a stanza error (RFC 7247 §7).
func (g *Gateway) sipError(err error) error {
	if c := sipStatusOf(err); c != 0 {
		return &StanzaError{Cond: ConditionForSIPStatus(c), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &StanzaError{Cond: CondRemoteServerTimeout, Err: err}
	}
	return &StanzaError{Cond: CondRemoteServerNotFound, Err: err}
}

// reasonPhrase is RFC 3261's phrase for the codes the gateway answers.
func reasonPhrase(code int) string {
	if p, ok := phrases[code]; ok {
		return p
	}
	switch {
	case code < 300:
		return "OK"
	case code < 500:
		return "Request Failure"
	case code < 600:
		return "Server Failure"
	}
	return "Global Failure"
}

var phrases = map[int]string{
	200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
	415: "Unsupported Media Type", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
	486: "Busy Here", 488: "Not Acceptable Here", 500: "Server Internal Error", 501: "Not Implemented",
	502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out", 603: "Decline", 604: "Does Not Exist Anywhere",
}

// bareOfJID cuts the resource off a JID string.
func bareOfJID(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}
