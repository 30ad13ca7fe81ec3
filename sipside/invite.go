package sipside

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/session/sdp"
	"github.com/umpp/umpp/store"
)

// INVITE sessions of XMPP messages (draft-mahy-impp-unified-proposal §4.1),
// UAS side: an offer "m=message <port> xmpp/tcp chat" for a local user is
// handed to the SessionHandler, whose answer (our full JID and XMPP
// server) goes back in a 200 OK; ACK confirms the dialog, BYE from either
// side ends it, CANCEL before the answer ends the attempt with 487, and a
// re-INVITE in a confirmed dialog is a new offer.

// InviteOffer is an inbound session offer handed to a SessionHandler.
type InviteOffer struct {
	// DialogID names the dialog (Call-ID, our tag, their tag); pass it to
	// Server.Hangup to end the session from our side.
	DialogID string
	CallID   string
	// From is the remote user (the SIP From) and To the SIP To header.
	From, To addressing.Address
	// RequestURI is the local user the offer is for: the Request-URI
	// (the To header names the same user in the draft; the Request-URI
	// decides).
	RequestURI addressing.Address
	// Session is the offered XMPP message stream: the remote full JID,
	// thread, kind ("chat" or "groupchat"), direction and XMPP host.
	Session sdp.XMPPSession
	// SDP is the whole offer.
	SDP *sdp.Description
	// ReInvite is true for a new offer in an established dialog.
	ReInvite bool
	// Peer is the remote SIP address (host:port) and Transport the SIP
	// transport the offer came over, for logs and policy.
	Peer, Transport string
}

// InviteAnswer is a SessionHandler's acceptance of an offer.
type InviteAnswer struct {
	// JID is the local full JID of the session (a=jid), e.g.
	// juliet@thecappulets.example.com/balcony.
	JID string
	// Host and Port are where our XMPP server takes the messages (c= and
	// the m= port): our s2s host name and port.
	Host string
	Port int
	// Direction overrides the answer's a=direction ("" lets the SDP
	// package pick: passive for both/active offers, active for passive).
	Direction string
}

// SessionHandler is what sipside needs from the session layer for
// inbound INVITEs. package session implements it (through an adapter in
// cmd/umppd). Offer may block; its context ends when the INVITE is
// cancelled or the server stops.
type SessionHandler interface {
	// Offer decides on an offer. Errors map to SIP statuses: ErrOffline
	// 480, ErrNotRoom 488, ErrRefused 403, ErrNoSuchUser 404, an error
	// with a SIPStatus() (int, string) method that status, anything else
	// 500.
	Offer(ctx context.Context, o InviteOffer) (InviteAnswer, error)
	// Ended reports that an established session is over, inbound (an
	// Offer accepted) or outbound (Server.Invite succeeded): reason is
	// "bye" (the peer hung up), "hangup" (we did), "cancel", "no-ack",
	// "error" or "shutdown". It is called once per session.
	Ended(ctx context.Context, dialogID, callID, reason string)
}

// Errors a SessionHandler returns to choose the INVITE's status.
var (
	ErrOffline    = errors.New("sipside: user has no session endpoint")   // 480
	ErrNotRoom    = errors.New("sipside: groupchat target is not a room") // 488
	ErrRefused    = errors.New("sipside: refused by policy")              // 403
	ErrNoSuchUser = errors.New("sipside: no such user")                   // 404
)

// StatusError is a final SIP response other than 2xx to a request we
// sent, or a status a handler wants sent.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("sipside: %d %s", e.Code, e.Reason)
}

