package xmppside

import (
	"context"
	"encoding/xml"
	"errors"
	"runtime"
	"strconv"

	"github.com/umpp/umpp/store"
)

const (
	nsRoster    = "jabber:iq:roster"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsDiscoItem = "http://jabber.org/protocol/disco#items"
	nsPing      = "urn:xmpp:ping"
	nsVersion   = "jabber:iq:version"
)

// iqPayload is the single child of an IQ get or set.
type iqPayload struct {
	XMLName xml.Name
	Type    string `xml:"type,attr"`
	ID      string `xml:"id,attr"`
	Child   []struct {
		XMLName xml.Name
		Inner   []byte `xml:",innerxml"`
	} `xml:",any"`
}

// handleIQ routes or answers an IQ (RFC 6120 §8.2.3, RFC 6121 §8.5).
func (c *conn) handleIQ(ctx context.Context, el *element) {
	typ := el.attr("type")
	switch typ {
	case "get", "set", "result", "error":
	default:
		c.bounce(el, "", "bad-request", "")
		return
	}
	if el.attr("id") == "" {
		c.bounce(el, "", "bad-request", "iq without id")
		return
	}
	to, ok := c.srv.target(c, el)
	if !ok {
		return
	}
	if !c.srv.isLocal(to.domain) {
		c.srv.toRemote(ctx, c, el, to, stamp(c, el, to))
		return
	}
	if to.resource != "" {
		raw := stamp(c, el, to)
		var buf [8]Endpoint
		for _, e := range c.srv.loc.Lookup(to.bare, buf[:0]) {
			if e.JID() == to.full {
				if err := e.Deliver(ctx, raw); err != nil {
					c.srv.deliveryFailed(c, el, to, err)
				}
				return
			}
		}
		if typ == "get" || typ == "set" {
			c.bounce(el, to.full, "service-unavailable", "")
		}
		return
	}
	if typ == "result" || typ == "error" {
		return
	}
	var p iqPayload
	if err := decodeElement(el.raw, &p); err != nil || len(p.Child) != 1 {
		c.bounce(el, to.full, "bad-request", "")
		return
	}
	child := p.Child[0].XMLName
	from := ""
	if el.attr("to") != "" {
		from = to.full
	}
	own := to.bare == c.user.bare
	switch {
	case child.Space == nsRoster && child.Local == "query" && own:
		c.rosterIQ(ctx, el, typ, p.Child[0].Inner)
	case child.Space == nsRoster:
		c.bounce(el, from, "forbidden", "")
	case child.Space == nsPing && child.Local == "ping" && typ == "get":
		c.result(el, from, "")
	case child.Space == nsSession && child.Local == "session" && typ == "set" && to.local == "":
		c.result(el, from, "")
	case child.Space == nsVersion && child.Local == "query" && typ == "get" && to.local == "":
		o := c.srv.opts
		c.result(el, from, "<query xmlns='"+nsVersion+"'><name>"+string(appendText(nil, o.SoftwareName))+"</name><version>"+string(appendText(nil, o.SoftwareVersion))+"</version><os>"+runtime.GOOS+"</os></query>")
	case child.Space == nsDiscoInfo && child.Local == "query" && typ == "get":
		c.discoInfo(ctx, el, from, to)
	case child.Space == nsDiscoItem && child.Local == "query" && typ == "get":
		if to.local != "" && !c.accountExists(ctx, to.bare) {
			c.bounce(el, from, "service-unavailable", "")
			return
		}
		c.result(el, from, "<query xmlns='"+nsDiscoItem+"'/>")
	default:
		c.bounce(el, from, "service-unavailable", "")
	}
}

// result sends an IQ result with an optional payload.
func (c *conn) result(el *element, from, payload string) {
	var b []byte
	b = append(b, "<iq type='result'"...)
	b = appendAttr(b, "id", el.attr("id"))
	if from != "" {
		b = appendAttr(b, "from", from)
	}
	b = appendAttr(b, "to", c.user.full)
	if payload == "" {
		b = append(b, "/>"...)
	} else {
		b = append(b, '>')
		b = append(b, payload...)
		b = append(b, "</iq>"...)
	}
	c.send(b)
}

func (c *conn) accountExists(ctx context.Context, bare string) bool {
	_, err := c.srv.opts.Users.User(ctx, bare)
	return err == nil
}

// discoInfo answers XEP-0030 info queries for the server and accounts.
func (c *conn) discoInfo(ctx context.Context, el *element, from string, to addr) {
	var p struct {
		Query struct {
			Node string `xml:"node,attr"`
		} `xml:"http://jabber.org/protocol/disco#info query"`
	}
	_ = decodeElement(el.raw, &p)
	if p.Query.Node != "" {
		c.bounce(el, from, "item-not-found", "")
		return
	}
	feature := func(v string) string { return "<feature var='" + v + "'/>" }
	var q string
	if to.local == "" {
		q = "<identity category='server' type='im' name='" + string(appendAttrValue(nil, c.srv.opts.SoftwareName)) + "'/>" +
			feature(nsDiscoInfo) + feature(nsDiscoItem) + feature(nsPing) + feature(nsVersion) +
			feature("msgoffline") + feature("urn:xmpp:delay") + feature(nsRoster)
	} else {
		if !c.accountExists(ctx, to.bare) {
			c.bounce(el, from, "service-unavailable", "")
			return
		}
		q = "<identity category='account' type='registered'/>" + feature(nsDiscoInfo) + feature(nsDiscoItem)
	}
	c.result(el, from, "<query xmlns='"+nsDiscoInfo+"'>"+q+"</query>")
}

