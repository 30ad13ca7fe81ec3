package xmppside

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// StanzaError is an RFC 6120 §8.3.3 stanza error condition returned
// instead of an error stanza, by Server.Submit when the stanza would have
// been bounced. It has the Condition method that Remote looks for, so a
// Remote may return it too.
type StanzaError struct {
	Cond string // "service-unavailable", "resource-constraint", ...
	Text string // optional human-readable text; may be empty
}

func (e *StanzaError) Error() string {
	if e.Text == "" {
		return "xmppside: " + e.Cond
	}
	return "xmppside: " + e.Cond + ": " + e.Text
}

// Condition returns the defined condition.
func (e *StanzaError) Condition() string { return e.Cond }

// Submit processes a stanza sent by a local account's resource that is
// not an XMPP stream (the UMPP gateway's SIP users), with the rules of a
// c2s stanza from that resource: from is the resource's full JID in a
// local domain (its Endpoint is normally registered in the Locator, but
// Submit must work without it), raw a message or presence in
// jabber:client (from/to attributes as a client would send: from may be
// absent or equal; it is stamped).
//
// A message that would be bounced to a client returns a *StanzaError
// and nothing is delivered; an error of Options.Remote.Deliver is
// returned as it is. Subscription stanzas, directed presence and
// broadcast presence (to the roster's subscribers and the account's
// other resources, initial presence probing the contacts) follow RFC
// 6121 like a client's; Options.Presence is not told of Submit's
// broadcasts, and errors of single recipients of a broadcast are not
// returned. Submit remembers whether the resource is available and where
// it sent directed presence, until it submits unavailable presence; the
// caller must do so when the resource goes away. An iq or anything else
// returns a *StanzaError. Submit does not check that the account exists.
// Calls for one resource are serialized. raw is not retained.
func (s *Server) Submit(ctx context.Context, from string, raw []byte) error {
	me, err := parseAddr(from)
	if err != nil || me.local == "" || me.resource == "" || !s.isLocal(me.domain) {
		return fmt.Errorf("xmppside: submit: from %q is not a full JID of a local account", from)
	}
	var el element
	if err := parseStanza(raw, &el); err != nil {
		return fmt.Errorf("xmppside: submit: %w", err)
	}
	if ns := el.ns(); (ns != "" && ns != nsClient) || el.name.Space != "" {
		return &StanzaError{Cond: "bad-request", Text: "not in jabber:client"}
	}
	if f := el.attr("from"); f != "" {
		if a, err := parseAddr(f); err != nil || a.full != me.full {
			return &StanzaError{Cond: "bad-request", Text: "from is not the submitting resource"}
		}
	}
	switch el.name.Local {
	case "message":
		p := &submitter{s: s, me: me}
		return p.run(func() { s.routeMessage(ctx, p, &el) })
	case "presence":
		p := s.resourceState(me)
		defer s.releaseState(p)
		broadcast := el.attr("to") == ""
		err := p.run(func() { s.handlePresence(ctx, p, &el) })
		if broadcast {
			if err != nil {
				p.logger().Debug("submitted presence broadcast partly failed", "err", err)
			}
			return nil
		}
		return err
	case "iq":
		return &StanzaError{Cond: "service-unavailable", Text: "submit takes messages and presence"}
	default:
		return &StanzaError{Cond: "bad-request", Text: "not a message or presence"}
	}
}

// submitter is the origin of the stanzas of one Submit call, and for
// presence the state of a resource that submits it (available, directed
// presence), kept in Server.submitters while it matters.
type submitter struct {
	s  *Server
	me addr

	// Per call, under mu for kept states.
	buf  *[]byte
	eps  []Endpoint
	err  error
	self Endpoint // the resource's own Endpoint, once looked up
	seen bool     // self was looked up

	mu       sync.Mutex // serializes the presence of one resource
	dead     bool       // removed from Server.submitters
	avail    bool
	directed map[string]bool
}

// run runs f with a scratch buffer and returns the first error recorded.
func (p *submitter) run(f func()) error {
	p.buf = p.s.pool.get()
	p.err, p.self, p.seen = nil, nil, false
	f()
	p.s.pool.put(p.buf)
	p.buf = nil
	clear(p.eps)
	p.self = nil
	return p.err
}

// resourceState returns the locked presence state of a submitting
// resource, creating it when there is none.
func (s *Server) resourceState(me addr) *submitter {
	for {
		s.subMu.Lock()
		p := s.submitters[me.full]
		if p == nil {
			p = &submitter{s: s, me: me}
			s.submitters[me.full] = p
		}
		s.subMu.Unlock()
		p.mu.Lock()
		if !p.dead {
			return p
		}
		p.mu.Unlock() // raced with releaseState: look again
	}
}

// releaseState unlocks p, forgetting it when it holds nothing: an
// unavailable resource without directed presence out.
func (s *Server) releaseState(p *submitter) {
	if !p.avail && len(p.directed) == 0 {
		p.dead = true
		s.subMu.Lock()
		if s.submitters[p.me.full] == p {
			delete(s.submitters, p.me.full)
		}
		s.subMu.Unlock()
	}
	p.mu.Unlock()
}

func (p *submitter) fromJID() string              { return p.me.full }
func (p *submitter) logger() *slog.Logger         { return p.s.log.With("jid", p.me.full) }
func (p *submitter) account() addr                { return p.me }
func (p *submitter) endpoints() *[]Endpoint       { return &p.eps }
func (p *submitter) directedTo() *map[string]bool { return &p.directed }
func (p *submitter) initialDone(context.Context)  {}

func (p *submitter) stampTo(el *element, to string) []byte {
	*p.buf = appendStamped((*p.buf)[:0], el, p.me.full, to, "")
	return *p.buf
}

// bounce records the error instead of sending it; like a stream, an
// error stanza gets none (RFC 6120 §8.3.1).
func (p *submitter) bounce(el *element, _, cond, text string) {
	if el.attr("type") == "error" || p.err != nil {
		return
	}
	p.err = &StanzaError{Cond: cond, Text: text}
}

func (p *submitter) remoteFailed(_ *element, to addr, err error) {
	p.logger().Debug("remote delivery failed", "to", to.full, "err", err)
	if p.err == nil {
		p.err = err
	}
}

func (p *submitter) available(context.Context, *element) bool {
	initial := !p.avail
	p.avail = true
	return initial
}

func (p *submitter) unavailable(context.Context, *element) bool {
	was := p.avail
	p.avail = false
	return was
}

// toSelf hands a stanza to the resource's Endpoint, if it registered one.
func (p *submitter) toSelf(ctx context.Context, raw []byte) {
	if !p.seen {
		p.seen = true
		var buf [8]Endpoint
		for _, e := range p.s.loc.Lookup(p.me.bare, buf[:0]) {
			if e.JID() == p.me.full {
				p.self = e
				break
			}
		}
	}
	if p.self != nil {
		_ = p.self.Deliver(ctx, raw)
	}
}

// parseStanza reads the single element of raw.
func parseStanza(raw []byte, el *element) error {
	sr := newStreamReader(bytes.NewReader(raw), len(raw)+1)
	sr.release()
	return sr.next(el)
}
