package session

import (
	"context"
	"errors"
	"strings"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/pidf"
	"github.com/umpp/umpp/store"
)

// Presence (draft §4.2, RFC 8048). The roster is the one record of who
// may see whom and who watches whom:
//
//   - A roster subscription of a local user to a user of a UMPP or SIMPLE
//     peer (pending or granted) is one SIP SUBSCRIBE pres: per pair, kept
//     by the SIP server and persisted in store.Subscriptions; its NOTIFYs
//     become XMPP presence for the watcher's resources and the document
//     SIP watchers of that presentity see here.
//   - A SIP SUBSCRIBE for a local user (from a local SIMPLE client or a
//     peer) is allowed when the presentity's roster grants the watcher a
//     subscription (from, both, or pre-approved); otherwise it is pending
//     and the presentity gets an XMPP subscription request. Approving it
//     in any client authorizes the SIP subscription.
//   - A SIMPLE client has no way to answer authorization requests, so a
//     SUBSCRIBE it sends also pre-approves the presentity (RFC 6121 §3.4):
//     its buddy list is its authorization list.
//   - An XMPP user's broadcast presence is the document SIP watchers see
//     (SetPresence); a SIMPLE user's PUBLISH is broadcast to its XMPP
//     contacts as presence of its SIP resource.

// Decision answers a subscription request (sipside's PolicyDecision).
type Decision int

// Decisions.
const (
	DecisionDeny Decision = iota
	DecisionAllow
	DecisionPending
)

type subKey struct{ watcher, presentity string }

// outSub is an outgoing subscription of the gateway.
type outSub struct {
	key    subKey
	unsub  Unsubscriber
	active bool
	gone   bool
}

// MaySubscribe decides on a SIP subscription of watcher to a local
// presentity (sipside's PresencePolicy).
func (g *Gateway) MaySubscribe(ctx context.Context, watcher, presentity string) (Decision, error) {
	it, err := g.opts.Rosters.RosterItem(ctx, presentity, watcher)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return DecisionDeny, err
	}
	granted := err == nil && (it.Subscription == store.SubFrom || it.Subscription == store.SubBoth)
	approved := err == nil && it.Approved
	if !granted {
		// Record the request in the rosters (and ask the presentity).
		w, perr := addressing.ParseJID(watcher)
		if perr != nil {
			return DecisionDeny, nil
		}
		if err := g.lane(watcher, func(ctx context.Context) { g.requestSubscription(ctx, w, presentity) }); err != nil {
			return DecisionDeny, err
		}
	}
	switch {
	case granted, approved:
		return DecisionAllow, nil
	}
	return DecisionPending, nil
}

// requestSubscription puts a watcher's SIP subscription into the rosters
// as an XMPP subscription request.
func (g *Gateway) requestSubscription(ctx context.Context, watcher addressing.Address, presentity string) {
	if !g.isLocal(watcher.Domain) {
		if err := g.opts.XMPP.Receive(ctx, subscriptionStanza("subscribe", watcher.BareJID(), presentity)); err != nil {
			g.log.Warn("subscription request not delivered", "watcher", watcher.BareJID(), "presentity", presentity, "error", err)
		}
		return
	}
	g.submitSIPSubscription(ctx, watcher.BareJID(), presentity)
}

// submitSIPSubscription records a SIMPLE user's subscription in its roster:
// subscribe, and the pre-approval that stands in for the answer it cannot
// give.
func (g *Gateway) submitSIPSubscription(ctx context.Context, watcher, presentity string) {
	from := watcher + "/" + g.opts.SIPResource
	for _, typ := range []string{"subscribe", "subscribed"} {
		if err := g.opts.XMPP.Submit(ctx, from, subscriptionStanza(typ, "", presentity)); err != nil {
			g.log.Warn("roster subscription failed", "watcher", watcher, "presentity", presentity, "type", typ, "error", err)
		}
	}
}