// SIPStatus returns the status and reason.
func (e *StatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

// statusForOffer maps a SessionHandler error to a SIP status.
func statusForOffer(err error) (int, string) {
	var st interface{ SIPStatus() (int, string) }
	switch {
	case errors.Is(err, ErrOffline):
		return 480, "Temporarily Unavailable"
	case errors.Is(err, ErrNotRoom):
		return 488, "Not Acceptable Here"
	case errors.Is(err, ErrRefused):
		return 403, "Forbidden"
	case errors.Is(err, ErrNoSuchUser):
		return 404, "Not Found"
	case errors.As(err, &st):
		code, reason := st.SIPStatus()
		if code >= 300 && code <= 699 {
			return code, reason
		}
	}
	return 500, "Server Internal Error"
}

// handleInviteRequest is the INVITE entry point from handle.
func (s *Server) handleInviteRequest(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, local, toTag bool) {
	if toTag {
		s.handleReInvite(ctx, req, tx)
		return
	}
	if !local {
		s.reply(req, tx, 404, "Not Found")
		return
	}
	if h := req.GetHeader("Accept"); h != nil && !acceptsType(h.Value(), "application/sdp") {
		s.reply(req, tx, 406, "Not Acceptable", sip.NewHeader("Warning", `399 `+s.opts.Domains[0]+` "only application/sdp bodies are produced"`))
		return
	}
	target, ok := addressOf(req.Recipient)
	if !ok {
		s.reply(req, tx, 404, "Not Found")
		return
	}
	if _, err := s.opts.Users.User(ctx, target.BareJID()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.reply(req, tx, 404, "Not Found")
			return
		}
		s.log.Error("user lookup failed", "call_id", callID(req), "method", "INVITE", "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return
	}
	// The user is looked up first, as RFC 4475's torture tests expect
	// (404 for an unknown user whoever asks), then the sender.
	from, ok := s.inviteSender(ctx, req, tx)
	if !ok {
		return
	}
	offer, sess, ok := s.readOffer(req, tx)
	if !ok {
		return
	}
	if s.opts.Sessions == nil {
		s.reply(req, tx, 480, "Temporarily Unavailable")
		return
	}
	fromTag, _ := req.From().Params.Get("tag")
	if fromTag == "" {
		s.reply(req, tx, 400, "Bad Request - From tag required")
		return
	}
	contact := req.Contact()
	if contact == nil {
		s.reply(req, tx, 400, "Bad Request - Missing Contact")
		return
	}
	to, _ := addressOf(req.To().Address)
	if to == (addressing.Address{}) {
		to = target
	}
	d := &Dialog{
		s:          s,
		CallID:     callID(req),
		LocalTag:   newTag(),
		RemoteTag:  fromTag,
		Local:      target.Bare(),
		Remote:     from,
		localURI:   req.To().Address,
		remoteURI:  req.From().Address,
		localName:  req.To().DisplayName,
		remoteName: req.From().DisplayName,
		target:     contact.Address,
		transport:  req.Transport(),
		source:     req.Source(),
		localCSeq:  uint32(time.Now().UnixNano()&0x7fff) + 1,
		remoteCSeq: req.CSeq().SeqNo,
		acked:      make(chan struct{}),
		uas:        true,
	}
	d.ID = dialogKey(d.CallID, d.LocalTag, d.RemoteTag)
	if !s.dialogs.add(d) {
		s.reply(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
		return
	}

	// CANCEL (sipgo answers it 200 and the INVITE 487) ends the offer's
	// context.
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	cancelled := make(chan struct{})
	if !tx.OnCancel(func(*sip.Request) {
		close(cancelled)
		cancel()
	}) {
		// Cancelled (or gone) before we could listen: sipgo answered.
		s.dialogs.remove(d.ID)
		return
	}
	o := InviteOffer{
		DialogID: d.ID, CallID: d.CallID, From: from, To: to, RequestURI: target,
		Session: sess, SDP: offer, Peer: req.Source(), Transport: req.Transport(),
	}
	ans, err := s.opts.Sessions.Offer(octx, o)
	select {
	case <-cancelled:
		s.dialogs.remove(d.ID)
		if err == nil {
			s.opts.Sessions.Ended(s.detached(), d.ID, d.CallID, "cancel")
		}
		s.log.Debug("invite cancelled", "call_id", d.CallID, "peer", req.Source())
		return
	default:
	}
	if err != nil {
		s.dialogs.remove(d.ID)
		if ctx.Err() != nil {
			// The server is stopping.
			s.reply(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
			return
		}
		code, reason := statusForOffer(err)
		if code >= 500 {
			s.log.Error("session offer failed", "call_id", d.CallID, "user", target.BareJID(), "error", err)
		}
		s.reply(req, tx, code, reason)
		return
	}
	body, err := s.answerFor(d, offer, ans)
	if err != nil {
		s.dialogs.remove(d.ID)
		s.opts.Sessions.Ended(s.detached(), d.ID, d.CallID, "error")
		s.log.Error("session answer", "call_id", d.CallID, "user", target.BareJID(), "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return
	}
	d.mu.Lock()
	d.accepted = true
	d.mu.Unlock()
	res := s.answerResponse(req, d, body)
	s.respond(req, tx, res)
	s.log.Debug("session accepted", "call_id", d.CallID, "user", target.BareJID(), "jid", ans.JID, "peer", req.Source())
	s.awaitAck(req, tx, res, d)
}

// inviteSender checks who may INVITE a local user: a peer domain's server
// (PeerPolicy) once it proved its domain (peer.go), a local user after
// digest authentication. Others get
// 403 (no open relay, RFC 3261 §26.3.2.2).
func (s *Server) inviteSender(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (addressing.Address, bool) {
	from, ok := addressOf(req.From().Address)
	if !ok {
		s.reply(req, tx, 400, "Bad Request - From")
		return addressing.Address{}, false
	}
	switch {
	case s.isPeerDomain(from.Domain):
		if !s.authenticatePeer(ctx, req, tx, from.Domain) {
			return addressing.Address{}, false
		}
		return from, true
	case s.domains[from.Domain]:
		sender, ok := s.requireAuth(ctx, req, tx, from.Domain, false)
		if !ok {
			return addressing.Address{}, false
		}
		if sender != from.BareJID() {
			s.reply(req, tx, 403, "Forbidden - From does not match credentials")
			return addressing.Address{}, false
		}
		return from, true
	default:
		s.reply(req, tx, 403, "Forbidden - Sender domain is not a peer")
		return addressing.Address{}, false
	}
}

// readOffer parses the INVITE's SDP: 415 for a body that is not SDP, 488
// for SDP without a usable xmpp/tcp message stream.
func (s *Server) readOffer(req *sip.Request, tx sip.ServerTransaction) (*sdp.Description, sdp.XMPPSession, bool) {
	warn := func(code int, text string) sip.Header {
		return sip.NewHeader("Warning", strconv.Itoa(code)+" "+s.opts.Domains[0]+" "+strconv.Quote(text))
	}
	body := req.Body()
	if len(body) == 0 {
		// An offer in the 200 and the answer in ACK (RFC 3264 §4) is
		// not supported: the draft always offers in the INVITE.
		s.reply(req, tx, 488, "Not Acceptable Here", warn(399, "an SDP offer is required"))
		return nil, sdp.XMPPSession{}, false
	}
	if h := req.ContentType(); h == nil || mediaType(h.Value()) != "application/sdp" {
		s.reply(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
		return nil, sdp.XMPPSession{}, false
	}
	offer, err := sdp.Parse(body)
	if errors.Is(err, sdp.ErrNotSDP) {
		s.reply(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
		return nil, sdp.XMPPSession{}, false
	}
	if err != nil {
		s.reply(req, tx, 488, "Not Acceptable Here", warn(399, "malformed SDP"))
		return nil, sdp.XMPPSession{}, false
	}
	sess, err := offer.XMPPSession()
	if err != nil {
		s.reply(req, tx, 488, "Not Acceptable Here", warn(304, "media type not available: m=message xmpp/tcp required"))
		return nil, sdp.XMPPSession{}, false
	}
	if _, err := addressing.ParseJID(sess.JID); err != nil {
		s.reply(req, tx, 488, "Not Acceptable Here", warn(399, "a=jid is not a JID"))
		return nil, sdp.XMPPSession{}, false
	}
	return offer, sess, true
}

// answerFor builds the SDP answer with the handler's JID and XMPP host.
func (s *Server) answerFor(d *Dialog, offer *sdp.Description, ans InviteAnswer) ([]byte, error) {
	if _, err := addressing.ParseJID(ans.JID); err != nil {
		return nil, fmt.Errorf("sipside: answer jid %q: %w", ans.JID, err)
	}
	host := ans.Host
	if host == "" {
		host = d.Local.Domain
	}
	d.mu.Lock()
	d.sdpVersion++
	if d.sdpID == 0 {
		d.sdpID = uint64(time.Now().UnixNano() & 0xffffffff)
	}
	o := sdp.Origin{Username: sdpUser(d.Local), SessionID: d.sdpID, SessionVersion: d.sdpID + d.sdpVersion, Address: s.sdpHost(d.Local.Domain)}
	d.mu.Unlock()
	a, err := sdp.Answer(offer, sdp.XMPPSession{Origin: o, ConnAddr: host, Port: ans.Port, JID: ans.JID, Direction: ans.Direction})
	if err != nil {
		return nil, fmt.Errorf("sipside: answer: %w", err)
	}
	return a.Marshal(), nil
}

// sdpUser is the o= username: the localpart when it is a token.
func sdpUser(a addressing.Address) string {
	for i := 0; i < len(a.Local); i++ {
		if a.Local[i] <= ' ' || a.Local[i] >= 0x7f {
			return "-"
		}
	}
	if a.Local == "" {
		return "-"
	}
	return a.Local
}

// sdpHost is the o= and session c= host: the domain in A-labels.
func (s *Server) sdpHost(domain string) string {
	if h, err := addressing.DomainToASCII(domain); err == nil {
		return h
	}
	return s.opts.Domains[0]
}

// answerResponse is the 200 OK carrying the answer, our tag and Contact.
func (s *Server) answerResponse(req *sip.Request, d *Dialog, body []byte) *sip.Response {
	res := s.response(req, 200, "OK", sip.NewHeader("Allow", allowedWithInvite), sip.NewHeader("Supported", ""))
	if !req.To().Params.Has("tag") {
		res.To().Params.Add("tag", d.LocalTag)
	}
	res.AppendHeader(&sip.ContactHeader{Address: s.localContact(d.Local, d.transport)})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.SetBody(body)
	return res
}

// allowedWithInvite is the Allow value of our INVITE answers.
const allowedWithInvite = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH"

// localContact is our Contact for a local user: sip:user@our-address.
func (s *Server) localContact(user addressing.Address, transport string) sip.Uri {
	u := s.contactFor(transport)
	if local, ok := sipUser(user); ok {
		u.User = local
	}
	return u
}

// sipUser returns the user part of the address's sip: URI.
func sipUser(a addressing.Address) (string, bool) {
	var u sip.Uri
	if err := sip.ParseUri(a.Bare().SIP(), &u); err != nil {
		return "", false
	}
	return u.User, u.User != ""
}

// awaitAck waits for the ACK of a 2xx, retransmitting the 2xx over UDP
// (RFC 3261 §13.3.1.4, RFC 6026: the TU does it) with T1 doubling up to
// T2. Without an ACK within 64*T1 the dialog is ended with a BYE.
func (s *Server) awaitAck(req *sip.Request, tx sip.ServerTransaction, res *sip.Response, d *Dialog) {
	reliable := !strings.EqualFold(req.Transport(), "udp")
	acked := d.ackChan()
	s.spawn(func() {
		ctx := s.serveContext()
		deadline := time.NewTimer(64 * sip.T1)
		defer deadline.Stop()
		interval := sip.T1
		retrans := time.NewTimer(interval)
		defer retrans.Stop()
		for {
			var tick <-chan time.Time
			if !reliable {
				tick = retrans.C
			}
			select {
			case <-acked:
				return
			case <-ctx.Done():
				return
			case <-tick:
				if err := tx.Respond(res); err != nil {
					s.log.Debug("2xx retransmission not sent", "call_id", d.CallID, "error", err)
				}
				interval = min(2*interval, sip.T2)
				retrans.Reset(interval)
			case <-deadline.C:
				if d.isConfirmed() {
					return
				}
				s.log.Info("no ACK for the session's 2xx: ending it", "call_id", d.CallID, "peer", d.source)
				s.endDialog(ctx, d, "no-ack", true)
				return
			}
		}
	})
}

// handleAck confirms the dialog a 2xx ACK belongs to; other ACKs are
// absorbed (RFC 3261 §17.2.3: those for non-2xx never reach here).
func (s *Server) handleAck(req *sip.Request) {
	d := s.dialogOf(req)
	if d == nil {
		s.log.Debug("ACK without dialog", "call_id", callID(req), "peer", req.Source())
		return
	}
	d.ack(req.CSeq().SeqNo)
}

// dialogOf returns the INVITE dialog an in-dialog request belongs to, or
// nil.
func (s *Server) dialogOf(req *sip.Request) *Dialog {
	toTag, _ := req.To().Params.Get("tag")
	fromTag, _ := req.From().Params.Get("tag")
	return s.dialogs.get(dialogKey(callID(req), toTag, fromTag))
}

// inDialog returns the dialog of an in-dialog request whose CSeq is in
// order; otherwise it answers 481 (no such dialog) or 500 (RFC 3261
// §12.2.2) and returns nil.
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction) *Dialog {
	d := s.dialogOf(req)
	if d == nil {
		s.reply(req, tx, 481, "Call/Transaction Does Not Exist")
		return nil
	}
	if !d.remoteSeq(req.CSeq().SeqNo) {
		s.reply(req, tx, 500, "Server Internal Error - CSeq out of order", sip.NewHeader("Retry-After", "1"))
		return nil
	}
	return d
}

// handleBye ends a dialog at the peer's request (RFC 3261 §15.1.2).
func (s *Server) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	s.reply(req, tx, 200, "OK")
	s.endDialog(s.serveContext(), d, "bye", false)
}

// handleReInvite is an INVITE with a To tag: a new offer in an existing
// dialog (RFC 3261 §14.2), e.g. a direction change. A failed re-INVITE
// leaves the session as it was.
func (s *Server) handleReInvite(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	if !d.beginOffer() {
		s.reply(req, tx, 491, "Request Pending")
		return
	}
	defer d.endOffer()
	if s.opts.Sessions == nil {
		s.reply(req, tx, 488, "Not Acceptable Here")
		return
	}
	offer, sess, ok := s.readOffer(req, tx)
	if !ok {
		return
	}
	local := d.Local
	if to, ok := addressOf(req.Recipient); ok && to.Domain == d.Local.Domain {
		local = to
	}
	o := InviteOffer{
		DialogID: d.ID, CallID: d.CallID, From: d.Remote, To: d.Local, RequestURI: local,
		Session: sess, SDP: offer, ReInvite: true, Peer: req.Source(), Transport: req.Transport(),
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	tx.OnCancel(func(*sip.Request) { cancel() })
	ans, err := s.opts.Sessions.Offer(octx, o)
	if octx.Err() != nil && ctx.Err() == nil {
		return // cancelled: sipgo answered 487
	}
	if err != nil {
		code, reason := statusForOffer(err)
		s.reply(req, tx, code, reason)
		return
	}
	body, err := s.answerFor(d, offer, ans)
	if err != nil {
		s.log.Error("session re-answer", "call_id", d.CallID, "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return
	}
	if c := req.Contact(); c != nil {
		d.setTarget(c.Address)
	}
	d.rearm()
	res := s.answerResponse(req, d, body)
	s.respond(req, tx, res)
	s.awaitAck(req, tx, res, d)
}
