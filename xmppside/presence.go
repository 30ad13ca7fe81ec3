package xmppside

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"

	"github.com/umpp/umpp/store"
)

// rosterLocks serializes read-modify-write of one owner's roster items.
type rosterLocks struct {
	seed  maphash.Seed
	locks [64]sync.Mutex
}

func (r *rosterLocks) lock(owner string) func() {
	m := &r.locks[maphash.String(r.seed, owner)%64]
	m.Lock()
	return m.Unlock
}

type presencePayload struct {
	Priority string `xml:"priority"`
}

// handlePresence implements RFC 6121 §4 (availability) and §3
// (subscriptions) for presence sent by a local resource.
func (s *Server) handlePresence(ctx context.Context, o origin, el *element) {
	typ := el.attr("type")
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		to, ok := s.target(o, el)
		if !ok {
			return
		}
		if to.local == "" && s.isLocal(to.domain) {
			return
		}
		s.outboundSubscription(ctx, o, el, typ, to)
		return
	case "probe":
		// Probes are the server's business (RFC 6121 §4.3); ignore.
		return
	case "", "unavailable", "error":
	default:
		o.bounce(el, "", "bad-request", "unknown presence type")
		return
	}
	if el.attr("to") == "" {
		if typ == "error" {
			return
		}
		s.broadcastPresence(ctx, o, el, typ)
		return
	}
	to, ok := s.target(o, el)
	if !ok {
		return
	}
	// Directed presence (RFC 6121 §4.6).
	raw := stamp(o, el, to)
	if typ != "error" {
		d := o.directedTo()
		if *d == nil {
			*d = make(map[string]bool)
		}
		if typ == "" {
			(*d)[to.full] = true
		} else {
			delete(*d, to.full)
		}
	}
	s.routePresence(ctx, o, el, to, raw)
}

// routePresence delivers an availability presence to a JID: a full JID
// gets it if connected, a bare JID on all available resources.
func (s *Server) routePresence(ctx context.Context, o origin, el *element, to addr, raw []byte) {
	if !s.isLocal(to.domain) {
		s.toRemote(ctx, o, el, to, raw)
		return
	}
	if to.local == "" {
		return
	}
	s.deliverPresence(ctx, to, raw)
}

// deliverPresence gives raw to the addressed local resources; presence is
// never stored nor bounced (RFC 6121 §8.5.2.2.2).
func (s *Server) deliverPresence(ctx context.Context, to addr, raw []byte) {
	var buf [8]Endpoint
	eps := s.loc.Lookup(to.bare, buf[:0])
	for _, e := range eps {
		if to.resource != "" {
			if e.JID() == to.full {
				_ = e.Deliver(ctx, raw)
			}
			continue
		}
		if _, av := e.Presence(); av {
			_ = e.Deliver(ctx, raw)
		}
	}
}

// deliverAll gives raw to every connected resource of a local account
// (subscription requests and roster pushes).
func (s *Server) deliverAll(ctx context.Context, bare string, raw []byte, availableOnly bool) int {
	var buf [8]Endpoint
	n := 0
	for _, e := range s.loc.Lookup(bare, buf[:0]) {
		if availableOnly {
			if _, av := e.Presence(); !av {
				continue
			}
		}
		if e.Deliver(ctx, raw) == nil {
			n++
		}
	}
	return n
}

// broadcastPresence handles presence without a to: initial presence,
// updates and unavailable (RFC 6121 §4.2, §4.4, §4.5).
func (s *Server) broadcastPresence(ctx context.Context, o origin, el *element, typ string) {
	if typ == "" {
		initial := o.available(ctx, el)
		s.sendToSubscribers(ctx, o, el)
		if initial {
			s.initialPresence(ctx, o)
		}
		return
	}
	if o.unavailable(ctx, el) {
		s.sendToSubscribers(ctx, o, el)
		s.unavailableToDirected(ctx, o)
	}
}

