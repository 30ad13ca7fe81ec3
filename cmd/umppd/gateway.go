package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/pidf"
	"github.com/umpp/umpp/session"
	"github.com/umpp/umpp/session/sdp"
	"github.com/umpp/umpp/sipside"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/xmppside"
)

// The adapters between package session's gateway and the two protocol
// servers. The servers are built first with a bridge as their handlers;
// the gateway is attached once both exist, before any listener accepts
// traffic that could reach it.

// bridge implements the servers' handler interfaces by forwarding to the
// gateway.
type bridge struct {
	gw atomic.Pointer[session.Gateway]
}

func (b *bridge) gateway() *session.Gateway { return b.gw.Load() }

// errNotReady answers what arrives before the gateway is attached.
var errNotReady = &session.StanzaError{Cond: session.CondServiceUnavailable, Err: errors.New("gateway starting")}

// xmppside.Remote
func (b *bridge) Deliver(ctx context.Context, st xmppside.Stanza) error {
	g := b.gateway()
	if g == nil {
		return errNotReady
	}
	return g.Deliver(ctx, session.Stanza(st))
}

// xmppside.PresenceObserver
func (b *bridge) LocalPresence(ctx context.Context, st xmppside.Stanza) {
	if g := b.gateway(); g != nil {
		g.LocalPresence(ctx, session.Stanza(st))
	}
}

// xmppside.MessageObserver
func (b *bridge) RemoteMessage(from, to string, thread []byte) {
	if g := b.gateway(); g != nil {
		g.RemoteMessage(from, to, thread)
	}
}

// xmppside.RosterObserver
func (b *bridge) RosterChanged(ctx context.Context, it store.RosterItem, removed bool) {
	if g := b.gateway(); g != nil {
		g.RosterChanged(ctx, it, removed)
	}
}

// sipside.Gateway
func (b *bridge) DeliverMessage(ctx context.Context, m sipside.Message) (int, string, error) {
	g := b.gateway()
	if g == nil {
		return 503, "Service Unavailable", nil
	}
	sender, _, err := addressing.Parse(m.Sender)
	if err != nil {
		return 403, "Forbidden", nil
	}
	from, _, err1 := addressing.Parse(m.From)
	to, _, err2 := addressing.Parse(m.To)
	if err1 != nil || err2 != nil || to.Local == "" {
		return 404, "Not Found", nil
	}
	code, reason := g.DeliverSIP(ctx, session.SIPInbound{
		Sender: sender, Peer: m.Peer,
		Msg: session.SIPMessage{From: from, To: to, CallID: m.CallID, ContentType: m.ContentType, Body: m.Body},
	})
	return code, reason, nil
}

// sipside.SessionHandler
func (b *bridge) Offer(ctx context.Context, o sipside.InviteOffer) (sipside.InviteAnswer, error) {
	g := b.gateway()
	if g == nil {
		return sipside.InviteAnswer{}, &sipside.StatusError{Code: 503, Reason: "Service Unavailable"}
	}
	a, err := g.Offer(ctx, session.Offer{
		DialogID: o.DialogID, CallID: o.CallID, From: o.From, Target: o.RequestURI,
		Session: o.Session, ReInvite: o.ReInvite,
	})
	if err != nil {
		return sipside.InviteAnswer{}, err
	}
	return sipside.InviteAnswer{JID: a.JID, Host: a.Host, Port: a.Port}, nil
}

func (b *bridge) Ended(ctx context.Context, dialogID, callID, reason string) {
	if g := b.gateway(); g != nil {
		g.Ended(ctx, dialogID, callID, reason)
	}
}

// sipside.PresencePolicy
func (b *bridge) MaySubscribe(ctx context.Context, watcher, presentity string) (sipside.PolicyDecision, error) {
	g := b.gateway()
	if g == nil {
		return sipside.PolicyDeny, errors.New("gateway starting")
	}
	d, err := g.MaySubscribe(ctx, watcher, presentity)
	return policy(d), err
}

// sipside.RemotePresence
func (b *bridge) Watch(ctx context.Context, watcher, presentity string) (sipside.PolicyDecision, error) {
	g := b.gateway()
	if g == nil {
		return sipside.PolicyDeny, errors.New("gateway starting")
	}
	d, err := g.Watch(ctx, watcher, presentity)
	return policy(d), err
}

func (b *bridge) Unwatch(watcher, presentity string) {
	if g := b.gateway(); g != nil {
		g.Unwatch(watcher, presentity)
	}
}

func (b *bridge) presenceChanged(presentity string, doc *pidf.Document) {
	if g := b.gateway(); g != nil {
		g.SIPPresenceChanged(presentity, doc)
	}
}

func policy(d session.Decision) sipside.PolicyDecision {
	switch d {
	case session.DecisionAllow:
		return sipside.PolicyAllow
	case session.DecisionPending:
		return sipside.PolicyPending
	}
	return sipside.PolicyDeny
}

// registrations tells the gateway when an account gains or loses its SIP
// registrations.
type registrations struct {
	*sipside.MemoryRegistrations
	b *bridge
}

func (r registrations) Update(ctx context.Context, aor string, fn func([]sipside.Binding) ([]sipside.Binding, error)) ([]sipside.Binding, error) {
	bs, err := r.MemoryRegistrations.Update(ctx, aor, fn)
	if err == nil {
		if g := r.b.gateway(); g != nil {
			g.SIPRegistration(aor, len(bs) > 0)
		}
	}
	return bs, err
}