type rosterQuery struct {
	Items []struct {
		JID          string   `xml:"jid,attr"`
		Name         string   `xml:"name,attr"`
		Subscription string   `xml:"subscription,attr"`
		Groups       []string `xml:"group"`
	} `xml:"item"`
}

// appendRosterItem serializes one roster item (RFC 6121 §2.1.2).
func appendRosterItem(b []byte, it store.RosterItem, remove bool) []byte {
	b = append(b, "<item"...)
	b = appendAttr(b, "jid", it.Contact)
	if it.Name != "" && !remove {
		b = appendAttr(b, "name", it.Name)
	}
	sub := string(it.Subscription)
	if remove {
		sub = "remove"
	}
	b = appendAttr(b, "subscription", sub)
	if it.PendingOut && !remove {
		b = appendAttr(b, "ask", "subscribe")
	}
	if len(it.Groups) == 0 || remove {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, g := range it.Groups {
		b = append(b, "<group>"...)
		b = appendText(b, g)
		b = append(b, "</group>"...)
	}
	return append(b, "</item>"...)
}

// rosterPush is a roster push (RFC 6121 §2.1.6).
func rosterPush(it store.RosterItem, ver int64, remove bool) []byte {
	var b []byte
	b = append(b, "<iq type='set' id='push"...)
	b = strconv.AppendInt(b, ver, 10)
	b = append(b, "'><query xmlns='"+nsRoster+"' ver='"...)
	b = strconv.AppendInt(b, ver, 10)
	b = append(b, "'>"...)
	b = appendRosterItem(b, it, remove)
	return append(b, "</query></iq>"...)
}

// rosterIQ implements roster get and set (RFC 6121 §2).
func (c *conn) rosterIQ(ctx context.Context, el *element, typ string, inner []byte) {
	s := c.srv
	if typ == "get" {
		items, ver, err := s.opts.Rosters.Roster(ctx, c.user.bare)
		if err != nil {
			c.log.Error("reading roster failed", "err", err)
			c.bounce(el, "", "internal-server-error", "")
			return
		}
		b := []byte("<query xmlns='" + nsRoster + "' ver='" + strconv.FormatInt(ver, 10) + "'>")
		for _, it := range items {
			if visible(it) {
				b = appendRosterItem(b, it, false)
			}
		}
		b = append(b, "</query>"...)
		c.rosterOn.Store(true)
		c.result(el, "", string(b))
		return
	}
	var q rosterQuery
	if err := xml.Unmarshal(append(append([]byte("<query>"), inner...), "</query>"...), &q); err != nil || len(q.Items) != 1 {
		c.bounce(el, "", "bad-request", "")
		return
	}
	item := q.Items[0]
	contact, err := parseAddr(item.JID)
	if err != nil || contact.resource != "" {
		c.bounce(el, "", "jid-malformed", "")
		return
	}
	if item.Subscription == "remove" {
		c.rosterRemove(ctx, el, contact)
		return
	}
	if item.Subscription != "" && item.Subscription != "none" && item.Subscription != "both" && item.Subscription != "to" && item.Subscription != "from" {
		c.bounce(el, "", "bad-request", "")
		return
	}
	err = s.updateItem(ctx, c.user.bare, contact.bare, func(it *store.RosterItem) bool {
		it.Name = item.Name
		it.Groups = item.Groups
		return true
	})
	if err != nil {
		c.log.Error("roster set failed", "err", err)
		c.bounce(el, "", "internal-server-error", "")
		return
	}
	c.result(el, "", "")
}

// rosterRemove deletes an item and cancels subscriptions both ways (RFC
// 6121 §2.5.2).
func (c *conn) rosterRemove(ctx context.Context, el *element, contact addr) {
	s := c.srv
	unlock := s.rlocks.lock(c.user.bare)
	it, err := s.opts.Rosters.RosterItem(ctx, c.user.bare, contact.bare)
	var ver int64
	if err == nil {
		ver, err = s.opts.Rosters.DeleteRosterItem(ctx, c.user.bare, contact.bare)
	}
	unlock()
	if errors.Is(err, store.ErrNotFound) {
		c.bounce(el, "", "item-not-found", "")
		return
	}
	if err != nil {
		c.log.Error("roster remove failed", "err", err)
		c.bounce(el, "", "internal-server-error", "")
		return
	}
	s.pushRoster(ctx, c.user.bare, rosterPush(it, ver, true))
	s.rosterChanged(ctx, it, true)
	c.result(el, "", "")
	me := addr{local: c.user.local, domain: c.user.domain, bare: c.user.bare, full: c.user.bare}
	if it.Subscription == store.SubTo || it.Subscription == store.SubBoth || it.PendingOut {
		s.routeFromServer(ctx, "unsubscribe", me, contact)
	}
	if it.Subscription == store.SubFrom || it.Subscription == store.SubBoth || it.PendingIn {
		s.routeFromServer(ctx, "unsubscribed", me, contact)
		var buf [8]Endpoint
		for _, e := range s.loc.Lookup(c.user.bare, buf[:0]) {
			if _, av := e.Presence(); av {
				s.sendPresenceTo(ctx, contact, unavailableXML(e.JID(), contact.bare), e.JID())
			}
		}
	}
}

// pushRoster sends a roster push to the owner's interested resources:
// those that requested the roster (RFC 6121 §2.1.6).
func (s *Server) pushRoster(ctx context.Context, owner string, push []byte) {
	var buf [8]Endpoint
	for _, e := range s.loc.Lookup(owner, buf[:0]) {
		if c, ok := e.(*conn); ok && !c.rosterOn.Load() {
			continue
		}
		_ = e.Deliver(ctx, push)
	}
}
