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
	// Sender is the authenticated bare JID of a local sender.
	Sender string
	// From and To are the SIP From and Request-URI as text.
	From, To    string
	CallID      string
	ContentType string
	Body        []byte
	// CPIM is the parsed body when ContentType is message/cpim.
	CPIM *CPIM
}

// Gateway receives MESSAGEs whose target is outside our domains: the
// seam for the XMPP side and for inter-domain SIP. It returns the SIP
// status to give the sender (2xx accepted).
type Gateway interface {
	DeliverMessage(ctx context.Context, m Message) (code int, reason string, err error)
}

// handleMessage is the MESSAGE proxy/relay of RFC 3428 §7 for local
// senders.
func (s *Server) handleMessage(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, localTarget bool) {
	from := req.From()
	fromHost := strings.ToLower(uriHost(from.Address))
	if !s.domains[fromHost] {
		// Requests from other domains need peer authentication (TLS or
		// the gateway), not written yet: refuse rather than trust From.
		s.reply(req, tx, 403, "Forbidden - Sender domain not served here")
		return
	}
	sender, ok := s.requireAuth(ctx, req, tx, fromHost, true)
	if !ok {
		return
	}
	if aor, ok := aorOf(from.Address); !ok || aor != sender {
		s.log.Warn("message with a From of another user refused", "user", sender, "call_id", callID(req), "peer", req.Source())
		s.reply(req, tx, 403, "Forbidden - From does not match credentials")
		return
	}
	m := Message{Sender: sender, From: from.Address.String(), To: req.Recipient.String(), CallID: callID(req), Body: req.Body()}
	if h := req.ContentType(); h != nil {
		m.ContentType = h.Value()
	}
	if mediaType(m.ContentType) == "message/cpim" {
		c, err := ParseCPIM(req.Body())
		if err != nil {
			s.reply(req, tx, 400, "Bad Request - Malformed message/cpim")
			return
		}
		if c.From != "" && cpimAddress(c.From) != sender {
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
		s.reply(req, tx, 480, "Temporarily Unavailable")
		return
	}
	if s.fork(ctx, req, bindings) {
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

// fork sends a copy of req to every binding in parallel, as a UAC of its
// own (new Call-ID and From tag, same From URI, To the AOR, same body),
// and reports whether any answered 2xx.
func (s *Server) fork(ctx context.Context, req *sip.Request, bindings []Binding) bool {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	results := make(chan bool, len(bindings))
	var wg sync.WaitGroup
	for _, b := range bindings {
		wg.Go(func() {
			ok, err := s.forwardOne(ctx, req, b)
			if err != nil {
				s.log.Debug("message fork failed", "call_id", callID(req), "method", "MESSAGE", "contact", b.Contact, "error", err)
			}
			results <- ok
		})
	}
	go func() { wg.Wait(); close(results) }()
	for ok := range results {
		if ok {
			return true
		}
	}
	return false
}

func (s *Server) forwardOne(ctx context.Context, orig *sip.Request, b Binding) (bool, error) {
	var target sip.Uri
	if err := sip.ParseUri(b.Contact, &target); err != nil {
		return false, fmt.Errorf("contact %q: %w", b.Contact, err)
	}
	req := sip.NewRequest(sip.MESSAGE, target)
	of := orig.From()
	from := &sip.FromHeader{DisplayName: of.DisplayName, Address: of.Address, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	req.AppendHeader(from)
	ot := orig.To()
	req.AppendHeader(&sip.ToHeader{DisplayName: ot.DisplayName, Address: ot.Address, Params: sip.NewParams()})
	cid := sip.CallIDHeader(newTag() + newTag())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	mf := sip.MaxForwardsHeader(70)
	if omf := orig.MaxForwards(); omf != nil {
		mf = sip.MaxForwardsHeader(omf.Val() - 1)
	}
	req.AppendHeader(&mf)
	for _, name := range []string{"Content-Type", "Date", "Subject"} {
		if h := orig.GetHeader(name); h != nil {
			req.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
	req.AppendHeader(sip.NewHeader("User-Agent", s.opts.UserAgent))
	req.SetBody(orig.Body())
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return false, fmt.Errorf("forward to %s: %w", b.Contact, err)
	}
	return res.StatusCode >= 200 && res.StatusCode < 300, nil
}
