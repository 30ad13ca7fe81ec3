package session

import (
	"bytes"
	"context"
	"sync"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/pidf"
)

// sipEndpoint is the XMPP face of a local account's SIMPLE clients: one
// resource (GatewayOptions.SIPResource) that the XMPP router delivers to
// like any other. Messages go out as SIP MESSAGE to the account's
// registered contacts, in order.
type sipEndpoint struct {
	g    *Gateway
	user addressing.Address // bare
	jid  string

	mu       sync.Mutex
	presence []byte // current broadcast presence, from stamped; nil when unavailable
}

func (e *sipEndpoint) JID() string { return e.jid }

// Presence reports the resource available while the account has SIP
// registrations (the sweeper removes the endpoint when they expire).
func (e *sipEndpoint) Presence() (int, bool) { return 0, true }

func (e *sipEndpoint) LastPresence() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.presence
}

func (e *sipEndpoint) setPresence(p pidf.XMPPPresence) {
	var b []byte
	if p.Available {
		b = presenceStanza(e.jid, "", p)
	}
	e.mu.Lock()
	e.presence = b
	e.mu.Unlock()
}

func (e *sipEndpoint) Close(string) { e.g.dropEndpoint(e) }

// Deliver takes a stanza routed to the SIP resource.
func (e *sipEndpoint) Deliver(ctx context.Context, raw []byte) error {
	name := rootName(raw)
	switch name {
	case "message":
		return e.deliverMessage(raw)
	case "presence":
		e.deliverPresence(ctx, raw)
	}
	return nil
}

func (e *sipEndpoint) deliverMessage(raw []byte) error {
	m, err := ParseXMPPMessage(inClientNS(raw))
	if err != nil {
		e.g.log.Debug("unusable message for sip user", "to", e.jid, "error", err)
		return nil
	}
	if m.Type == MessageError {
		e.g.log.Info("delivery error for sip user", "to", e.jid, "from", m.From.String())
		return nil
	}
	sm := m.SIP()
	if sm.ContentType == "" {
		return nil // receipts and the like: nothing SIP carries
	}
	from, to := m.From.Bare(), e.user
	err = e.g.lane(e.user.BareJID(), func(ctx context.Context) {
		if err := e.g.opts.SIP.SendMessage(ctx, from, to, sm.ContentType, sm.Body); err != nil {
			cond := conditionOr(e.g.sipError(err), CondServiceUnavailable)
			e.g.log.Info("message to sip user failed", "to", e.jid, "from", from.String(), "condition", cond, "error", err)
			e.bounce(ctx, m, cond)
			return
		}
		e.g.countRouted("xmpp->sip")
	})
	if err != nil {
		return ErrBusy
	}
	return nil
}

// bounce answers a message the SIP user could not take with an error from
// the SIP resource.
func (e *sipEndpoint) bounce(ctx context.Context, m Message, cond string) {
	e.g.countFailed(cond)
	b := errorStanza("message", "", m.From.String(), m.ID, cond)
	if err := e.g.opts.XMPP.Submit(ctx, e.jid, b); err != nil {
		e.g.log.Debug("bounce from sip user failed", "to", m.From.String(), "error", err)
	}
}

// deliverPresence handles presence from contacts of an XMPP-only peer,
// which no NOTIFY carries: SIP watchers see it through SetPresence.
// Presence of local users and of UMPP and SIMPLE peers' users reaches SIP
// watchers by other ways.
func (e *sipEndpoint) deliverPresence(ctx context.Context, raw []byte) {
	if attrValue(raw, "type") == "unsubscribed" {
		if from := attrValue(raw, "from"); from != "" {
			// A local user refused or revoked: the SIP watcher's
			// subscription ends.
			e.g.opts.SIP.Authorize(ctx, bareOfJID(from), e.user.BareJID(), false)
		}
		return
	}
	p, from, ok := parsePresence(raw)
	if !ok {
		return
	}
	a, err := addressing.ParseJID(from)
	if err != nil || a.Local == "" || e.g.isLocal(a.Domain) || e.g.mode(ctx, a.Domain) != ModeXMPP {
		return
	}
	e.g.opts.SIP.SetPresence(a.BareJID(), pidf.FromXMPP("pres:"+a.BareJID(), []pidf.XMPPPresence{p}))
	if p.Available {
		e.g.opts.SIP.Authorize(ctx, a.BareJID(), e.user.BareJID(), true)
	}
}

// inClientNS declares jabber:client on a stanza the router hands over
// without a namespace declaration (it relies on the stream's default).
func inClientNS(raw []byte) []byte {
	i := bytes.IndexByte(raw, '<')
	if i < 0 {
		return raw
	}
	end := bytes.IndexByte(raw[i:], '>')
	if end < 0 || bytes.Contains(raw[i:i+end], []byte("xmlns=")) {
		return raw
	}
	name := i + 1
	for name < len(raw) && raw[name] != ' ' && raw[name] != '>' && raw[name] != '/' && raw[name] != '\t' && raw[name] != '\n' && raw[name] != '\r' {
		name++
	}
	out := make([]byte, 0, len(raw)+24)
	out = append(out, raw[:name]...)
	out = append(out, ` xmlns="jabber:client"`...)
	return append(out, raw[name:]...)
}

