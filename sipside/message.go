package sipside

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Message is a pager-mode MESSAGE (RFC 3428) handed to a Gateway.
type Message struct {
	// Sender is the bare JID of the sender: a local user who
	// authenticated with digest, or, when Peer is set, a user of a peer
	// domain whose server proved its domain (peer.go).
	Sender string
	// Peer is set when the MESSAGE came from a peer domain's server.
	Peer bool
	// From and To are the SIP From and Request-URI as text.
	From, To    string
	CallID      string
	ContentType string
	Body        []byte
	// CPIM is the parsed body when ContentType is message/cpim.
	CPIM *CPIM
}

// Gateway receives the MESSAGEs SIP cannot deliver itself: those whose
// target is outside our domains (from local senders), and those for a
// local user without registered SIP contacts, whom the gateway reaches
// over XMPP. It returns the SIP status to give the sender (2xx
// accepted).
type Gateway interface {
	DeliverMessage(ctx context.Context, m Message) (code int, reason string, err error)
}

// handleMessage is the MESSAGE proxy/relay of RFC 3428 §7 for local
// senders and for users of authenticated peer domains.
func (s *Server) handleMessage(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, localTarget bool) {
	from := req.From()
	fromHost := strings.ToLower(uriHost(from.Address))
	var m Message
	switch {
	case s.domains[fromHost]:
		sender, ok := s.requireAuth(ctx, req, tx, fromHost, true)
		if !ok {
			return
		}
		if aor, ok := aorOf(from.Address); !ok || aor != sender {
			s.log.Warn("message with a From of another user refused", "user", sender, "call_id", callID(req), "peer", req.Source())
			s.reply(req, tx, 403, "Forbidden - From does not match credentials")
			return
		}
		m.Sender = sender
	case s.isPeerDomain(fromHost):
		sender, ok := aorOf(from.Address)
		if !ok {
			s.reply(req, tx, 400, "Bad Request - From")
			return
		}
		if !s.authenticatePeer(ctx, req, tx, fromHost) {
			return
		}
		if !localTarget {
			s.reply(req, tx, 403, "Forbidden - Relaying denied")
			return
		}
		m.Sender, m.Peer = sender, true
	default:
		s.reply(req, tx, 403, "Forbidden - Sender domain not served here")
		return
	}
	m.From, m.To, m.CallID, m.Body = from.Address.String(), req.Recipient.String(), callID(req), req.Body()
	if h := req.ContentType(); h != nil {
		m.ContentType = h.Value()
	}
	if mediaType(m.ContentType) == "message/cpim" {
		c, err := ParseCPIM(req.Body())
		if err != nil {
			s.reply(req, tx, 400, "Bad Request - Malformed message/cpim")
			return
		}
		if c.From != "" && cpimAddress(c.From) != m.Sender {
			s.reply(req, tx, 403, "Forbidden - CPIM From does not match sender")
			return
		}
		m.CPIM = c
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		s.reply(req, tx, 483, "Too Many Hops")
		return
	}
	if !localTarget {
		s.messageToGateway(ctx, req, tx, m)
		return
	}
	target, ok := aorOf(req.Recipient)
	if !ok {
		s.reply(req, tx, 404, "Not Found")
		return
	}
	exists, err := s.userExists(ctx, target)
	if err != nil {
		s.log.Error("message target lookup failed", "call_id", m.CallID, "method", "MESSAGE", "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return
	}
	if !exists {
		s.reply(req, tx, 404, "Not Found")
		return
	}
	bindings, err := s.regs.Bindings(ctx, target)
	if err != nil {
		s.log.Error("bindings lookup failed", "call_id", m.CallID, "method", "MESSAGE", "user", target, "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return
	}
	if len(bindings) == 0 {
		if s.opts.Gateway != nil {
			// No SIP contact: the gateway may reach the user's XMPP
			// resources.
			s.messageToGateway(ctx, req, tx, m)
			return
		}
		s.reply(req, tx, 480, "Temporarily Unavailable")
		return
	}
	if r := s.fork(ctx, pagerFrom(req), bindings); r.ok {
		s.countRouted()
		s.reply(req, tx, 200, "OK")
		return
	}
	s.reply(req, tx, 480, "Temporarily Unavailable")
}

func (s *Server) messageToGateway(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, m Message) {
	if s.opts.Gateway == nil {
		s.reply(req, tx, 403, "Forbidden - Relaying denied")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	code, reason, err := s.opts.Gateway.DeliverMessage(ctx, m)
	if err != nil {
		s.log.Warn("gateway refused message", "call_id", m.CallID, "method", "MESSAGE", "error", err)
		if code < 300 {
			code, reason = 500, "Server Internal Error"
		}
	}
	if code < 200 || code > 699 {
		code, reason = 500, "Server Internal Error"
	}
	s.reply(req, tx, code, reason)
}

// pagerRequest is what a MESSAGE sent to registered contacts carries:
// each copy gets its own Call-ID and From tag.
type pagerRequest struct {
	from, to         sip.Uri
	fromName, toName string
	maxForwards      int
	headers          []sip.Header // Content-Type, Date, Subject
	body             []byte
	callID           string // of the request it comes from, for logs
}

// pagerFrom takes a received MESSAGE apart for forking.
func pagerFrom(orig *sip.Request) pagerRequest {
	pr := pagerRequest{
		from: orig.From().Address, fromName: orig.From().DisplayName,
		to: orig.To().Address, toName: orig.To().DisplayName,
		maxForwards: 70, body: orig.Body(), callID: callID(orig),
	}
	if omf := orig.MaxForwards(); omf != nil {
		pr.maxForwards = int(omf.Val()) - 1
	}
	for _, name := range []string{"Content-Type", "Date", "Subject"} {
		if h := orig.GetHeader(name); h != nil {
			pr.headers = append(pr.headers, sip.NewHeader(name, h.Value()))
		}
	}
	return pr
}

// forkResult is the outcome of a forked MESSAGE: ok when a contact
// answered 2xx; else the best final answer received (RFC 3261 §16.7
// step 6: a 6xx, else the lowest class), code 0 when none came.
type forkResult struct {
	ok     bool
	code   int
	reason string
}

// better reports whether final status a should be preferred to b.
func better(a, b int) bool {
	switch {
	case b == 0:
		return true
	case a >= 600 != (b >= 600):
		return a >= 600
	case a/100 != b/100:
		return a < b
	}
	return false
}

// fork sends a copy of pr to every binding in parallel, as a UAC of its
// own (new Call-ID and From tag, same From URI, To the AOR, same body).
func (s *Server) fork(ctx context.Context, pr pagerRequest, bindings []Binding) forkResult {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	results := make(chan *sip.Response, len(bindings))
	var wg sync.WaitGroup
	for _, b := range bindings {
		wg.Go(func() {
			res, err := s.forwardOne(ctx, pr, b)
			if err != nil {
				s.log.Debug("message fork failed", "call_id", pr.callID, "method", "MESSAGE", "contact", b.Contact, "error", err)
			}
			results <- res
		})
	}
	go func() { wg.Wait(); close(results) }()
	var r forkResult
	for res := range results {
		switch {
		case res == nil:
		case res.StatusCode >= 200 && res.StatusCode < 300:
			return forkResult{ok: true, code: res.StatusCode, reason: res.Reason}
		case better(res.StatusCode, r.code):
			r.code, r.reason = res.StatusCode, res.Reason
		}
	}
	return r
}

// forwardOne sends pr to one binding and returns its final answer.
func (s *Server) forwardOne(ctx context.Context, pr pagerRequest, b Binding) (*sip.Response, error) {
	var target sip.Uri
	if err := sip.ParseUri(b.Contact, &target); err != nil {
		return nil, fmt.Errorf("contact %q: %w", b.Contact, err)
	}
	req := sip.NewRequest(sip.MESSAGE, target)
	from := &sip.FromHeader{DisplayName: pr.fromName, Address: pr.from, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{DisplayName: pr.toName, Address: pr.to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(newTag() + newTag())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	mf := sip.MaxForwardsHeader(max(pr.maxForwards, 0))
	req.AppendHeader(&mf)
	for _, h := range pr.headers {
		req.AppendHeader(sip.HeaderClone(h))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", s.opts.UserAgent))
	req.SetBody(pr.body)
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", b.Contact, err)
	}
	return res, nil
}