// Watch is asked when a local SIMPLE client subscribes to a user of
// another domain (sipside's RemotePresence): the request becomes the
// watcher's roster subscription, which the roster observer turns into a
// SUBSCRIBE to the peer (or plain XMPP federation does the job).
func (g *Gateway) Watch(ctx context.Context, watcher, presentity string) (Decision, error) {
	if _, err := addressing.ParseJID(presentity); err != nil {
		return DecisionDeny, nil
	}
	g.mu.Lock()
	o := g.subs[subKey{watcher, presentity}]
	active := o != nil && o.active
	g.mu.Unlock()
	if err := g.lane(watcher, func(ctx context.Context) { g.submitSIPSubscription(ctx, watcher, presentity) }); err != nil {
		return DecisionDeny, err
	}
	if active {
		return DecisionAllow, nil
	}
	return DecisionPending, nil
}

// Unwatch is told that a SIMPLE client ended its subscription. The roster
// subscription stays (clients unsubscribe when they exit); removing the
// contact is a roster change.
func (g *Gateway) Unwatch(watcher, presentity string) {
	g.log.Debug("sip watcher unsubscribed", "watcher", watcher, "presentity", presentity)
}

// RosterChanged follows roster changes (xmppside's RosterObserver):
// answers SIP subscriptions the owner approved or refused, and starts or
// stops the SUBSCRIBE to a remote contact.
func (g *Gateway) RosterChanged(ctx context.Context, it store.RosterItem, removed bool) {
	// Granted: the watcher's SIP subscription goes active. Refusals and
	// revocations are the owner's "unsubscribed" (presenceToPeer, in deliverUMPP,
	// deliverSIPPeer and the SIP resource); a roster change without "from"
	// is not one (a request may be on its way).
	switch {
	case removed:
		g.opts.SIP.Authorize(ctx, it.Owner, it.Contact, false)
	case it.Subscription == store.SubFrom || it.Subscription == store.SubBoth:
		g.opts.SIP.Authorize(ctx, it.Owner, it.Contact, true)
	}
	c, err := addressing.ParseJID(it.Contact)
	if err != nil || c.Local == "" || g.isLocal(c.Domain) {
		return
	}
	want := !removed && (it.Subscription == store.SubTo || it.Subscription == store.SubBoth || it.PendingOut)
	owner := it.Owner
	err = g.lane(owner, func(ctx context.Context) {
		switch g.mode(ctx, c.Domain) {
		case ModeUMPP, ModeSIP:
		default:
			return
		}
		if want {
			g.ensureSub(ctx, owner, it.Contact)
		} else {
			g.stopSub(ctx, owner, it.Contact)
		}
	})
	if err != nil {
		g.log.Warn("presence subscription change dropped", "watcher", owner, "presentity", it.Contact, "error", err)
	}
}

// restoreSubscriptions re-establishes the persisted subscriptions.
func (g *Gateway) restoreSubscriptions(ctx context.Context) {
	if g.opts.Subscriptions == nil {
		return
	}
	list, err := g.opts.Subscriptions.PresenceSubscriptions(ctx)
	if err != nil {
		g.log.Error("reading presence subscriptions failed", "error", err)
		return
	}
	for _, s := range list {
		if err := g.lane(s.Watcher, func(ctx context.Context) { g.ensureSub(ctx, s.Watcher, s.Presentity) }); err != nil {
			g.log.Warn("presence subscription not restored", "watcher", s.Watcher, "presentity", s.Presentity, "error", err)
		}
	}
	if len(list) > 0 {
		g.log.Info("presence subscriptions restored", "count", len(list))
	}
}