// available records the stream's available presence: priority, the
// stanza as broadcast (for probes and new subscribers), the observer.
func (c *conn) available(ctx context.Context, el *element) bool {
	var p presencePayload
	prio := 0
	if err := decodeElement(el.raw, &p); err == nil && p.Priority != "" {
		if v, err := strconv.Atoi(strings.TrimSpace(p.Priority)); err == nil {
			prio = max(-128, min(127, v))
		}
	}
	initial := !c.avail.Load()
	c.prio.Store(int32(prio))
	raw := append([]byte(nil), c.stampTo(el, "")...)
	c.last.Store(&raw)
	c.avail.Store(true)
	c.observe(ctx, "", raw)
	return initial
}

func (c *conn) unavailable(ctx context.Context, el *element) bool {
	was := c.avail.Swap(false)
	c.last.Store(nil)
	if was && c.srv.opts.Presence != nil {
		c.observe(ctx, "unavailable", append([]byte(nil), c.stampTo(el, "")...))
	}
	return was
}

// sendToSubscribers sends el, stamped, to the contacts with subscription
// from or both and to the account's other available resources.
func (s *Server) sendToSubscribers(ctx context.Context, o origin, el *element) {
	me := o.account()
	items, _, err := s.opts.Rosters.Roster(ctx, me.bare)
	if err != nil {
		o.logger().Error("reading roster failed", "err", err)
	}
	directed := *o.directedTo()
	for _, it := range items {
		if it.Subscription != store.SubFrom && it.Subscription != store.SubBoth {
			continue
		}
		to, err := parseAddr(it.Contact)
		if err != nil {
			continue
		}
		delete(directed, to.full)
		s.routePresence(ctx, o, el, to, o.stampTo(el, to.bare))
	}
	var buf [8]Endpoint
	for _, e := range s.loc.Lookup(me.bare, buf[:0]) {
		if e.JID() == me.full {
			continue
		}
		if _, av := e.Presence(); av {
			_ = e.Deliver(ctx, o.stampTo(el, e.JID()))
		}
	}
}

// initialPresence runs after the first available presence of a resource:
// presence of contacts (probes), of the account's other resources,
// pending subscription requests, then (c2s) offline messages.
func (s *Server) initialPresence(ctx context.Context, o origin) {
	me := o.account()
	items, _, err := s.opts.Rosters.Roster(ctx, me.bare)
	if err != nil {
		o.logger().Error("reading roster failed", "err", err)
	}
	var buf [8]Endpoint
	for _, it := range items {
		if it.PendingIn && len(it.Stanza) > 0 {
			o.toSelf(ctx, it.Stanza)
		}
		if it.Subscription != store.SubTo && it.Subscription != store.SubBoth {
			continue
		}
		to, err := parseAddr(it.Contact)
		if err != nil {
			continue
		}
		if !s.isLocal(to.domain) {
			s.probeRemote(ctx, o, to)
			continue
		}
		for _, e := range s.loc.Lookup(to.bare, buf[:0]) {
			if p := e.LastPresence(); p != nil {
				o.toSelf(ctx, p)
			}
		}
	}
	for _, e := range s.loc.Lookup(me.bare, buf[:0]) {
		if e.JID() == me.full {
			continue
		}
		if p := e.LastPresence(); p != nil {
			o.toSelf(ctx, p)
		}
	}
	o.initialDone(ctx)
}

// probeRemote asks a remote contact's server for its presence.
func (s *Server) probeRemote(ctx context.Context, o origin, to addr) {
	r := s.opts.Remote
	if r == nil {
		return
	}
	me := o.account().bare
	var b []byte
	b = append(b, "<presence type='probe'"...)
	b = appendAttr(b, "from", me)
	b = appendAttr(b, "to", to.bare)
	b = append(b, "/>"...)
	if err := r.Deliver(ctx, Stanza{Name: "presence", From: me, To: to.bare, Type: "probe", Raw: b}); err != nil {
		o.logger().Debug("probe failed", "to", to.bare, "err", err)
	}
}

func unavailableXML(from, to string) []byte {
	var b []byte
	b = append(b, "<presence type='unavailable'"...)
	b = appendAttr(b, "from", from)
	if to != "" { // broadcast, as the PresenceObserver sees it
		b = appendAttr(b, "to", to)
	}
	return append(b, "/>"...)
}