// rootName returns the local name of the first element of raw.
func rootName(raw []byte) string {
	i := bytes.IndexByte(raw, '<')
	for i >= 0 && i+1 < len(raw) && (raw[i+1] == '?' || raw[i+1] == '!') {
		j := bytes.IndexByte(raw[i+1:], '<')
		if j < 0 {
			return ""
		}
		i += 1 + j
	}
	if i < 0 {
		return ""
	}
	rest := raw[i+1:]
	end := bytes.IndexAny(rest, " \t\r\n/>")
	if end < 0 {
		return ""
	}
	name := rest[:end]
	if k := bytes.IndexByte(name, ':'); k >= 0 {
		name = name[k+1:]
	}
	return string(name)
}

// SIPRegistration tells the gateway that a local account's SIP
// registrations changed: with bindings it gets its SIP resource, without
// them it loses it.
func (g *Gateway) SIPRegistration(aor string, registered bool) {
	if registered {
		g.mu.Lock()
		e := g.endpoints[aor]
		g.mu.Unlock()
		if e == nil {
			g.ensureEndpoint(aor) // flushes stored messages
			return
		}
		// A refresh: a message stored while the resource was coming up
		// (routed as offline just before it registered) goes out now.
		if g.opts.Offline != nil {
			_ = g.lane(aor, e.deliverOffline)
		}
		return
	}
	g.mu.Lock()
	e := g.endpoints[aor]
	g.mu.Unlock()
	if e != nil {
		g.dropEndpoint(e)
	}
}

// ensureEndpoint returns the SIP resource of an account, creating and
// registering it when needed (nil once the gateway is closed).
func (g *Gateway) ensureEndpoint(aor string) *sipEndpoint {
	g.mu.Lock()
	if e := g.endpoints[aor]; e != nil || g.closed {
		g.mu.Unlock()
		return e
	}
	a, err := addressing.ParseJID(aor)
	if err != nil || a.Local == "" || !g.isLocal(a.Domain) {
		g.mu.Unlock()
		return nil
	}
	a = a.Bare()
	e := &sipEndpoint{g: g, user: a, jid: a.BareJID() + "/" + g.opts.SIPResource}
	if d := g.docs[aor]; d != nil {
		if p := bestPresence(d); p.Available {
			e.presence = presenceStanza(e.jid, "", p)
		}
	}
	g.endpoints[aor] = e
	g.mu.Unlock()
	g.opts.XMPP.AddEndpoint(e)
	g.log.Debug("sip resource up", "jid", e.jid)
	if g.opts.Offline != nil {
		if err := g.lane(aor, e.deliverOffline); err != nil {
			g.log.Warn("offline messages for sip user left for later", "jid", e.jid, "error", err)
		}
	}
	return e
}

// deliverOffline sends the messages stored while the account had no
// available resource to its SIP contacts, in order, and deletes those
// that were taken (RFC 6121 §8.5.2.2.1 for a SIMPLE client).
func (e *sipEndpoint) deliverOffline(ctx context.Context) {
	bare := e.user.BareJID()
	msgs, err := e.g.opts.Offline.OfflineMessages(ctx, bare)
	if err != nil {
		e.g.log.Error("reading offline messages failed", "jid", bare, "error", err)
		return
	}
	var done int64
	sent := 0
	for _, om := range msgs {
		m, err := ParseXMPPMessage(inClientNS(om.Stanza))
		if err != nil {
			done = om.ID // unusable: nothing SIP could carry either
			continue
		}
		sm := m.SIP()
		if sm.ContentType != "" {
			if err := e.g.opts.SIP.SendMessage(ctx, m.From.Bare(), e.user, sm.ContentType, sm.Body); err != nil {
				e.g.log.Info("offline message not taken by sip user; kept", "jid", bare, "error", err)
				break
			}
			sent++
		}
		done = om.ID
	}
	if done > 0 {
		if err := e.g.opts.Offline.DeleteOffline(ctx, bare, done); err != nil {
			e.g.log.Error("deleting delivered offline messages failed", "jid", bare, "error", err)
		}
	}
	if sent > 0 {
		e.g.log.Info("offline messages delivered to sip user", "jid", bare, "count", sent)
	}
}

func (g *Gateway) dropEndpoint(e *sipEndpoint) {
	g.mu.Lock()
	if g.endpoints[e.user.BareJID()] != e {
		g.mu.Unlock()
		return
	}
	delete(g.endpoints, e.user.BareJID())
	g.mu.Unlock()
	g.opts.XMPP.RemoveEndpoint(e)
	g.log.Debug("sip resource down", "jid", e.jid)
}

// sweepEndpoints drops SIP resources whose registrations expired.
func (g *Gateway) sweepEndpoints() {
	g.mu.Lock()
	eps := make([]*sipEndpoint, 0, len(g.endpoints))
	for _, e := range g.endpoints {
		eps = append(eps, e)
	}
	g.mu.Unlock()
	for _, e := range eps {
		if !g.opts.SIP.Registered(g.ctx, e.user.BareJID()) {
			g.dropEndpoint(e)
		}
	}
}

// attrValue returns an attribute of the root element of raw ("" when
// absent), for stanzas the router serialized itself.
func attrValue(raw []byte, name string) string {
	end := bytes.IndexByte(raw, '>')
	if end < 0 {
		return ""
	}
	head := raw[:end]
	for _, q := range []string{`"`, `'`} {
		key := []byte(" " + name + "=" + q)
		if i := bytes.Index(head, key); i >= 0 {
			rest := head[i+len(key):]
			if j := bytes.Index(rest, []byte(q)); j >= 0 {
				return string(rest[:j])
			}
		}
	}
	return ""
}