// ensureSub starts the SUBSCRIBE of a pair unless it runs.
func (g *Gateway) ensureSub(ctx context.Context, watcher, presentity string) {
	k := subKey{watcher, presentity}
	g.mu.Lock()
	if g.subs[k] != nil || g.closed {
		g.mu.Unlock()
		return
	}
	if limit := g.opts.MaxSubscriptionsPerPeer; limit > 0 {
		domain, n := domainOf(presentity), 0
		for other := range g.subs {
			if domainOf(other.presentity) == domain {
				n++
			}
		}
		if n >= limit {
			g.mu.Unlock()
			g.log.Warn("presence subscription not started: limits.max_subscriptions_per_peer reached",
				"watcher", watcher, "presentity", presentity, "limit", limit)
			return
		}
	}
	o := &outSub{key: k}
	g.subs[k] = o
	g.mu.Unlock()
	if g.opts.Subscriptions != nil {
		if err := g.opts.Subscriptions.AddSubscription(ctx, watcher, presentity); err != nil {
			g.log.Warn("persisting presence subscription failed", "watcher", watcher, "presentity", presentity, "error", err)
		}
	}
	w, err1 := addressing.ParseJID(watcher)
	p, err2 := addressing.ParseJID(presentity)
	if err1 != nil || err2 != nil {
		g.dropSub(o)
		return
	}
	sipOnly := g.mode(ctx, p.Domain) == ModeSIP
	u, err := g.opts.SIP.Subscribe(g.ctx, w, p, sipOnly, func(n Notification) { g.notified(o, n) })
	if err != nil {
		g.log.Warn("presence subscription failed", "watcher", watcher, "presentity", presentity, "error", err)
		g.dropSub(o)
		return
	}
	g.mu.Lock()
	o.unsub = u
	gone := o.gone
	g.mu.Unlock()
	if gone {
		_ = u.Unsubscribe(ctx)
		return
	}
	g.log.Info("presence subscription started", "watcher", watcher, "presentity", presentity)
}

// dropSub forgets o in memory (the persisted pair stays).
func (g *Gateway) dropSub(o *outSub) {
	g.mu.Lock()
	if g.subs[o.key] == o {
		delete(g.subs, o.key)
	}
	o.gone = true
	g.mu.Unlock()
}

// stopSub ends the SUBSCRIBE of a pair and forgets it.
func (g *Gateway) stopSub(ctx context.Context, watcher, presentity string) {
	k := subKey{watcher, presentity}
	g.mu.Lock()
	o := g.subs[k]
	delete(g.subs, k)
	var u Unsubscriber
	if o != nil {
		o.gone = true
		u = o.unsub
	}
	g.mu.Unlock()
	if g.opts.Subscriptions != nil {
		if err := g.opts.Subscriptions.RemoveSubscription(ctx, watcher, presentity); err != nil {
			g.log.Warn("forgetting presence subscription failed", "watcher", watcher, "presentity", presentity, "error", err)
		}
	}
	if u != nil {
		_ = u.Unsubscribe(ctx)
		g.log.Info("presence subscription stopped", "watcher", watcher, "presentity", presentity)
	}
}

// notified turns a NOTIFY of an outgoing subscription into XMPP presence
// for the watcher's resources and into the document its SIP clients see.
func (g *Gateway) notified(o *outSub, n Notification) {
	ctx := g.ctx
	watcher, presentity := o.key.watcher, o.key.presentity
	switch n.State {
	case "active":
		g.mu.Lock()
		first := !o.active
		o.active = true
		g.mu.Unlock()
		var doc *pidf.Document
		if len(n.Body) > 0 {
			var err error
			if doc, err = pidf.Parse(n.Body, pidf.Limits{}); err != nil {
				g.log.Info("unusable presence document", "presentity", presentity, "error", err)
			}
		}
		if doc != nil {
			// The document first, so that a local SIP watcher made active
			// below gets it in its first NOTIFY.
			g.mu.Lock()
			g.remote[presentity] = doc
			g.mu.Unlock()
			g.opts.SIP.SetPresence(presentity, doc)
		}
		if first {
			// The peer granted the subscription: the roster says so.
			g.receive(ctx, subscriptionStanza("subscribed", presentity, watcher))
			g.opts.SIP.Authorize(ctx, presentity, watcher, true)
		}
		if doc != nil {
			g.sendDocument(ctx, presentity, watcher, doc)
		}
	case "terminated":
		switch n.Reason {
		case "rejected", "noresource":
			g.receive(ctx, subscriptionStanza("unsubscribed", presentity, watcher))
			g.opts.SIP.Authorize(ctx, presentity, watcher, false)
		default:
			g.receive(ctx, presenceStanza(presentity, watcher, pidf.XMPPPresence{}))
		}
		g.mu.Lock()
		o.active = false
		delete(g.remote, presentity)
		g.mu.Unlock()
		if n.Final {
			g.dropSub(o)
		}
	}
}

func (g *Gateway) receive(ctx context.Context, raw []byte) {
	if err := g.opts.XMPP.Receive(ctx, raw); err != nil {
		g.log.Debug("presence not delivered", "error", err)
	}
}

