package xmppside

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/umpp/umpp/store"
)

// Receive routes one stanza that arrived from another domain (over s2s,
// or from the UMPP session layer) to local accounts, with the same rules
// as stanzas from local clients. raw is a serialized message, presence or
// iq in the jabber:client or jabber:server default namespace with both
// from and to; from must belong to a domain this server does not host
// (authenticating that domain is the caller's job) and to to one it
// does. Errors for the sender go back through Options.Remote. raw is not
// retained.
func (s *Server) Receive(ctx context.Context, raw []byte) error {
	var el element
	if err := parseStanza(raw, &el); err != nil {
		return fmt.Errorf("xmppside: receive: %w", err)
	}
	return s.receive(ctx, &el)
}

// receive is Receive for a stanza already parsed: the inbound s2s stream
// hands over the element it read, so that it is not parsed twice. el may
// be changed.
func (s *Server) receive(ctx context.Context, el *element) error {
	from, err := parseAddr(el.attr("from"))
	if err != nil {
		return fmt.Errorf("xmppside: receive: from: %w", err)
	}
	if s.isLocal(from.domain) {
		return fmt.Errorf("xmppside: receive: from %s is a local domain", from.domain)
	}
	to, err := parseAddr(el.attr("to"))
	if err != nil {
		return fmt.Errorf("xmppside: receive: to: %w", err)
	}
	if !s.isLocal(to.domain) {
		return fmt.Errorf("xmppside: receive: to %s is not a local domain", to.domain)
	}
	if ns := el.ns(); ns != "" && ns != nsClient {
		if ns != "jabber:server" || el.name.Space != "" {
			return fmt.Errorf("xmppside: receive: namespace %q", ns)
		}
		// Local clients speak jabber:client: drop the declaration.
		kept := el.attrs[:0]
		for _, a := range el.attrs {
			if len(a.prefix) != 0 || string(a.local) != "xmlns" {
				kept = append(kept, a)
			}
		}
		el.attrs = kept
		el.raw = appendStamped(nil, el, el.attr("from"), "", "")
		el.startLen = bytes.IndexByte(el.raw, '>') + 1
		el.selfClosing = false
	}
	snd := remoteSender{s: s, from: from}
	typ := el.attr("type")
	switch el.name.Local {
	case "message":
		if to.local == "" {
			snd.bounce(el, to.full, "service-unavailable", "")
			return nil
		}
		if s.opts.Messages != nil && typ != "error" {
			s.opts.Messages.RemoteMessage(from.full, to.full, threadOf(el))
		}
		var scratch []Endpoint
		s.deliverMessage(ctx, snd, &scratch, el, to, el.raw)
	case "presence":
		if to.local == "" {
			return nil
		}
		switch typ {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			bare := addr{local: from.local, domain: from.domain, bare: from.bare, full: from.bare}
			s.inboundSubscription(ctx, typ, bare, to, subscriptionXML(typ, from.bare, to.bare))
		case "probe":
			s.answerProbe(ctx, from, to)
		default:
			s.deliverPresence(ctx, to, el.raw)
		}
	case "iq":
		if to.resource != "" {
			var buf [8]Endpoint
			for _, e := range s.loc.Lookup(to.bare, buf[:0]) {
				if e.JID() == to.full {
					if err := e.Deliver(ctx, el.raw); err != nil {
						s.deliveryFailed(snd, el, to, err)
					}
					return nil
				}
			}
		}
		if typ == "get" || typ == "set" {
			snd.bounce(el, to.full, "service-unavailable", "")
		}
	default:
		return fmt.Errorf("xmppside: receive: not a stanza: %s", el.name.Local)
	}
	return nil
}

// answerProbe answers a presence probe from a remote JID (RFC 6121
// §4.3.2): the current presence of the account's resources if the prober
// is subscribed, unavailable if none is online, unsubscribed otherwise.
func (s *Server) answerProbe(ctx context.Context, from, to addr) {
	r := s.opts.Remote
	if r == nil {
		return
	}
	it, err := s.opts.Rosters.RosterItem(ctx, to.bare, from.bare)
	if err != nil || (it.Subscription != store.SubFrom && it.Subscription != store.SubBoth) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("reading roster failed", "jid", to.bare, "err", err)
			return
		}
		_ = r.Deliver(ctx, Stanza{Name: "presence", From: to.bare, To: from.bare, Type: "unsubscribed", Raw: subscriptionXML("unsubscribed", to.bare, from.bare)})
		return
	}
	sent := 0
	var buf [8]Endpoint
	for _, e := range s.loc.Lookup(to.bare, buf[:0]) {
		if p := e.LastPresence(); p != nil {
			s.sendPresenceTo(ctx, from, p, e.JID())
			sent++
		}
	}
	if sent == 0 {
		_ = r.Deliver(ctx, Stanza{Name: "presence", From: to.bare, To: from.bare, Type: "unavailable", Raw: unavailableXML(to.bare, from.bare)})
	}
}

// withTo re-serializes one of our own stanzas with a to address.
func withTo(raw []byte, to string) []byte {
	sr := newStreamReader(bytes.NewReader(raw), 0)
	var el element
	if err := sr.next(&el); err != nil {
		return raw
	}
	return appendStamped(nil, &el, el.attr("from"), to, "")
}

// remoteSender is the origin of a stanza from another domain.
type remoteSender struct {
	s    *Server
	from addr
}

func (r remoteSender) fromJID() string      { return r.from.full }
func (r remoteSender) logger() *slog.Logger { return r.s.log.With("from", r.from.full) }

func (r remoteSender) bounce(el *element, from, cond, text string) {
	if el.attr("type") == "error" || r.s.opts.Remote == nil {
		return
	}
	r.s.failed(el, cond)
	b := appendErrorReply(nil, el, from, r.from.full, cond, text)
	err := r.s.opts.Remote.Deliver(context.Background(), Stanza{Name: el.name.Local, From: from, To: r.from.full, Type: "error", ID: el.attr("id"), Raw: b})
	if err != nil {
		r.s.log.Debug("bounce to remote failed", "to", r.from.full, "err", err)
	}
}
