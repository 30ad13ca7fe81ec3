package xmppside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/umpp/umpp/store"
)

// Remote delivers stanzas for domains this server does not host (other
// XMPP servers over s2s, or SIP domains through the UMPP session layer).
// Deliver should queue and return quickly; it must not keep st.Raw after
// returning. An error that has a method Condition() string is bounced to
// the sender with that RFC 6120 stanza error condition; any other error
// bounces as remote-server-not-found.
type Remote interface {
	Deliver(ctx context.Context, st Stanza) error
}

// run reads and routes stanzas until the stream ends.
func (c *conn) run(ctx context.Context) error {
	var el element
	for {
		if err := c.sr.next(&el); err != nil {
			return err
		}
		if ns := el.ns(); (ns != "" && ns != nsClient) || (el.name.Space != "" && ns == "") {
			return streamErr("unsupported-stanza-type", fmt.Errorf("element %s in %q", el.name.Local, ns))
		}
		switch el.name.Local {
		case "message":
			c.srv.routeMessage(ctx, c, &el)
		case "presence":
			c.srv.handlePresence(ctx, c, &el)
		case "iq":
			c.handleIQ(ctx, &el)
		default:
			return streamErr("unsupported-stanza-type", fmt.Errorf("element %s", el.name.Local))
		}
		c.sr.release()
	}
}

// sender is where a routed stanza came from: a local resource or a
// remote domain. Errors go back to it.
type sender interface {
	bounce(el *element, from, cond, text string)
	fromJID() string
	logger() *slog.Logger
}

// origin is a local account's resource that sends stanzas of its own: a
// c2s stream (*conn) or a caller of Server.Submit (*submitter). What such
// a resource sends follows one set of rules (RFC 6120 §8, RFC 6121 §3,
// §4, §8.5), written once as Server methods taking an origin; the
// implementations differ in where errors go and where the presence state
// lives.
type origin interface {
	sender
	// account is the resource's full JID.
	account() addr
	// stampTo serializes el with the resource's full JID as from, and to
	// replaced when it is not empty. The bytes are valid until the next
	// call.
	stampTo(el *element, to string) []byte
	// remoteFailed handles an error of Options.Remote.Deliver for el.
	remoteFailed(el *element, to addr, err error)
	// endpoints is scratch space for Locator lookups.
	endpoints() *[]Endpoint
	// available records an available broadcast presence and reports
	// whether it is the initial one; unavailable records an unavailable
	// one and reports whether the resource was available.
	available(ctx context.Context, el *element) (initial bool)
	unavailable(ctx context.Context, el *element) (was bool)
	// directedTo is the set of full JIDs that got available directed
	// presence from the resource (RFC 6121 §4.6).
	directedTo() *map[string]bool
	// toSelf gives the resource a stanza from the server (contacts'
	// presence and pending requests after initial presence).
	toSelf(ctx context.Context, raw []byte)
	// initialDone runs once initial presence was handled.
	initialDone(ctx context.Context)
}

func (c *conn) fromJID() string                    { return c.user.full }
func (c *conn) logger() *slog.Logger               { return c.log }
func (c *conn) account() addr                      { return c.user }
func (c *conn) endpoints() *[]Endpoint             { return &c.eps }
func (c *conn) directedTo() *map[string]bool       { return &c.directed }
func (c *conn) toSelf(_ context.Context, b []byte) { c.send(b) }
func (c *conn) initialDone(ctx context.Context)    { c.deliverOffline(ctx) }

func (c *conn) stampTo(el *element, to string) []byte {
	c.scratch = appendStamped(c.scratch[:0], el, c.user.full, to, c.lang)
	return c.scratch
}

// bounce sends an error reply for el back to this client, unless el is
// itself an error (RFC 6120 §8.3.1: never answer an error with an error).
func (c *conn) bounce(el *element, from, cond, text string) {
	if el.attr("type") == "error" {
		return
	}
	c.srv.failed(el, cond)
	if from == "" {
		from = c.domain
	}
	b := c.srv.pool.get()
	*b = appendErrorReply(*b, el, from, c.user.full, cond, text)
	c.send(*b)
	c.srv.pool.put(b)
}

// remoteFailed bounces with the error's Condition() when it has one
// (see Remote).
func (c *conn) remoteFailed(el *element, to addr, err error) {
	cond := "remote-server-not-found"
	var ce interface{ Condition() string }
	if errors.As(err, &ce) {
		cond = ce.Condition()
	}
	c.log.Debug("remote delivery failed", "to", to.full, "err", err)
	c.bounce(el, to.full, cond, "")
}

// target parses the to address of a stanza; an empty to means the
// sender's own account (RFC 6120 §10.3).
func (s *Server) target(o origin, el *element) (addr, bool) {
	to := el.attr("to")
	if to == "" {
		me := o.account()
		return addr{local: me.local, domain: me.domain, bare: me.bare, full: me.bare}, true
	}
	a, err := parseAddr(to)
	if err != nil {
		o.bounce(el, "", "jid-malformed", "")
		return addr{}, false
	}
	return a, true
}

// stamp serializes el with the sender's full JID as from (and to when the
// sender left it out) into the origin's scratch buffer.
func stamp(o origin, el *element, to addr) []byte {
	t := ""
	if v, _ := el.attrRaw("to"); len(v) == 0 {
		t = to.full
	}
	return o.stampTo(el, t)
}