// LocalPresence follows the broadcast presence of local XMPP users
// (xmppside's PresenceObserver) and gives SIP watchers the document of
// all the account's XMPP resources (RFC 8048 §6).
func (g *Gateway) LocalPresence(_ context.Context, st Stanza) {
	bare := bareOfJID(st.From)
	p, _, ok := parsePresence(st.Raw)
	if !ok {
		return
	}
	p.Resource = resourceOf(st.From)
	ps := []pidf.XMPPPresence{p}
	for _, r := range g.opts.XMPP.Resources(bare) {
		if r.JID == st.From || r.Presence == nil || resourceOf(r.JID) == g.opts.SIPResource {
			continue
		}
		if q, _, ok := parsePresence(r.Presence); ok {
			q.Resource = resourceOf(r.JID)
			ps = append(ps, q)
		}
	}
	g.opts.SIP.SetPresence(bare, pidf.FromXMPP("pres:"+bare, ps))
}

// SIPPresenceChanged follows what a local user's SIMPLE clients publish
// (sipside's PresenceChanged): their XMPP contacts see it as the presence
// of the SIP resource.
func (g *Gateway) SIPPresenceChanged(presentity string, doc *pidf.Document) {
	g.mu.Lock()
	if doc == nil {
		delete(g.docs, presentity)
	} else {
		g.docs[presentity] = doc
	}
	g.mu.Unlock()
	e := g.ensureEndpoint(presentity)
	p := bestPresence(doc)
	if e != nil {
		e.setPresence(p)
	}
	err := g.lane(presentity, func(ctx context.Context) {
		if err := g.opts.XMPP.Submit(ctx, presentity+"/"+g.opts.SIPResource, presenceStanza("", "", p)); err != nil {
			g.log.Debug("sip presence broadcast failed", "presentity", presentity, "error", err)
		}
	})
	if err != nil {
		g.log.Warn("sip presence broadcast dropped", "presentity", presentity, "error", err)
	}
}

// presenceToPeer handles what a local user's presence to a user of a
// UMPP or SIMPLE peer means on SIP: an "unsubscribed" rejects or ends
// the watcher's subscription (RFC 8048 §4); a probe is answered from the
// last NOTIFY.
func (g *Gateway) presenceToPeer(ctx context.Context, st Stanza) {
	g.answerProbe(ctx, st)
	if st.Name == "presence" && st.Type == "unsubscribed" {
		g.opts.SIP.Authorize(ctx, bareOfJID(st.From), bareOfJID(st.To), false)
	}
}

// sendDocument gives a local watcher a remote presentity's state as XMPP
// presence, one stanza per tuple (RFC 8048).
func (g *Gateway) sendDocument(ctx context.Context, presentity, watcher string, doc *pidf.Document) {
	ps := pidf.ToXMPP(doc)
	if len(ps) == 0 {
		ps = []pidf.XMPPPresence{{}}
	}
	for _, p := range ps {
		from := presentity
		if p.Resource != "" {
			from += "/" + p.Resource
		}
		g.receive(ctx, presenceStanza(from, watcher, p))
	}
}

// answerProbe answers a local user's presence probe (sent when it comes
// online) to a user of a UMPP or SIMPLE peer from the last NOTIFY: SIP
// carries no probes.
func (g *Gateway) answerProbe(ctx context.Context, st Stanza) {
	if st.Name != "presence" || st.Type != "probe" {
		return
	}
	presentity, watcher := bareOfJID(st.To), bareOfJID(st.From)
	g.mu.Lock()
	doc := g.remote[presentity]
	o := g.subs[subKey{watcher, presentity}]
	active := o != nil && o.active
	g.mu.Unlock()
	if doc != nil && active {
		g.sendDocument(ctx, presentity, st.From, doc)
	}
}

// Subscriptions returns the number of outgoing presence subscriptions the
// gateway keeps (one per local watcher and remote presentity).
func (g *Gateway) Subscriptions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.subs)
}

func domainOf(jid string) string {
	jid = bareOfJID(jid)
	if i := strings.IndexByte(jid, '@'); i >= 0 {
		return jid[i+1:]
	}
	return jid
}
