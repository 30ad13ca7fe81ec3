package sipside

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/session/sdp"
)

// Invite starts an XMPP message session with a user of a peer domain
// (draft §4.1, the UAC side): INVITE im:to with From and To as im: URIs,
// our sip: URI as Contact, and an SDP offer built from local (Host/Port of
// our XMPP server as ConnAddr/Port, the sender's full JID, the thread;
// Kind and Direction default to chat and both; Origin is filled in when
// empty). The peer's servers come from Options.Resolver, tried in order
// until one answers. On a 2xx it sends ACK and returns the dialog and the
// peer's message stream (its a=jid); a final status other than 2xx is a
// *StatusError. An answer without a usable xmpp/tcp stream is
// acknowledged, ended with BYE and returned as an error wrapping
// sdp.ErrNoXMPPMedia. If ctx ends before the answer, the INVITE is
// cancelled.
func (s *Server) Invite(ctx context.Context, from, to addressing.Address, local sdp.XMPPSession) (*Dialog, sdp.XMPPSession, error) {
	if s.client == nil {
		return nil, sdp.XMPPSession{}, errors.New("sipside: invite: not listening")
	}
	if !s.domains[from.Domain] {
		return nil, sdp.XMPPSession{}, fmt.Errorf("sipside: invite: %s is not a user of ours", from.BareJID())
	}
	if s.opts.Resolver == nil {
		return nil, sdp.XMPPSession{}, errors.New("sipside: invite: no resolver")
	}
	if local.Origin.Address == "" {
		local.Origin = sdp.Origin{Username: sdpUser(from), SessionID: uint64(time.Now().UnixNano() & 0xffffffff), Address: s.sdpHost(from.Domain)}
		local.Origin.SessionVersion = local.Origin.SessionID
	}
	offer, err := sdp.NewOffer(local)
	if err != nil {
		return nil, sdp.XMPPSession{}, fmt.Errorf("sipside: invite %s: %w", to.BareJID(), err)
	}
	targets, err := s.opts.Resolver.ResolveSIP(ctx, to.Domain)
	if err != nil {
		return nil, sdp.XMPPSession{}, fmt.Errorf("sipside: invite %s: resolve: %w", to.BareJID(), err)
	}
	if len(targets) == 0 {
		return nil, sdp.XMPPSession{}, fmt.Errorf("sipside: invite %s: %w", to.BareJID(), &StatusError{Code: 404, Reason: "No SIP server for " + to.Domain})
	}
	var last error
	for _, t := range targets {
		if t.Protocol != "" && t.Protocol != addressing.ProtocolSIP {
			continue
		}
		d, ans, err := s.inviteOne(ctx, from, to, offer, t)
		if err == nil {
			return d, ans, nil
		}
		last = err
		var st *StatusError
		if errors.As(err, &st) || ctx.Err() != nil || errors.Is(err, sdp.ErrNoXMPPMedia) || errors.Is(err, sdp.ErrMalformed) {
			break // an answer, not a transport failure: do not try others
		}
		s.log.Debug("invite target failed", "target", t.String(), "error", err)
	}
	return nil, sdp.XMPPSession{}, fmt.Errorf("sipside: invite %s: %w", to.BareJID(), last)
}

// inviteOne sends the INVITE to one target.
func (s *Server) inviteOne(ctx context.Context, from, to addressing.Address, offer *sdp.Description, t addressing.Target) (*Dialog, sdp.XMPPSession, error) {
	var ruri, fromURI, toURI sip.Uri
	if err := sip.ParseUri(to.Bare().IM(), &ruri); err != nil {
		return nil, sdp.XMPPSession{}, fmt.Errorf("request-uri: %w", err)
	}
	toURI = ruri
	if err := sip.ParseUri(from.Bare().IM(), &fromURI); err != nil {
		return nil, sdp.XMPPSession{}, fmt.Errorf("from: %w", err)
	}
	transport := strings.ToLower(t.Transport)
	if transport == "" {
		transport = "udp"
	}
	dest := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	d := &Dialog{
		s: s, CallID: newTag() + newTag() + "@" + s.sdpHost(from.Domain), LocalTag: newTag(),
		Local: from.Bare(), Remote: to.Bare(), localURI: fromURI, remoteURI: toURI,
		transport: transport, dest: dest, localCSeq: uint32(time.Now().UnixNano()&0x7fff) + 1,
		acked: make(chan struct{}), confirmed: true,
	}
	req := sip.NewRequest(sip.INVITE, ruri)
	fh := &sip.FromHeader{Address: fromURI, Params: sip.NewParams()}
	fh.Params.Add("tag", d.LocalTag)
	req.AppendHeader(fh)
	req.AppendHeader(&sip.ToHeader{Address: toURI, Params: sip.NewParams()})
	cid := sip.CallIDHeader(d.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.localCSeq, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: s.localContact(from, transport)})
	req.AppendHeader(sip.NewHeader("Allow", allowedWithInvite))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer.Marshal())
	req.SetTransport(strings.ToUpper(transport))
	req.SetDestination(dest)

	tx, err := s.client.TransactionRequest(ctx, req)
	if err != nil {
		return nil, sdp.XMPPSession{}, fmt.Errorf("send to %s: %w", t.String(), err)
	}
	provisional := false
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				provisional = true
				continue
			}
			if !res.IsSuccess() {
				tx.Terminate()
				return nil, sdp.XMPPSession{}, &StatusError{Code: res.StatusCode, Reason: res.Reason}
			}
			return s.inviteAccepted(ctx, req, res, tx, d)
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, sdp.XMPPSession{}, fmt.Errorf("to %s: %w", t.String(), err)
			}
			return nil, sdp.XMPPSession{}, fmt.Errorf("to %s: transaction ended without an answer", t.String())
		case <-ctx.Done():
			if provisional {
				s.cancelInvite(req)
			}
			tx.Terminate()
			return nil, sdp.XMPPSession{}, ctx.Err()
		}
	}
}