// unavailableToDirected ends the directed presence of a resource that
// became unavailable (RFC 6121 §4.6.3).
func (s *Server) unavailableToDirected(ctx context.Context, o origin) {
	me := o.account().full
	d := o.directedTo()
	for full := range *d {
		to, err := parseAddr(full)
		if err != nil {
			continue
		}
		raw := unavailableXML(me, to.full)
		if s.isLocal(to.domain) {
			s.deliverPresence(ctx, to, raw)
		} else if r := s.opts.Remote; r != nil {
			_ = r.Deliver(ctx, Stanza{Name: "presence", From: me, To: to.full, Type: "unavailable", Raw: raw})
		}
	}
	clear(*d)
}

// leave runs when the session ends: it stops routing to it and tells
// contacts it is gone (RFC 6121 §4.5.2).
func (c *conn) leave(ctx context.Context) {
	c.srv.loc.Unregister(c)
	if !c.avail.Swap(false) {
		return
	}
	var buf [8]Endpoint
	for _, e := range c.srv.loc.Lookup(c.user.bare, buf[:0]) {
		if e.JID() == c.user.full {
			// Replaced by a new login (conflict): the resource lives on.
			c.last.Store(nil)
			return
		}
	}
	c.last.Store(nil)
	ctx = context.WithoutCancel(ctx)
	if c.srv.opts.Presence != nil {
		c.observe(ctx, "unavailable", unavailableXML(c.user.full, ""))
	}
	items, _, err := c.srv.opts.Rosters.Roster(ctx, c.user.bare)
	if err != nil {
		c.log.Error("reading roster failed", "err", err)
	}
	for _, it := range items {
		if it.Subscription != store.SubFrom && it.Subscription != store.SubBoth {
			continue
		}
		to, err := parseAddr(it.Contact)
		if err != nil {
			continue
		}
		delete(c.directed, to.full)
		raw := unavailableXML(c.user.full, to.bare)
		if c.srv.isLocal(to.domain) {
			c.srv.deliverPresence(ctx, to, raw)
		} else if r := c.srv.opts.Remote; r != nil {
			_ = r.Deliver(ctx, Stanza{Name: "presence", From: c.user.full, To: to.bare, Type: "unavailable", Raw: raw})
		}
	}
	for _, e := range c.srv.loc.Lookup(c.user.bare, buf[:0]) {
		if _, av := e.Presence(); av {
			_ = e.Deliver(ctx, unavailableXML(c.user.full, e.JID()))
		}
	}
	c.srv.unavailableToDirected(ctx, c)
}

// subscriptionXML serializes a subscription stanza from a bare JID.
func subscriptionXML(typ, from, to string) []byte {
	var b []byte
	b = append(b, "<presence"...)
	b = appendAttr(b, "type", typ)
	b = appendAttr(b, "from", from)
	b = appendAttr(b, "to", to)
	return append(b, "/>"...)
}