// sipAdapter is session.SIP on a sipside.Server.
type sipAdapter struct {
	s    *sipside.Server
	regs sipside.Registrations
}

func (a sipAdapter) Invite(ctx context.Context, from, to addressing.Address, offer sdp.XMPPSession) (session.Dialog, sdp.XMPPSession, error) {
	d, ans, err := a.s.Invite(ctx, from, to, offer)
	if err != nil {
		return session.Dialog{}, ans, err
	}
	return session.Dialog{ID: d.ID, CallID: d.CallID}, ans, nil
}

func (a sipAdapter) Hangup(ctx context.Context, id string) error { return a.s.Hangup(ctx, id) }

func (a sipAdapter) SendMessage(ctx context.Context, from, to addressing.Address, ct string, body []byte) error {
	err := a.s.SendMessage(ctx, sipside.OutMessage{From: from, To: to, ContentType: ct, Body: body})
	switch {
	case errors.Is(err, sipside.ErrOffline):
		return &sipside.StatusError{Code: 480, Reason: "Temporarily Unavailable"}
	case errors.Is(err, sipside.ErrNoSuchUser):
		return &sipside.StatusError{Code: 404, Reason: "Not Found"}
	}
	return err
}

func (a sipAdapter) Subscribe(ctx context.Context, watcher, presentity addressing.Address, sipURIs bool, notify func(session.Notification)) (session.Unsubscriber, error) {
	return a.s.Subscribe(ctx, sipside.SubscribeRequest{
		Watcher: watcher, Presentity: presentity, SIPURIs: sipURIs,
		OnNotify: func(n sipside.Notification) {
			notify(session.Notification{State: n.State.State, Reason: n.State.Reason, ContentType: n.ContentType, Body: n.Body, Final: n.Final})
		},
	})
}

func (a sipAdapter) Authorize(ctx context.Context, presentity, watcher string, allowed bool) {
	a.s.Authorize(ctx, presentity, watcher, allowed)
}

func (a sipAdapter) SetPresence(presentity string, doc *pidf.Document) {
	a.s.SetPresence(presentity, doc)
}

func (a sipAdapter) Registered(ctx context.Context, aor string) bool {
	bs, err := a.regs.Bindings(ctx, aor)
	return err == nil && len(bs) > 0
}

// xmppAdapter is session.XMPP on an xmppside.Server and its locator.
type xmppAdapter struct {
	x   *xmppside.Server
	loc xmppside.Locator

	mu  sync.Mutex
	eps map[session.Endpoint]*endpoint
}

func (a *xmppAdapter) Receive(ctx context.Context, raw []byte) error { return a.x.Receive(ctx, raw) }

func (a *xmppAdapter) Submit(ctx context.Context, from string, raw []byte) error {
	return a.x.Submit(ctx, from, raw)
}

func (a *xmppAdapter) SendRemote(ctx context.Context, st session.Stanza) error {
	return a.x.S2S().Deliver(ctx, xmppside.Stanza(st))
}

func (a *xmppAdapter) Resources(bare string) []session.Resource {
	var buf [8]xmppside.Endpoint
	eps := a.loc.Lookup(bare, buf[:0])
	out := make([]session.Resource, 0, len(eps))
	for _, e := range eps {
		p, av := e.Presence()
		out = append(out, session.Resource{JID: e.JID(), Priority: p, Available: av, Presence: e.LastPresence()})
	}
	return out
}

func (a *xmppAdapter) AddEndpoint(e session.Endpoint) {
	w := &endpoint{Endpoint: e}
	a.mu.Lock()
	if a.eps == nil {
		a.eps = make(map[session.Endpoint]*endpoint)
	}
	a.eps[e] = w
	a.mu.Unlock()
	if old := a.loc.Register(w); old != nil && old != xmppside.Endpoint(w) {
		old.Close("conflict")
	}
}

func (a *xmppAdapter) RemoveEndpoint(e session.Endpoint) {
	a.mu.Lock()
	w := a.eps[e]
	delete(a.eps, e)
	a.mu.Unlock()
	if w != nil {
		a.loc.Unregister(w)
	}
}

// endpoint maps the gateway's delivery errors to the router's.
type endpoint struct{ session.Endpoint }

func (e *endpoint) Deliver(ctx context.Context, raw []byte) error {
	err := e.Endpoint.Deliver(ctx, raw)
	switch {
	case errors.Is(err, session.ErrBusy):
		return xmppside.ErrQueueFull
	case errors.Is(err, session.ErrEndpointGone):
		return xmppside.ErrGone
	}
	return err
}

// sipResolver gives the SIP server targets with addresses: sipgo would
// look host names up itself with the system resolver, not with the DNS
// server umppd is configured with ([dns] server).
type sipResolver struct{ r *addressing.Resolver }

func (s sipResolver) ResolveSIP(ctx context.Context, domain string) ([]addressing.Target, error) {
	ts, err := s.r.ResolveSIP(ctx, domain)
	if err != nil {
		return nil, err
	}
	out := make([]addressing.Target, 0, len(ts))
	for _, t := range ts {
		ips, err := s.r.LookupIP(ctx, t.Host)
		if err != nil || len(ips) == 0 {
			continue
		}
		for _, ip := range ips {
			t2 := t
			t2.Host = ip.String()
			out = append(out, t2)
		}
	}
	if len(out) == 0 && len(ts) > 0 {
		return nil, fmt.Errorf("resolve %s: no address for its SIP servers", domain)
	}
	return out, nil
}

// LookupIP passes through, for the SIP server's peer checks.
func (s sipResolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	return s.r.LookupIP(ctx, host)
}