// toRemote hands a stanza to the Remote; failures go to the origin.
func (s *Server) toRemote(ctx context.Context, o origin, el *element, to addr, raw []byte) {
	r := s.opts.Remote
	if r == nil {
		o.bounce(el, to.domain, "remote-server-not-found", "")
		return
	}
	err := r.Deliver(ctx, Stanza{Name: el.name.Local, From: o.fromJID(), To: to.full, Type: el.attr("type"), ID: el.attr("id"), Raw: raw})
	if err != nil {
		o.remoteFailed(el, to, err)
	}
}

// routeMessage implements RFC 6121 §8.5 for messages.
func (s *Server) routeMessage(ctx context.Context, o origin, el *element) {
	to, ok := s.target(o, el)
	if !ok {
		return
	}
	raw := stamp(o, el, to)
	if !s.isLocal(to.domain) {
		s.toRemote(ctx, o, el, to, raw)
		return
	}
	if to.local == "" {
		// Messages to the server itself: nothing here consumes them.
		o.bounce(el, to.full, "service-unavailable", "")
		return
	}
	s.deliverMessage(ctx, o, o.endpoints(), el, to, raw)
}

func (s *Server) deliverMessage(ctx context.Context, snd sender, scratch *[]Endpoint, el *element, to addr, raw []byte) {
	typ := el.attr("type")
	eps := s.loc.Lookup(to.bare, (*scratch)[:0])
	*scratch = eps[:0]
	defer clear(eps)
	if to.resource != "" {
		for _, e := range eps {
			if e.JID() == to.full {
				if err := e.Deliver(ctx, raw); err == nil {
					s.routed(snd)
					return
				} else if !errors.Is(err, ErrGone) {
					s.deliveryFailed(snd, el, to, err)
					return
				}
				break
			}
		}
		// §8.5.3.2.1: no such resource.
		switch typ {
		case "groupchat":
			snd.bounce(el, to.full, "service-unavailable", "")
			return
		case "headline", "error":
			return
		}
	}
	switch typ {
	case "groupchat":
		snd.bounce(el, to.full, "service-unavailable", "")
		return
	case "error":
		return
	}
	// §8.5.2.1.1: the available resources of highest non-negative
	// priority (all non-negative ones for headlines).
	best := -1
	for _, e := range eps {
		if p, av := e.Presence(); av && p > best {
			best = p
		}
	}
	delivered := 0
	if best >= 0 {
		for _, e := range eps {
			p, av := e.Presence()
			if !av || p < 0 || (typ != "headline" && p != best) {
				continue
			}
			if err := e.Deliver(ctx, raw); err == nil {
				delivered++
			} else if !errors.Is(err, ErrGone) {
				s.deliveryFailed(snd, el, to, err)
				return
			}
		}
	}
	if delivered > 0 {
		s.routed(snd)
		return
	}
	if typ == "headline" {
		return
	}
	s.storeOffline(ctx, snd, el, to, raw, len(eps) > 0)
}

func (s *Server) deliveryFailed(snd sender, el *element, to addr, err error) {
	snd.logger().Debug("delivery failed", "to", to.full, "err", err)
	cond := "internal-server-error"
	if errors.Is(err, ErrQueueFull) {
		cond = "resource-constraint"
	}
	snd.bounce(el, to.full, cond, "")
}

// storeOffline keeps a message for an account with no available resource
// (RFC 6121 §8.5.2.2.1, XEP-0160), or bounces if there is no account.
func (s *Server) storeOffline(ctx context.Context, snd sender, el *element, to addr, raw []byte, known bool) {
	if !known {
		if _, err := s.opts.Users.User(ctx, to.bare); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				snd.bounce(el, to.full, "service-unavailable", "")
				return
			}
			snd.logger().Error("user lookup failed", "to", to.bare, "err", err)
			snd.bounce(el, to.full, "internal-server-error", "")
			return
		}
	}
	m := store.OfflineMessage{To: to.bare, From: snd.fromJID(), Stamp: time.Now().UTC(), Stanza: append([]byte(nil), raw...)}
	if _, err := s.opts.Offline.StoreOffline(ctx, m); err != nil {
		if errors.Is(err, store.ErrQuota) {
			snd.bounce(el, to.full, "service-unavailable", "offline storage full")
			return
		}
		snd.logger().Error("storing offline message failed", "to", to.bare, "err", err)
		snd.bounce(el, to.full, "internal-server-error", "")
		return
	}
	s.routed(snd)
}

// deliverOffline writes stored messages to this session, in order, with
// a delay stamp, and deletes them once they were flushed to the client.
func (c *conn) deliverOffline(ctx context.Context) {
	msgs, err := c.srv.opts.Offline.OfflineMessages(ctx, c.user.bare)
	if err != nil {
		c.log.Error("reading offline messages failed", "err", err)
		return
	}
	if len(msgs) == 0 {
		return
	}
	for i, m := range msgs {
		b := c.srv.pool.get()
		*b, err = appendDelay(*b, m.Stanza, c.domain, m.Stamp)
		if err != nil {
			c.log.Error("stored stanza unusable", "id", m.ID, "err", err)
			c.srv.pool.put(b)
			continue
		}
		var done func()
		if i == len(msgs)-1 {
			upTo := m.ID
			bare := c.user.bare
			done = func() {
				// Runs on the writer goroutine after the flush.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if err := c.srv.opts.Offline.DeleteOffline(dctx, bare, upTo); err != nil {
					c.log.Error("deleting delivered offline messages failed", "err", err)
				}
			}
		}
		select {
		case c.out <- outItem{buf: b, done: done}:
		case <-c.done:
			c.srv.pool.put(b)
			return
		}
	}
	c.log.Debug("offline messages delivered", "count", len(msgs))
}