// outboundSubscription handles a subscription stanza sent by a local
// resource (RFC 6121 §3, Appendix A "outbound" tables).
func (s *Server) outboundSubscription(ctx context.Context, o origin, el *element, typ string, to addr) {
	me := o.account()
	owner := me.bare
	contact := to.bare
	route := true
	var wasFrom bool
	err := s.updateItem(ctx, owner, contact, func(it *store.RosterItem) bool {
		wasFrom = it.Subscription == store.SubFrom || it.Subscription == store.SubBoth
		switch typ {
		case "subscribe":
			if it.Subscription == store.SubTo || it.Subscription == store.SubBoth {
				return false
			}
			if it.PendingOut {
				return false
			}
			it.PendingOut = true
		case "subscribed":
			if !it.PendingIn {
				// Pre-approval (RFC 6121 §3.4).
				route = false
				if wasFrom || it.Approved {
					return false
				}
				it.Approved = true
				return true
			}
			it.PendingIn = false
			it.Stanza = nil
			it.Subscription = addFrom(it.Subscription)
		case "unsubscribe":
			it.PendingOut = false
			it.Subscription = dropTo(it.Subscription)
		case "unsubscribed":
			it.PendingIn = false
			it.Approved = false
			it.Stanza = nil
			it.Subscription = dropFrom(it.Subscription)
		}
		return true
	})
	if err != nil {
		o.logger().Error("roster update failed", "contact", contact, "err", err)
		o.bounce(el, "", "internal-server-error", "")
		return
	}
	if !route {
		return
	}
	// Subscription stanzas carry the user's bare JID (RFC 6121 §3.1.2).
	raw := subscriptionXML(typ, owner, contact)
	if s.isLocal(to.domain) {
		s.inboundSubscription(ctx, typ, addr{local: me.local, domain: me.domain, bare: owner, full: owner}, to, raw)
	} else if s.opts.Remote != nil {
		if err := s.opts.Remote.Deliver(ctx, Stanza{Name: "presence", From: owner, To: contact, Type: typ, Raw: raw}); err != nil {
			o.logger().Debug("remote subscription delivery failed", "to", contact, "err", err)
		}
	}
	switch typ {
	case "subscribed":
		// The new subscriber gets the user's current presence.
		var buf [8]Endpoint
		for _, e := range s.loc.Lookup(owner, buf[:0]) {
			if p := e.LastPresence(); p != nil {
				s.sendPresenceTo(ctx, to, p, e.JID())
			}
		}
	case "unsubscribed":
		if wasFrom {
			var buf [8]Endpoint
			for _, e := range s.loc.Lookup(owner, buf[:0]) {
				if _, av := e.Presence(); av {
					s.sendPresenceTo(ctx, to, unavailableXML(e.JID(), contact), e.JID())
				}
			}
		}
	}
}

// sendPresenceTo delivers a presence from a local resource to a bare JID,
// local or remote.
func (s *Server) sendPresenceTo(ctx context.Context, to addr, raw []byte, from string) {
	if s.isLocal(to.domain) {
		s.deliverPresence(ctx, addr{local: to.local, domain: to.domain, bare: to.bare, full: to.bare}, raw)
		return
	}
	if s.opts.Remote != nil {
		_ = s.opts.Remote.Deliver(ctx, Stanza{Name: "presence", From: from, To: to.bare, Raw: withTo(raw, to.bare)})
	}
}

// inboundSubscription processes a subscription stanza addressed to a
// local account (RFC 6121 §3, "inbound" tables). from is a bare JID.
func (s *Server) inboundSubscription(ctx context.Context, typ string, from, to addr, raw []byte) {
	owner := to.bare
	contact := from.bare
	if _, err := s.opts.Users.User(ctx, owner); err != nil {
		if errors.Is(err, store.ErrNotFound) && typ == "subscribe" {
			s.routeFromServer(ctx, "unsubscribed", to, from)
		}
		return
	}
	deliver := false
	autoReply := false
	err := s.updateItem(ctx, owner, contact, func(it *store.RosterItem) bool {
		switch typ {
		case "subscribe":
			if it.Subscription == store.SubFrom || it.Subscription == store.SubBoth {
				autoReply = true
				return false
			}
			if it.Approved {
				it.Approved = false
				it.Subscription = addFrom(it.Subscription)
				autoReply = true
				return true
			}
			deliver = true
			it.PendingIn = true
			it.Stanza = raw
		case "subscribed":
			if !it.PendingOut {
				return false
			}
			it.PendingOut = false
			it.Subscription = addTo(it.Subscription)
			deliver = true
		case "unsubscribe":
			if it.Subscription != store.SubFrom && it.Subscription != store.SubBoth && !it.PendingIn {
				return false
			}
			it.PendingIn = false
			it.Stanza = nil
			it.Subscription = dropFrom(it.Subscription)
			deliver = true
		case "unsubscribed":
			if it.Subscription != store.SubTo && it.Subscription != store.SubBoth && !it.PendingOut {
				return false
			}
			it.PendingOut = false
			it.Subscription = dropTo(it.Subscription)
			deliver = true
		}
		return true
	})
	if err != nil {
		s.log.Error("roster update failed", "jid", owner, "contact", contact, "err", err)
		return
	}
	if deliver {
		s.deliverAll(ctx, owner, raw, false)
	}
	if autoReply {
		s.routeFromServer(ctx, "subscribed", to, from)
		var buf [8]Endpoint
		for _, e := range s.loc.Lookup(owner, buf[:0]) {
			if p := e.LastPresence(); p != nil {
				s.sendPresenceTo(ctx, from, p, e.JID())
			}
		}
	}
	if typ == "unsubscribe" && deliver {
		var buf [8]Endpoint
		for _, e := range s.loc.Lookup(owner, buf[:0]) {
			if _, av := e.Presence(); av {
				s.sendPresenceTo(ctx, from, unavailableXML(e.JID(), contact), e.JID())
			}
		}
	}
}

