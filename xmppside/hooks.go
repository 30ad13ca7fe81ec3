package xmppside

import "context"

// PresenceObserver is told of the broadcast presence of local users, the
// presence a user sends without a 'to' (RFC 6121 §4.2, §4.4, §4.5),
// including the unavailable presence sent for it when its stream ends.
type PresenceObserver interface {
	// LocalPresence receives the stanza as broadcast: From is the user's
	// full JID, Type is "" (available) or "unavailable", Raw the stanza
	// with from stamped. It is called on the user's stream goroutine, so
	// it must return quickly; Raw is the observer's to keep.
	LocalPresence(ctx context.Context, p Stanza)
}

// Metrics receives counts of routing outcomes. The daemon's
// *metrics.Metrics satisfies it.
type Metrics interface {
	// MessageRouted counts a message delivered to a local resource or
	// stored for an offline user, by path ("xmpp->xmpp").
	MessageRouted(path string)
	// DeliveryFailed counts a message answered with an error, by its
	// RFC 6120 condition.
	DeliveryFailed(condition string)
}

// pathXMPPToXMPP is the only path this package routes on its own; the
// session layer counts the paths that cross to SIP.
const pathXMPPToXMPP = "xmpp->xmpp"

// routed counts a delivered message.
func (s *Server) routed(sender) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.MessageRouted(pathXMPPToXMPP)
	}
}

// failed counts a message that could not be delivered; other stanzas'
// errors (unknown IQs, presence to nowhere) are not deliveries.
func (s *Server) failed(el *element, cond string) {
	if s.opts.Metrics != nil && el.name.Local == "message" && el.attr("type") != "error" {
		s.opts.Metrics.DeliveryFailed(cond)
	}
}