// cancelInvite sends CANCEL for an INVITE that got a provisional answer
// (RFC 3261 §9.1); the 487 that follows is the transaction's business.
func (s *Server) cancelInvite(inv *sip.Request) {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(inv.Via().Clone())
	for _, name := range []string{"From", "To", "Call-ID"} {
		if h := inv.GetHeader(name); h != nil {
			c.AppendHeader(sip.HeaderClone(h))
		}
	}
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	ctx, cancel := context.WithTimeout(s.serveContext(), 2*time.Second)
	defer cancel()
	if _, err := s.client.Do(ctx, c); err != nil {
		s.log.Debug("cancel not answered", "call_id", callID(inv), "error", err)
	}
}

// inviteAccepted handles the 2xx: dialog state from the response, ACK
// (again for each retransmitted 2xx), and the answer's message stream.
func (s *Server) inviteAccepted(ctx context.Context, inv *sip.Request, res *sip.Response, tx sip.ClientTransaction, d *Dialog) (*Dialog, sdp.XMPPSession, error) {
	d.RemoteTag, _ = res.To().Params.Get("tag")
	d.ID = dialogKey(d.CallID, d.LocalTag, d.RemoteTag)
	if c := res.Contact(); c != nil {
		d.target = c.Address
	} else {
		d.target = inv.Recipient
	}
	ack := s.inDialogAck(d, inv)
	send := func() {
		if err := s.client.WriteRequest(ack); err != nil {
			s.log.Debug("ACK not sent", "call_id", d.CallID, "error", err)
		}
	}
	send()
	tx.OnRetransmission(func(*sip.Response) { send() })
	if !s.dialogs.add(d) {
		_ = s.sendBye(ctx, d)
		return nil, sdp.XMPPSession{}, &StatusError{Code: 503, Reason: "Too many dialogs"}
	}
	var theirs sdp.XMPPSession
	ans, err := sdp.Parse(res.Body())
	if err == nil {
		theirs, err = ans.XMPPSession()
	}
	if err == nil {
		_, err = addressing.ParseJID(theirs.JID)
		if err != nil {
			err = fmt.Errorf("%w: a=jid: %w", sdp.ErrMalformed, err)
		}
	}
	if err != nil {
		_ = s.endDialog(ctx, d, "error", true)
		return nil, sdp.XMPPSession{}, fmt.Errorf("answer: %w", err)
	}
	d.mu.Lock()
	d.accepted = true
	d.mu.Unlock()
	s.log.Debug("session established", "call_id", d.CallID, "user", d.Local.BareJID(), "jid", theirs.JID)
	return d, theirs, nil
}

// inDialogAck builds the ACK for a 2xx (RFC 3261 §13.2.2.4): to the
// remote target, CSeq number of the INVITE, a new branch.
func (s *Server) inDialogAck(d *Dialog, inv *sip.Request) *sip.Request {
	ack := sip.NewRequest(sip.ACK, d.target)
	from := &sip.FromHeader{Address: d.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", d.LocalTag)
	ack.AppendHeader(from)
	to := &sip.ToHeader{Address: d.remoteURI, Params: sip.NewParams()}
	to.Params.Add("tag", d.RemoteTag)
	ack.AppendHeader(to)
	cid := sip.CallIDHeader(d.CallID)
	ack.AppendHeader(&cid)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	ack.SetBody(nil)
	ctx, cancel := context.WithTimeout(s.serveContext(), 2*time.Second)
	defer cancel()
	s.route(ctx, ack, d.transport, d.dest)
	return ack
}