// routeFromServer sends a subscription stanza generated on behalf of a
// local account (from, bare) to a JID, local or remote.
func (s *Server) routeFromServer(ctx context.Context, typ string, from, to addr) {
	raw := subscriptionXML(typ, from.bare, to.bare)
	if !s.isLocal(to.domain) {
		if s.opts.Remote != nil {
			_ = s.opts.Remote.Deliver(ctx, Stanza{Name: "presence", From: from.bare, To: to.bare, Type: typ, Raw: raw})
		}
		return
	}
	s.inboundSubscription(ctx, typ, from, to, raw)
}

// updateItem applies change to owner's item for contact under the
// owner's roster lock, storing it when change reports a modification and
// pushing it to the owner's resources, then tells the RosterObserver. A
// missing item starts as subscription none.
func (s *Server) updateItem(ctx context.Context, owner, contact string, change func(*store.RosterItem) bool) error {
	it, changed, err := s.writeItem(ctx, owner, contact, change)
	if changed {
		s.rosterChanged(ctx, it, false)
	}
	return err
}

func (s *Server) writeItem(ctx context.Context, owner, contact string, change func(*store.RosterItem) bool) (store.RosterItem, bool, error) {
	unlock := s.rlocks.lock(owner)
	defer unlock()
	it, err := s.opts.Rosters.RosterItem(ctx, owner, contact)
	switch {
	case errors.Is(err, store.ErrNotFound):
		it = store.RosterItem{Owner: owner, Contact: contact, Subscription: store.SubNone}
	case err != nil:
		return it, false, err
	}
	if !change(&it) {
		return it, false, nil
	}
	ver, err := s.opts.Rosters.PutRosterItem(ctx, it)
	if err != nil {
		return it, false, err
	}
	if visible(it) {
		s.pushRoster(ctx, owner, rosterPush(it, ver, false))
	}
	return it, true, nil
}

// visible reports whether a roster item shows in the owner's roster: an
// item that only records an inbound request does not (RFC 6121 §3.1.3).
func visible(it store.RosterItem) bool {
	return it.Subscription != store.SubNone || it.PendingOut || it.Name != "" || len(it.Groups) > 0 || !it.PendingIn && !it.Approved
}

func addFrom(s store.Subscription) store.Subscription {
	switch s {
	case store.SubTo, store.SubBoth:
		return store.SubBoth
	}
	return store.SubFrom
}

func addTo(s store.Subscription) store.Subscription {
	switch s {
	case store.SubFrom, store.SubBoth:
		return store.SubBoth
	}
	return store.SubTo
}

func dropFrom(s store.Subscription) store.Subscription {
	switch s {
	case store.SubBoth, store.SubTo:
		return store.SubTo
	}
	return store.SubNone
}

func dropTo(s store.Subscription) store.Subscription {
	switch s {
	case store.SubBoth, store.SubFrom:
		return store.SubFrom
	}
	return store.SubNone
}

// observe tells the PresenceObserver of a broadcast presence change; raw
// is a copy it may keep.
func (c *conn) observe(ctx context.Context, typ string, raw []byte) {
	if c.srv.opts.Presence == nil {
		return
	}
	c.srv.opts.Presence.LocalPresence(ctx, Stanza{Name: "presence", From: c.user.full, Type: typ, Raw: raw})
}
